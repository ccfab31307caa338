//! File descriptor hygiene: `close_range` and marking inherited fds close-on-exec.

use std::io;
use std::os::fd::RawFd;

/// `close_range` flag: mark the range close-on-exec instead of closing it.
/// Defined here because not every libc crate version exports it.
pub(super) const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// `close_range(first, last, flags)`: close (or with [`CLOSE_RANGE_CLOEXEC`],
/// mark close-on-exec) every fd in `first..=last`.
///
/// Async-signal-safe: one raw syscall, no allocation, no lock.
///
/// # Errors
/// `EINVAL` for bad flags or `first > last`; `ENOSYS` before Linux 5.9.
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
pub(super) fn close_range(first: RawFd, last: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range takes three integers and touches no memory of ours.
    // Fds it closes may still be named by OwnedFd values in this process; the
    // callers (the child side of `spawn`) forget or never drop those values.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Close every fd except `keep`, which must be sorted ascending and free of
/// duplicates. Async-signal-safe (only `close_range`), allocation-free.
///
/// # Errors
/// As [`close_range`].
pub(super) fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut next: RawFd = 0;
    for &fd in keep {
        if fd > next {
            close_range(next, fd - 1, 0)?;
        }
        next = fd + 1;
    }
    close_range(next, RawFd::MAX, 0)
}

/// Mark every fd from 3 up close-on-exec, so that stray fds inherited from the
/// shell that started the lab (seen here: fd 10 and 251) reach no process the
/// lab execs. Call once at startup, before any thread or fd of the lab's own.
///
/// # Errors
/// `ENOSYS` before Linux 5.11 (`CLOSE_RANGE_CLOEXEC`).
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
pub fn mark_inherited_cloexec() -> io::Result<()> {
    close_range(3, RawFd::MAX, CLOSE_RANGE_CLOEXEC)
}

/// Take ownership of fd `fd`, which the process was started with (the lab
/// execs each supervisor with its plan lifeline at 3 and its result pipe at
/// 4). Checks that the fd is open, and marks it close-on-exec.
///
/// Call it once per fd, at startup, before anything else could own it.
///
/// # Errors
/// `EBADF` when the fd is not open.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`, `F_SETFD`)
pub fn take_inherited(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and, per this function's contract,
    // was handed to the process at exec and is owned by nothing else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}
