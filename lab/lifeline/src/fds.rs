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

/// Whether fd number `fd` lies inside the calling process's fd table
/// (below the kernel's `max_fds`, `FDSize` in `/proc/self/status`): false
/// means no fd numbered `fd` or above is open. At most two syscalls and no
/// `/proc` (opening `/proc/self/...` makes the process's `/proc` dentries
/// and formats the whole file: the node audits run this in every node).
///
/// How: `fcntl(F_GETFD)` answers for an open fd. For a closed one,
/// `pselect6` with only `fd` in its read set and a zero timeout tells the
/// two cases apart: `core_sys_select` (fs/select.c) cuts `n` down to
/// `max_fds` before `max_select_fd` checks that every fd asked for is open,
/// so a closed fd inside the table gives `EBADF` and one at or beyond its
/// end is never looked at (0 ready). The unit tests check this against
/// `FDSize`.
///
/// # Errors
/// Errors of pselect6 other than `EBADF` and `EINTR` (`ENOMEM`); `EINVAL`
/// for a negative `fd`.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`),
///   [select(2)](https://man7.org/linux/man-pages/man2/select.2.html) (`pselect6`)
/// - `core_sys_select` and `max_select_fd` in fs/select.c
pub fn in_fd_table(fd: RawFd) -> io::Result<bool> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: F_GETFD takes no argument and only reads the fd's flags; the
    // fd number is looked up, never used as ours.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
        return Ok(true);
    }
    const WORD: usize = u64::BITS as usize;
    let words = fd as usize / WORD + 1;
    // Inline up to fd 1023 (the audits ask at 256, 512 and so on); a larger
    // table is rare enough to allocate for.
    let mut inline = [0u64; 16];
    let mut heap = Vec::new();
    let set: &mut [u64] = if words <= inline.len() {
        &mut inline[..words]
    } else {
        heap.resize(words, 0u64);
        &mut heap
    };
    loop {
        set.fill(0);
        set[fd as usize / WORD] = 1 << (fd as usize % WORD);
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the read set holds `fd + 1` bits, all the kernel reads
        // (and writes back) for `n = fd + 1`; the write and except sets and
        // the signal mask are null; the zero timeout is only read. Nothing
        // is waited for: the timeout is zero.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pselect6,
                fd + 1,
                set.as_mut_ptr(),
                std::ptr::null_mut::<u64>(),
                std::ptr::null_mut::<u64>(),
                &zero,
                std::ptr::null::<libc::c_void>(),
            )
        };
        if rc >= 0 {
            // `fd` was not looked at: it is at or beyond the table's end.
            // (An fd another thread opened there since the F_GETFD is
            // missed, as any fd opened during a listing may be.)
            return Ok(false);
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EBADF) => return Ok(true),
            Some(libc::EINTR) => continue,
            _ => return Err(io::Error::last_os_error()),
        }
    }
}

/// Call `visit` with every open fd of the calling process but `O_PATH` ones,
/// in increasing order, without `/proc`: the fds are asked 256 at a time
/// with one `poll` each, which answers `POLLNVAL` exactly for an fd that is
/// not open, and for an `O_PATH` fd (`fdget` in `do_pollfd`, fs/select.c,
/// skips `FMODE_PATH` files; such an fd is never a pipe, a socket or a
/// tty), until [`in_fd_table`] says the next chunk starts beyond the fd
/// table. Listing `/proc/self/fd` instead makes a dentry and an inode for
/// each fd (`proc_readfd_common` in fs/proc/fd.c), freed again when the
/// process is reaped. The fd numbers are only read, never used: nothing is
/// borrowed or owned here. Fds opened or closed by another thread meanwhile
/// may or may not be seen, as with any listing.
///
/// # Errors
/// Errors of poll and of [`in_fd_table`].
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) (`POLLNVAL`)
pub fn each_open_fd(mut visit: impl FnMut(RawFd)) -> io::Result<()> {
    let mut first = 0;
    loop {
        each_open_in(first, POLL_CHUNK, &mut visit)?;
        first += POLL_CHUNK as RawFd;
        if !in_fd_table(first)? {
            return Ok(());
        }
    }
}

/// The most fds [`each_open_in`] asks in one `poll`.
pub(super) const POLL_CHUNK: usize = 256;

