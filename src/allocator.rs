//! The global allocator of the project's binaries: mimalloc, told to keep the memory a training step frees.
//!
//! glibc's allocator page-faults on every large tensor (`benches/README.md`). mimalloc reuses freed memory, but by
//! default hands it back to the OS ("purges" it) a while after it is freed (1 s in mimalloc v3), so micro-batches
//! fault their buffers in again and the kernel zeroes each page anew (a 2 MiB huge page at a time). A training
//! process reaches the same peak every step, so keeping the memory costs no peak RSS. Arenas are also committed
//! eagerly, which halved the kernel time of a tiny-model run here (1.07 → 0.53 s of 7 s CPU). Binaries declare
//! `#[global_allocator] static A: sft::allocator::Allocator = sft::allocator::Allocator;` and call
//! [`configure_for_training`] first in `main`.

use std::os::raw::c_int;

/// The allocator (mimalloc).
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay`: their indices in `mimalloc.h`'s `mi_option_e` (4
/// and 15 in mimalloc v2 and v3; the binding leaves these options unnamed).
const MI_OPTION_ARENA_EAGER_COMMIT: c_int = 4;
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// The options set, with the environment variable that overrides each: purging off (`-1`), eager arena commits.
const OPTIONS: [(c_int, &str, std::os::raw::c_long); 2] = [
    (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", -1),
    (MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 1),
];

/// Turns mimalloc's purging off and its arena commits eager (as `MIMALLOC_PURGE_DELAY=-1` and
/// `MIMALLOC_ARENA_EAGER_COMMIT=1` would), except where the environment sets the variable itself. Call it before
/// starting threads: mimalloc's option setters are not synchronised.
pub fn configure_for_training() {
    for (option, variable, value) in OPTIONS {
        if std::env::var_os(variable).is_none() {
            // SAFETY: `mi_option_set` takes two integers and touches only mimalloc's option table; the indices are
            // those of the mimalloc sources this binding builds (the test below reads them back).
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_option_set(option, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_read_back_as_set() {
        // mimalloc v3's defaults (its `options.c`) identify the indices: a 1000 ms purge delay, arena commits eager
        // "on overcommit systems" (2). After the call they read -1 and 1 (unless the environment chose values).
        #[allow(unsafe_code)]
        // SAFETY: integer reads from mimalloc's option table.
        let defaults = OPTIONS.map(|(option, ..)| unsafe { libmimalloc_sys::mi_option_get(option) });
        if OPTIONS.iter().all(|(_, variable, _)| std::env::var_os(variable).is_none()) {
            assert_eq!(defaults, [1000, 2], "purge delay and arena eager commit");
        }
        configure_for_training();
        for (option, variable, value) in OPTIONS {
            #[allow(unsafe_code)]
            // SAFETY: as above, an integer read from mimalloc's option table.
            let got = unsafe { libmimalloc_sys::mi_option_get(option) };
            let from_env = std::env::var(variable).ok().and_then(|v| v.parse::<std::os::raw::c_long>().ok());
            assert_eq!(got, from_env.unwrap_or(value), "{variable}");
        }
    }
}
