//! [`Pidfd`]: a handle on one process, immune to PID reuse.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::PollFlags;
use rustix::process::{
    getpid, pidfd_open, pidfd_send_signal, waitid, PidfdFlags, Signal, WaitId, WaitIdOptions,
};

/// How a process ended, as `waitid` reports it (`si_code` `CLD_EXITED` or
/// `CLD_KILLED`/`CLD_DUMPED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit`/`_exit` with this code (0..=255).
    Exited(i32),
    /// It was ended by this signal number.
    Signaled(i32),
}

/// A process file descriptor: refers to exactly one process for its whole life,
/// so a signal sent through it can never hit a process that reused the PID.
///
/// There is deliberately no constructor from a bare PID. A `Pidfd` comes from
/// a spawn ([`Child::pidfd`](crate::Child::pidfd)), [`Pidfd::open_self`],
/// [`adopt_children`](crate::adopt_children), or a pidfd received from
/// another process ([`Pidfd::from_received`]). Dropping it closes the fd; it
/// neither kills nor reaps the process.
///
/// ```
/// use lifeline::{Command, ExitStatus, Signal};
///
/// let child = Command::new("sleep").arg("60").spawn()?;
/// let pidfd = child.pidfd();
/// assert!(!pidfd.has_exited());
/// assert_eq!(pidfd.try_wait()?, None);
/// assert!(pidfd.send_signal(Signal::KILL)?);
/// assert_eq!(pidfd.wait()?, ExitStatus::Signaled(Signal::KILL.as_raw()));
/// // Reaped: the PID may now be reused, but the pidfd still names the old
/// // process, and a signal through it reaches nobody.
/// assert!(!pidfd.send_signal(Signal::KILL)?);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
/// - [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
/// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`P_PIDFD`)
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// Wrap a pidfd the kernel produced (clone3, pidfd_open on an unreaped
    /// child, or SCM_RIGHTS from the process itself). `pid` is for display.
    pub(crate) fn from_kernel(fd: OwnedFd, pid: i32) -> Self {
        Pidfd { fd, pid }
    }

    /// Take a pidfd that another process passed over a Unix socket
    /// (`SCM_RIGHTS`); `pid` is the PID it says it is for (kept for display
    /// only: every operation goes through the fd). Checked with
    /// `pidfd_send_signal(fd, 0)`, which only a pidfd accepts (an exited
    /// process's pidfd answers `ESRCH` and is accepted too).
    ///
    /// # Errors
    /// `EBADF` when `fd` is not a pidfd.
    ///
    /// # References
    /// - [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    /// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html) (`SCM_RIGHTS`)
    pub fn from_received(fd: OwnedFd, pid: i32) -> io::Result<Self> {
        // SAFETY: pidfd_send_signal reads its four integer arguments only;
        // `fd` is an open fd owned by this function for the call, signal 0
        // sends nothing, and a null siginfo is allowed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            Ok(Pidfd { fd, pid })
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// A pidfd on the calling process: `pidfd_open(getpid(), 0)`. Race-free,
    /// because the caller is alive while it runs. Nodes send it to their
    /// supervisor so that every verdict can come from a pidfd.
    ///
    /// # Errors
    /// `ENOSYS` on kernels before 5.3; `EMFILE` when out of fds.
    ///
    /// # References
    /// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    pub fn open_self() -> io::Result<Self> {
        let pid = getpid();
        let fd = pidfd_open(pid, PidfdFlags::empty())?;
        Ok(Pidfd {
            fd,
            pid: pid.as_raw_nonzero().get(),
        })
    }

    /// The PID this pidfd was made for (for display and for the legacy
    /// strategies that deliberately act on PIDs; never used to signal here).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Send `signal` with `pidfd_send_signal`. Returns `Ok(false)` when the
    /// process has already exited (`ESRCH`): nobody else can be hit.
    ///
    /// # Errors
    /// `EPERM` when the caller may not signal the process.
    ///
    /// # References
    /// - [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    pub fn send_signal(&self, signal: Signal) -> io::Result<bool> {
        match pidfd_send_signal(&self.fd, signal) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the process has exited (zombie or reaped): `poll` reports
    /// `POLLIN` on a pidfd from the moment of exit, before any reap.
    /// Never blocks.
    ///
    /// # References
    /// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html), section "poll"
    pub fn has_exited(&self) -> bool {
        super::poll::poll_now(self.fd.as_fd(), PollFlags::IN).is_ok_and(|r| !r.is_empty())
    }

    /// Reap the process if it has exited, without blocking:
    /// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`. `Ok(None)` while it runs.
    ///
    /// # Errors
    /// `ECHILD` when the process is not a child of the caller or was already
    /// reaped.
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`P_PIDFD`)
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        self.wait_with(WaitIdOptions::EXITED | WaitIdOptions::NOHANG)
    }

    /// Block until the process exits and reap it: `waitid(P_PIDFD, fd, WEXITED)`.
    ///
    /// `EINTR` is retried.
    ///
    /// # Errors
    /// `ECHILD` when the process is not a child of the caller or was already
    /// reaped.
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`P_PIDFD`)
    pub fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            match self.wait_with(WaitIdOptions::EXITED) {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn wait_with(&self, options: WaitIdOptions) -> io::Result<Option<ExitStatus>> {
        let status = waitid(WaitId::PidFd(self.fd.as_fd()), options)?;
        Ok(status.and_then(|s| {
            if let Some(code) = s.exit_status() {
                Some(ExitStatus::Exited(code))
            } else {
                s.terminating_signal().map(ExitStatus::Signaled)
            }
        }))
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
