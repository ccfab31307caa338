//! [`Lifeline`] / [`LifelineReader`]: how a child learns its parent died.
//! A pipe whose write end only the parent holds: the child's end reports
//! `POLLHUP` the moment the last write end closes, as when the parent dies.
//!
//! # References
//! - [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html),
//!   [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};

/// A lifeline: a pipe whose only write end belongs to the parent. The child
/// holds the read end and sees `POLLHUP` the moment the parent dies.
///
/// Both ends are created close-on-exec *before* the clone, so the child exists
/// with its lifeline already in place: there is no window in which parent death
/// can go unnoticed (the race that defeats `PR_SET_PDEATHSIG`). Every spawn of
/// this crate makes one; [`Lifeline::new`] is for a lifeline of one's own.
///
/// ```
/// let (reader, writer) = lifeline::Lifeline::new()?.split();
/// assert!(!reader.parent_gone());
/// drop(writer); // what the kernel does when the parent dies
/// assert!(reader.parent_gone());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Lifeline {
    pub(super) read: OwnedFd,
    pub(super) write: OwnedFd,
}

impl Lifeline {
    /// `pipe2(O_CLOEXEC)`; the read end, which the child keeps, is moved to
    /// [`LAB_FD_FLOOR`](crate::LAB_FD_FLOOR) or above.
    ///
    /// # Errors
    /// `EMFILE`/`ENFILE` when out of fds.
    ///
    /// # References
    /// - [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html)
    pub fn new() -> io::Result<Self> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        Ok(Lifeline {
            read: super::fds::move_high(read)?,
            write,
        })
    }

    /// Split into the child's end (the reader) and the parent's end (the
    /// write end, which only the parent may hold: a copy of it anywhere else
    /// keeps the lifeline from ever reporting the parent's death).
    pub fn split(self) -> (LifelineReader, OwnedFd) {
        (LifelineReader(self.read), self.write)
    }
}

/// The child's end of its [`Lifeline`].
#[derive(Debug)]
pub struct LifelineReader(pub(super) OwnedFd);

impl LifelineReader {
    /// Take the lifeline an exec'd process was started with at `fd`,
    /// trusting the caller that nothing else owns it. Marks it
    /// close-on-exec. Prefer the safe [`LifelineReader::claim_inherited`].
    ///
    /// # Safety
    /// As [`take_inherited`](crate::take_inherited): nothing else in the
    /// process owns `fd`.
    ///
    /// # Errors
    /// `EBADF` when `fd` is not open; `EBUSY` when it was claimed already.
    ///
    /// # References
    /// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`, `F_SETFD`)
    pub unsafe fn inherited(fd: RawFd) -> io::Result<Self> {
        // SAFETY: the caller's contract is take_inherited's.
        Ok(LifelineReader(unsafe { super::fds::take_inherited(fd)? }))
    }

    /// Claim the lifeline an exec'd process was started with at `fd` (a
    /// program spawned by [`Command`](crate::Command) finds it at
    /// [`Command::lifeline_fd`](crate::Command::lifeline_fd), 3 by default):
    /// safe, once per fd per process, see
    /// [`claim_inherited`](crate::claim_inherited).
    ///
    /// # Errors
    /// As [`claim_inherited`](crate::claim_inherited).
    ///
    /// # References
    /// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_GETFD`, `F_SETFD`)
    pub fn claim_inherited(fd: RawFd) -> io::Result<Self> {
        Ok(LifelineReader(super::fds::claim_inherited(fd)?))
    }

    /// The read end of a pipe made by the legacy paths.
    #[cfg(feature = "legacy")]
    pub(crate) fn from_pipe(read: OwnedFd) -> Self {
        LifelineReader(read)
    }

    /// Whether the parent is gone, without blocking: the pipe reports
    /// `POLLHUP` (or EOF) once every write end is closed.
    ///
    /// # References
    /// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html),
    ///   [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html)
    pub fn parent_gone(&self) -> bool {
        self.wait_parent_gone(Some(Duration::ZERO))
    }

    /// Block until the parent is gone, or `timeout` passes (`None`: forever).
    /// Returns whether the parent is gone. Bytes written to the lifeline by the
    /// parent are not a death and are left unread. `EINTR` is retried; any
    /// other poll error counts as gone (the fd is unusable).
    ///
    /// # References
    /// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html),
    ///   [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html)
    pub fn wait_parent_gone(&self, timeout: Option<Duration>) -> bool {
        // No clock is read without a timeout or with a zero one (the
        // common calls): in a node, the clock's code is pages to fault in.
        let deadline = timeout
            .filter(|t| !t.is_zero())
            .map(|t| std::time::Instant::now() + t);
        loop {
            let left = match (timeout, deadline) {
                (None, _) => None,
                (Some(_), None) => Some(Duration::ZERO),
                (Some(_), Some(d)) => Some(d.saturating_duration_since(std::time::Instant::now())),
            };
            let ts = left.map(|d| rustix::time::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as i64,
            });
            let mut fds = [PollFd::new(&self.0, PollFlags::empty())];
            match poll(&mut fds, ts.as_ref()) {
                Ok(n) if n > 0 && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR) => {
                    return true
                }
                Ok(_) if left == Some(Duration::ZERO) => return false,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return true,
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
        }
    }
}

impl AsFd for LifelineReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl From<LifelineReader> for OwnedFd {
    /// The read end itself, for a child that reads what its parent writes
    /// on the lifeline (a supervisor's plans).
    fn from(reader: LifelineReader) -> OwnedFd {
        reader.0
    }
}
