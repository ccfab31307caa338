//! Asking the kernel which fds are open, without `/proc`: `poll` with no
//! events (`POLLNVAL` for each fd that is not open), `pselect6` for the end
//! of the fd table, and a zero-timeout poll of one fd. The lowest layer of
//! the fd modules: the startup snapshot of `inherited` and the fd hygiene
//! of `fds` both use it, and it uses neither.

use std::io;
use std::os::fd::{BorrowedFd, RawFd};

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
    use std::os::fd::AsRawFd;

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
    fn an_o_path_fd_is_not_listed() {
        let path = rustix::fs::open(
            "/",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        // (`fds::tests` checks that it is never taken for a pipe.)
        assert!(!listed().contains(&path.as_raw_fd()));
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