/// Call `visit` with every open fd (but `O_PATH` ones) of
/// `first..first + n`, `n` at most [`POLL_CHUNK`], in increasing order: one
/// `poll` with no events, which answers `POLLNVAL` for each that is not
/// open. No allocation and nothing of std but the error: the startup fd
/// snapshot runs it before `main`.
///
/// # Errors
/// Errors of poll (`ENOMEM`).
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html) (`POLLNVAL`)
pub(super) fn each_open_in(
    first: RawFd,
    n: usize,
    visit: &mut impl FnMut(RawFd),
) -> io::Result<()> {
    let n = n.min(POLL_CHUNK);
    let mut polled = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; POLL_CHUNK];
    for (k, p) in polled.iter_mut().take(n).enumerate() {
        p.fd = first + k as RawFd;
    }
    loop {
        // SAFETY: `polled` holds `n` initialised pollfds that poll reads
        // and whose `revents` it writes; a zero timeout never blocks. The
        // fd numbers are only looked up by the kernel, never used as ours.
        if unsafe { libc::poll(polled.as_mut_ptr(), n as libc::nfds_t, 0) } >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    for p in &polled[..n] {
        if p.revents & libc::POLLNVAL == 0 {
            visit(p.fd);
        }
    }
    Ok(())
}

/// Which of `events` (and of `POLLERR`, `POLLHUP`, `POLLNVAL`) `fd`
/// reports now: one `poll` with a zero timeout, retried on `EINTR`. Never
/// blocks.
///
/// # Errors
/// Errors of poll.
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
pub fn poll_now(
    fd: BorrowedFd<'_>,
    events: rustix::event::PollFlags,
) -> io::Result<rustix::event::PollFlags> {
    use rustix::event::{poll, PollFd};
    let mut fds = [PollFd::new(&fd, events)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match poll(&mut fds, Some(&zero)) {
            Ok(_) => return Ok(fds[0].revents()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> Vec<RawFd> {
        let mut fds = Vec::new();
        each_open_fd(|fd| fds.push(fd)).unwrap();
        fds
    }

    #[test]
    fn every_open_fd_is_listed_in_order_and_a_closed_one_is_not() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        // Above the first poll chunk, and above the default table of 64.
        let high = rustix::io::fcntl_dupfd_cloexec(&w, 700).unwrap();
        let (r, w, high) = (r.as_raw_fd(), w, high);
        let fds = listed();
        assert!(fds.windows(2).all(|p| p[0] < p[1]), "{fds:?}");
        for fd in [r, w.as_raw_fd(), high.as_raw_fd()] {
            assert!(fds.contains(&fd), "fd {fd} not in {fds:?}");
        }
        assert!(in_fd_table(high.as_raw_fd()).unwrap());
        // Other tests open and close fds meanwhile: only ours are compared
        // (none of them asks for an fd this high).
        let closed = high.as_raw_fd();
        drop(high);
        assert!(!listed().contains(&closed));
    }

    #[test]
    fn an_o_path_fd_is_not_listed_and_cannot_be_a_pipe() {
        let path = rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        assert!(!listed().contains(&path.as_raw_fd()));
        assert_eq!(own_pipe(path.as_raw_fd()), None);
    }

    /// `FDSize` of `/proc/self/status`: the kernel's `max_fds`, what
    /// [`in_fd_table`] must agree with.
    fn fd_table_size() -> RawFd {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn the_fd_table_ends_where_fd_size_says() {
        // Grow the table to 1024 (an fd at 1000, below the usual soft
        // RLIMIT_NOFILE of 1024), so that the probes at its end need more
        // than the inline read set.
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let high = rustix::io::fcntl_dupfd_cloexec(&w, 1000).unwrap();
        let size = fd_table_size();
        assert!(size > 1000, "FDSize {size}");
        for fd in [0, 63, 64, 255, 256, 511, 512, 999, 1000, size - 1] {
            assert!(in_fd_table(fd).unwrap(), "fd {fd} is below FDSize {size}");
        }
        for fd in [size, size + 1, size + 64, 2 * size, 100_000] {
            assert!(
                !in_fd_table(fd).unwrap(),
                "fd {fd} is not below FDSize {size}"
            );
        }
        assert!(in_fd_table(-1).is_err());
        drop(high);
    }
}
