//! The one wait between attempts of a Hub transfer, for downloads ([`HubRepo`](crate::HubRepo)) and uploads
//! ([`HubUploader`](crate::HubUploader)) alike: 200 ms before the first retry, doubling, at most 6.4 s. (hf-hub
//! retries its own requests with its own policy underneath, from 100 ms.) Written here rather than with a retry
//! crate: the loops differ in what they retry (a status, a stalled body), and the shared part is this line.

use std::time::Duration;

/// How long to wait before retry number `retry` (1 for the first).
pub(crate) fn backoff(retry: usize) -> Duration {
    Duration::from_millis(200 << retry.saturating_sub(1).min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_200_ms_up_to_6_4_s() {
        let waits: Vec<u64> = (1..=8).map(|r| backoff(r).as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 6400, 6400]);
    }
}
