//! The startup snapshot behind [`claim_inherited`]: which fds were open
//! before any code of the program ran (they came through `execve`), and a
//! once flag per fd.
//!
//! [`claim_inherited`]: crate::claim_inherited

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Fds at or above this number are not recorded (nor claimable).
pub(super) const LIMIT: usize = 4096;
const WORDS: usize = LIMIT / 64;

/// Bit `fd` set: `fd` was open at startup and no close of the crate has
/// forgotten it since.
static AT_START: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
/// Bit `fd` set: `fd` was claimed (or taken) already.
static CLAIMED: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
/// The snapshot ran.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Run [`snapshot`] before `main`: the dynamic loader (or the static
/// startup code) calls every pointer of `.init_array` before any code of
/// the program, Rust's runtime setup included. Referenced from [`claim`],
/// so the linker keeps it whenever a claim can happen.
#[used]
#[link_section = ".init_array"]
static SNAPSHOT: extern "C" fn() = snapshot;

/// Record which fds below `min(LIMIT, RLIMIT_NOFILE)` are open
/// ([`each_open_in`](super::poll::each_open_in): `poll` with no events
/// answers `POLLNVAL` for each fd that is not open, 256 fds a call). No
/// allocation, nothing of std.
extern "C" fn snapshot() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit` into `lim`, which is valid
    // and writable.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        (lim.rlim_cur as usize).min(LIMIT)
    } else {
        LIMIT
    };
    let mut base = 0;
    while base < limit {
        let n = super::poll::POLL_CHUNK.min(limit - base);
        let mut record = |fd: RawFd| {
            let fd = fd as usize;
            AT_START[fd / 64].fetch_or(1 << (fd % 64), Ordering::Relaxed);
        };
        if super::poll::each_open_in(base as RawFd, n, &mut record).is_err() {
            // Record nothing rather than a guess: no fd can be claimed.
            return;
        }
        base += n;
    }
    TAKEN.store(true, Ordering::Release);
}

fn slot(fd: RawFd) -> Option<(usize, u64)> {
    let fd = usize::try_from(fd).ok().filter(|&f| f < LIMIT)?;
    Some((fd / 64, 1 << (fd % 64)))
}

/// Set the once flag of `fd` if it was open at startup: `Ok` exactly once
/// per fd per process.
///
/// # Errors
/// As [`claim_inherited`](crate::claim_inherited).
pub(super) fn claim(fd: RawFd) -> io::Result<()> {
    // Keep the constructor linked wherever a claim can happen.
    std::hint::black_box(&SNAPSHOT);
    if !TAKEN.load(Ordering::Acquire) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the startup fd snapshot did not run",
        ));
    }
    let Some((word, bit)) = slot(fd).filter(|_| fd > 2) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    if AT_START[word].load(Ordering::Acquire) & bit == 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    if CLAIMED[word].fetch_or(bit, Ordering::AcqRel) & bit != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    Ok(())
}

/// Set the once flag of `fd` for an unsafe take; `false` when it was set
/// already. Fds outside the snapshot's range always pass.
pub(super) fn mark_claimed(fd: RawFd) -> bool {
    match slot(fd) {
        Some((word, bit)) => CLAIMED[word].fetch_or(bit, Ordering::AcqRel) & bit == 0,
        None => true,
    }
}

/// Forget `first..=last` from the snapshot: they were closed, and a number
/// reused later is not inherited. Async-signal-safe: atomic stores only.
pub(super) fn forget(first: RawFd, last: RawFd) {
    let first = usize::try_from(first).unwrap_or(0);
    let last = usize::try_from(last).unwrap_or(0).min(LIMIT - 1);
    let mut fd = first;
    while fd <= last {
        let word = fd / 64;
        // A word already clear is left unwritten: in a child copy (every
        // clone3 child closes its fds through here) a write would take a
        // copy-on-write fault on this page for nothing.
        if fd % 64 == 0 && last - fd >= 63 {
            if AT_START[word].load(Ordering::Acquire) != 0 {
                AT_START[word].store(0, Ordering::Release);
            }
            fd += 64;
        } else {
            let bit = 1 << (fd % 64);
            if AT_START[word].load(Ordering::Acquire) & bit != 0 {
                AT_START[word].fetch_and(!bit, Ordering::AcqRel);
            }
            fd += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_ran_and_saw_stdio() {
        assert!(TAKEN.load(Ordering::Acquire));
        assert_eq!(AT_START[0].load(Ordering::Acquire) & 0b111, 0b111);
    }

    #[test]
    fn stdio_and_out_of_range_fds_cannot_be_claimed() {
        for fd in [-1, 0, 1, 2, LIMIT as RawFd] {
            let e = claim(fd).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{fd}");
        }
    }

    #[test]
    fn an_fd_opened_by_the_process_cannot_be_claimed() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        if (fd as usize) < LIMIT
            && AT_START[fd as usize / 64].load(Ordering::Acquire) & (1 << (fd % 64)) == 0
        {
            assert_eq!(claim(fd).unwrap_err().raw_os_error(), Some(libc::EBADF));
        }
    }
}
