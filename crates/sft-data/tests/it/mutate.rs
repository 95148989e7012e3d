//! Mutation fuzzing for the parsers' no-panic property: valid inputs of the project (fixtures, configs) are
//! damaged at random (bits flipped, ranges deleted, duplicated or truncated, syntax characters and extreme tokens
//! spliced in, or replaced by random bytes) and every result is fed to a parser inside `catch_unwind`. Seeded, so a
//! failure repeats; bounded by a count and a wall-clock budget so it fits in CI (`SFT_FUZZ_INPUTS`,
//! `SFT_FUZZ_SECONDS` raise them for a longer local run).
//!
//! Written here rather than with a fuzzing crate: `cargo fuzz` needs a nightly compiler and a corpus directory,
//! which CI does not have, and `proptest`'s strength (shrinking a failing value) matters little for a no-panic
//! property, where the failing input is kept whole and printed. Shared by sft-data's tests and the root crate's
//! config test (`#[path]`), never part of a library.
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use sft_rand::SplitMix64;

/// Tokens spliced into inputs: JSON / CSV syntax, escapes, numbers at the edges of their types, a BOM, bad UTF-8.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b",",
    b"\n",
    b"\r\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"-1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0.0000000000000000000000000000001",
    b"NaN",
    b"\"\"",
    b"[]",
    b"{}",
    b"[[[[[[[[[[[[[[[[",
    b"\t",
    b" ",
];

/// The random damage.
#[derive(Debug)]
pub struct Mutator {
    rng: SplitMix64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { rng: SplitMix64::new(seed) }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.rng.below(n as u64) as usize }
    }

    /// `seed` with one to four mutations, at most `max_len` bytes long.
    pub fn mutate(&mut self, seed: &[u8], max_len: usize) -> Vec<u8> {
        if self.below(20) == 0 {
            let n = self.below(max_len.min(4096) + 1);
            return (0..n).map(|_| self.below(256) as u8).collect();
        }
        let mut out = seed.to_vec();
        for _ in 0..=self.below(4) {
            let len = out.len();
            match self.below(6) {
                0 if len > 0 => {
                    for _ in 0..=self.below(8) {
                        let i = self.below(len);
                        out[i] ^= 1 << self.below(8);
                    }
                }
                1 if len > 0 => {
                    let start = self.below(len);
                    let end = (start + 1 + self.below(64)).min(len);
                    out.drain(start..end);
                }
                2 if len > 0 => {
                    let start = self.below(len);
                    let end = (start + 1 + self.below(256)).min(len);
                    let piece = out[start..end].to_vec();
                    let at = self.below(len + 1);
                    out.splice(at..at, piece);
                }
                3 => out.truncate(self.below(len + 1)),
                _ => {
                    let token = TOKENS[self.below(TOKENS.len())];
                    let at = self.below(len + 1);
                    out.splice(at..at, token.iter().copied());
                }
            }
        }
        out.truncate(max_len);
        out
    }
}

/// How many inputs to try and for how long: `SFT_FUZZ_INPUTS` (default `inputs`) and `SFT_FUZZ_SECONDS` (default
/// `seconds`), whichever ends first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub inputs: usize,
    pub time: Duration,
}

impl Budget {
    pub fn from_env(inputs: usize, seconds: u64) -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Self {
            inputs: var("SFT_FUZZ_INPUTS").map_or(inputs, |n| n as usize),
            time: Duration::from_secs(var("SFT_FUZZ_SECONDS").unwrap_or(seconds)),
        }
    }
}

/// What a fuzz run did.
#[derive(Debug)]
pub struct Outcome {
    pub inputs: usize,
    pub rejected: usize,
    pub panics: Vec<(Vec<u8>, String)>,
}

impl Outcome {
    /// `label: N inputs, R refused, P panics`, for the test's output.
    pub fn summary(&self, label: &str) -> String {
        format!("{label}: {} inputs, {} refused, {} panics", self.inputs, self.rejected, self.panics.len())
    }

    /// Fails the test if any input panicked, keeping the first one in the temporary directory as `file_name`.
    pub fn assert_no_panics(&self, label: &str, file_name: &str) {
        if let Some((input, message)) = self.panics.first() {
            let kept = std::env::temp_dir().join(file_name);
            let saved = std::fs::write(&kept, input).map_or_else(|e| format!("not saved: {e}"), |()| "saved".into());
            panic!(
                "{label}: {} of {} inputs panicked; the first ({message}) is in {} ({saved})",
                self.panics.len(),
                self.inputs,
                kept.display()
            );
        }
    }
}

/// Feeds `budget` mutations of `seeds` (round robin) to `parse` (with the index of the seed mutated), which returns
/// whether it accepted the input; panics are caught and kept with their input.
pub fn run(seeds: &[Vec<u8>], max_len: usize, budget: Budget, mut parse: impl FnMut(usize, &[u8]) -> bool) -> Outcome {
    // Panics of this thread are expected and kept; other threads' (other tests') still print.
    let previous: std::sync::Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send> =
        std::sync::Arc::from(std::panic::take_hook());
    let (me, forward) = (std::thread::current().id(), previous.clone());
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            forward(info);
        }
    }));
    let mut mutator = Mutator::new(0x5eed);
    let started = Instant::now();
    let mut outcome = Outcome { inputs: 0, rejected: 0, panics: Vec::new() };
    while outcome.inputs < budget.inputs && started.elapsed() < budget.time {
        let seed = outcome.inputs % seeds.len();
        let input = mutator.mutate(&seeds[seed], max_len);
        match catch_unwind(AssertUnwindSafe(|| parse(seed, &input))) {
            Ok(true) => {}
            Ok(false) => outcome.rejected += 1,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                outcome.panics.push((input, message));
            }
        }
        outcome.inputs += 1;
    }
    std::panic::set_hook(Box::new(move |info| previous(info)));
    outcome
}

/// The process's peak resident memory (`VmHWM`) in MiB, or 0 where `/proc` is absent.
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}
