//! The global allocator of the project's binaries: mimalloc, told to keep the memory a training step frees.
//!
//! glibc's allocator page-faults on every large tensor (`benches/README.md`). mimalloc reuses freed memory, but by
//! default hands it back to the OS ("purges" it) 10 ms after it is freed, so every micro-batch faults its
//! buffers in again and the kernel zeroes each page anew. A training process reaches the same peak every step, so
//! keeping the memory costs no peak RSS. Binaries declare `#[global_allocator] static A: sft::allocator::Allocator
//! = sft::allocator::Allocator;` and call [`keep_freed_memory`] first in `main`.

use std::os::raw::c_int;

/// The allocator (mimalloc).
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_purge_delay`: its index in `mimalloc.h`'s `mi_option_e` (15 in mimalloc v2 and v3; the binding
/// leaves the experimental options unnamed).
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// Turns mimalloc's purging off (as `MIMALLOC_PURGE_DELAY=-1` would), unless the environment sets
/// `MIMALLOC_PURGE_DELAY` itself. Call it before starting threads: mimalloc's option setters are not synchronised.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` takes two integers and touches only mimalloc's option table; the index is the
    // purge delay's in the mimalloc sources this binding builds (checked by the test below).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // The default delay is 10 ms; after the call it reads -1 (unless the environment chose a value).
        keep_freed_memory();
        #[allow(unsafe_code)]
        // SAFETY: as above, an integer read from mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let from_env = std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse::<std::os::raw::c_long>().ok());
        assert_eq!(delay, from_env.unwrap_or(-1));
    }
}
