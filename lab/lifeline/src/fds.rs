//! File descriptor hygiene: `close_range` and marking inherited fds close-on-exec.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `close_range` flag: mark the range close-on-exec instead of closing it.
/// Defined here because not every libc crate version exports it.
pub(super) const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// `close_range(first, last, flags)`: close (or with [`CLOSE_RANGE_CLOEXEC`],
/// mark close-on-exec) every fd in `first..=last`. A range that is closed
/// is also forgotten by the startup snapshot of [`claim_inherited`], so a
/// number reused later is never claimed as inherited.
///
/// Async-signal-safe: one raw syscall and atomic stores on a static, no
/// allocation, no lock.
///
/// # Safety
/// Without `CLOSE_RANGE_CLOEXEC`, the caller must own every open fd of the
/// range, or be a child copy (fork, clone3 without `CLONE_VM`) that never
/// uses or drops the values that own them in the copied memory (it execs or
/// `_exit`s): closing an fd another value owns breaks I/O safety.
///
/// # Errors
/// `EINVAL` for bad flags or `first > last`; `ENOSYS` before Linux 5.9.
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
pub(super) unsafe fn close_range(first: RawFd, last: RawFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range takes three integers and touches no memory of ours;
    // which fds it may close is the caller's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags,
        )
    };
    if rc == 0 {
        if flags & CLOSE_RANGE_CLOEXEC == 0 {
            super::inherited::forget(first, last);
        }
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Mark every fd in `first..=last` close-on-exec
/// (`close_range(CLOSE_RANGE_CLOEXEC)`). Closes nothing, so it is safe.
/// Async-signal-safe: one raw syscall.
///
/// # Errors
/// `EINVAL` for `first > last`; `ENOSYS` before Linux 5.11.
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
pub(super) fn cloexec_range(first: RawFd, last: RawFd) -> io::Result<()> {
    // SAFETY: with CLOSE_RANGE_CLOEXEC nothing is closed; only the
    // close-on-exec flag of the fds changes, which no owner relies on.
    unsafe { close_range(first, last, CLOSE_RANGE_CLOEXEC) }
}

/// Close every fd except `keep`, which must be sorted ascending and free of
/// duplicates. Async-signal-safe (only `close_range`), allocation-free.
///
/// # Safety
/// As [`close_range`] without flags: for a child copy that never uses the
/// values owning the closed fds.
///
/// # Errors
/// As [`close_range`].
pub(super) unsafe fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut next: RawFd = 0;
    for &fd in keep {
        if fd > next {
            // SAFETY: the caller's contract.
            unsafe { close_range(next, fd - 1, 0)? };
        }
        next = fd + 1;
    }
    // SAFETY: the caller's contract.
    unsafe { close_range(next, RawFd::MAX, 0) }
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
    cloexec_range(3, RawFd::MAX)
}

/// Take ownership of fd `fd`, which the process was started with, trusting
/// the caller that nothing else owns it. Checks that the fd is open, and
/// marks it close-on-exec. Prefer the safe [`claim_inherited`].
///
/// # Safety
/// `fd` must not be owned by anything else in the process (an `OwnedFd`,
/// a `File`, a socket, std's stdio) for as long as the returned `OwnedFd`
/// lives; otherwise two owners close the same number, and the second close
/// may hit an unrelated file that reused it (I/O safety). An fd handed to
/// the process at exec and not yet taken qualifies. When `fd` is in the
/// startup snapshot of [`claim_inherited`], it is marked claimed there, and
/// taking it a second time (by either function) fails with `EBUSY`.
///
/// # Errors
/// `EBADF` when the fd is not open; `EBUSY` when it was already claimed.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`, `F_SETFD`)
pub unsafe fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if !super::inherited::mark_claimed(fd) {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    // SAFETY: the caller guarantees nothing else owns `fd`.
    unsafe { own_open_fd(fd) }
}

