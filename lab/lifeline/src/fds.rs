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

/// Duplicate `fd` to the number `target` (`dup2`), without close-on-exec, and
/// leave the new fd unowned: the process keeps it open for good, the way a
/// program that duplicates its stdout to a high fd does.
///
/// # Errors
/// `EBADF` for a bad `target`.
///
/// # References
/// - [dup2(2)](https://man7.org/linux/man-pages/man2/dup2.2.html)
pub fn dup_to(fd: std::os::fd::BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: dup2 on an fd we borrow; the target number is not owned by any
    // value of this process (callers pick a number they never open otherwise).
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The lowest fd number the lab uses for its own plumbing in trial
/// processes (report channel, gates, lifelines, boot record). Scenarios
/// name fds below it (`dup_stdout`), so they can never overwrite the lab's.
pub const LAB_FD_FLOOR: RawFd = 256;

/// Move `fd` to the lowest free number at or above [`LAB_FD_FLOOR`],
/// close-on-exec (`F_DUPFD_CLOEXEC`), and close the original.
///
/// # Errors
/// `EMFILE` when no fd at or above the floor is free (`RLIMIT_NOFILE`).
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_DUPFD_CLOEXEC`)
pub fn move_high(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, LAB_FD_FLOOR)?)
}

/// The pipe behind the calling process's fd `fd`: `Some((inode, write))`
/// when `fd` is open and a pipe (FIFO), with whether it is open for writing;
/// `None` when it is closed or not a pipe. Two syscalls, no `/proc`: the
/// node audits run it on every fd they list.
///
/// # References
/// - [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html),
///   [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFL`)
pub fn own_pipe(fd: RawFd) -> Option<(u64, bool)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `struct stat` into the buffer, which is large
    // enough; an fd that is not open gives EBADF and nothing is read.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat returned 0, so it filled the buffer.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return None;
    }
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (flags >= 0).then_some((st.st_ino, flags & libc::O_ACCMODE != libc::O_RDONLY))
}