/// Check that `fd` is open, own it, mark it close-on-exec.
///
/// # Safety
/// Nothing else owns `fd`.
unsafe fn own_open_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and nothing else owns it (the
    // caller's contract).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}

/// Claim fd `fd`, which the process inherited across `execve`: the safe way
/// to take the fds a parent handed to a program at fixed numbers (like the
/// `listenfd` crate does for sockets). Returns it owned and marked
/// close-on-exec.
///
/// Why this is sound, with no promise from the caller:
/// - *The process did not open it itself.* Before `main` (from an
///   `.init_array` constructor, before any Rust code of the program runs)
///   the crate records which fds below 4096 are open: those came through
///   the exec. Only they can be claimed.
/// - *Nothing owns it yet.* Each fd of that snapshot can be claimed once per
///   process (an atomic once flag per fd), and [`take_inherited`] sets the
///   same flag. Std's stdio (0, 1, 2) is never handed out.
/// - *It is still the inherited file.* Closing an fd one does not own
///   breaks I/O safety, so the number still names the inherited file unless
///   its owner closed it, and only a claimer can own it. The crate's own
///   `close_range` of a child copy forgets the numbers it closes, so a copy
///   cannot claim a reused number. The fd is checked open.
///
/// # Errors
/// - `EINVAL` for 0, 1, 2 (std's stdio), a negative fd or one at or above
///   4096 (outside the snapshot).
/// - `EBADF` when `fd` was not open at startup or is not open now.
/// - `EBUSY` when it was already claimed (or taken) in this process.
/// - `Unsupported` when the startup snapshot did not run (a platform
///   without `.init_array`).
///
/// # References
/// - [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html)
///   ("file descriptors open in the calling process image remain open")
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`, `F_SETFD`)
pub fn claim_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    super::inherited::claim(fd)?;
    // SAFETY: `claim` checked that `fd` was open before any code of this
    // process ran (so it came through the exec), that it was not forgotten
    // by a close of the crate, and set its once flag: nothing else
    // claimed or took it, so nothing else owns it (see the doc above).
    unsafe { own_open_fd(fd) }
}

/// Duplicate `fd` to the number `target` (`dup2`), without close-on-exec, and
/// leave the new fd unowned: the process keeps it open for good, the way a
/// program that duplicates its stdout to a high fd does. Prefer the safe
/// [`dup_to_free`], which never replaces an open fd.
///
/// # Safety
/// `target` must not be an fd that any value of the process owns or uses
/// (`dup2` silently closes and replaces whatever is open there).
///
/// # Errors
/// `EBADF` for a bad `target`.
///
/// # References
/// - [dup2(2)](https://man7.org/linux/man-pages/man2/dup2.2.html)
pub unsafe fn dup_to(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 on an fd we borrow; the caller guarantees that nothing
    // owns or uses `target`.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Duplicate `fd` to the number `target`, without close-on-exec, only if
/// `target` is free: `fcntl(fd, F_DUPFD, target)` takes the lowest free
/// number at or above `target`; when that is not `target` (it was open),
/// the duplicate is closed again and `EBUSY` returned. So it never replaces
/// an open fd, and the caller owns the result (leak it with
/// [`std::mem::forget`] or `into_raw_fd` to keep it open for good, as a
/// program that duplicates its stdout to a high fd does).
///
/// # Errors
/// `EBUSY` when `target` is open; `EINVAL` for a negative `target` or one
/// beyond `RLIMIT_NOFILE`; `EMFILE` when no number at or above `target` is
/// free.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_DUPFD`)
pub fn dup_to_free(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<OwnedFd> {
    if target < 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: F_DUPFD allocates a new, free fd number (it never replaces an
    // open one) and touches no memory of ours.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, target) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `got` was just allocated by F_DUPFD: nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(got) };
    if got != target {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    Ok(owned)
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
pub fn move_high(fd: OwnedFd) -> io::Result<OwnedFd> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_o_path_fd_cannot_be_a_pipe() {
        let path = rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert_eq!(own_pipe(path.as_raw_fd()), None);
    }
}
