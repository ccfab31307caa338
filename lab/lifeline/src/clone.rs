//! [`spawn`]: `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND)` with a lifeline.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use super::exec::{exec_result, ExecPrep, PreExec};
use super::fds::close_all_except;
use super::pidfd::Pidfd;
use super::process::exit_now;

pub(super) const CLONE_PIDFD: u64 = 0x1000;
/// Not `libc::CLONE_CLEAR_SIGHAND`: libc 0.2.19x defines it as an overflowing
/// `c_int` that evaluates to 0 (DESIGN.md, traps).
pub(super) const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// Same trap as [`CLONE_CLEAR_SIGHAND`].
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `<linux/sched.h>`, version 2 (88 bytes).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

/// A lifeline: a pipe whose only write end belongs to the parent. The child
/// holds the read end and sees `POLLHUP` the moment the parent dies.
///
/// Both ends are created close-on-exec *before* the clone, so the child exists
/// with its lifeline already in place: there is no window in which parent death
/// can go unnoticed (the race that defeats `PR_SET_PDEATHSIG`).
#[derive(Debug)]
pub struct Lifeline {
    read: OwnedFd,
    write: OwnedFd,
}

impl Lifeline {
    /// `pipe2(O_CLOEXEC)`; the read end, which the child keeps, is moved to
    /// [`LAB_FD_FLOOR`](super::LAB_FD_FLOOR) or above.
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
}

/// The child's end of its [`Lifeline`].
#[derive(Debug)]
pub struct LifelineReader(OwnedFd);

impl LifelineReader {
    /// Take the lifeline an exec'd process was started with at `fd` (the
    /// lab's exec'd nodes find theirs at a fixed number). Marks it
    /// close-on-exec.
    ///
    /// # Errors
    /// `EBADF` when `fd` is not open.
    pub fn inherited(fd: RawFd) -> io::Result<Self> {
        Ok(LifelineReader(super::fds::take_inherited(fd)?))
    }

    /// The read end of a pipe made by the legacy paths.
    #[cfg(feature = "legacy")]
    pub(crate) fn from_pipe(read: OwnedFd) -> Self {
        LifelineReader(read)
    }

    /// Whether the parent is gone, without blocking: the pipe reports
    /// `POLLHUP` (or EOF) once every write end is closed.
    pub fn parent_gone(&self) -> bool {
        self.wait_parent_gone(Some(Duration::ZERO))
    }

    /// Block until the parent is gone, or `timeout` passes (`None`: forever).
    /// Returns whether the parent is gone. Bytes written to the lifeline by the
    /// parent are not a death and are left unread.
    pub fn wait_parent_gone(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
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

/// What the child of [`Spawn::run`] is handed.
#[derive(Debug)]
pub struct ChildFds {
    /// The read end of the child's lifeline.
    pub lifeline: LifelineReader,
}

/// A child created by [`spawn`]: its pidfd and the write end of its lifeline.
/// Dropping the `Child` closes the lifeline, which tells a lingering child its
/// parent is gone; it does not kill or reap it.
#[derive(Debug)]
pub struct Child {
    pidfd: Pidfd,
    lifeline: OwnedFd,
}

impl Child {
    /// A child made by the legacy paths, with its pidfd and lifeline.
    #[cfg(feature = "legacy")]
    pub(crate) fn from_parts(pidfd: Pidfd, lifeline: OwnedFd) -> Self {
        Child { pidfd, lifeline }
    }

    /// The child's pidfd.
    pub fn pidfd(&self) -> &Pidfd {
        &self.pidfd
    }

    /// The write end of the child's lifeline. An exec'd child may read what is
    /// written there (the lab sends plans to its supervisors this way).
    pub fn lifeline(&self) -> BorrowedFd<'_> {
        self.lifeline.as_fd()
    }

    /// Split into the pidfd and the lifeline's write end.
    pub fn into_parts(self) -> (Pidfd, OwnedFd) {
        (self.pidfd, self.lifeline)
    }
}

/// Options of one spawn: fds the child keeps besides stdio and its lifeline,
/// and the cgroup it starts in.
#[derive(Debug, Default)]
pub struct Spawn<'a> {
    keep: Vec<BorrowedFd<'a>>,
    cgroup: Option<BorrowedFd<'a>>,
    stdout: Option<BorrowedFd<'a>>,
}

/// Spawn a child that runs `f` with the canonical primitive and default
/// options: `Spawn::default().run(f)`.
///
/// # Errors
/// As [`Spawn::run`].
pub fn spawn<F: FnOnce(ChildFds) -> i32>(f: F) -> io::Result<Child> {
    Spawn::default().run(f)
}

impl<'a> Spawn<'a> {
    /// Keep `fd` open in the child (at the same number).
    pub fn keep(mut self, fd: BorrowedFd<'a>) -> Self {
        self.keep.push(fd);
        self
    }

    /// Give the child `fd` as its stdout (`dup2` to 1 before the fd hygiene,
    /// which then closes the original in the child). Applies to
    /// [`Spawn::run`]; for [`Spawn::exec`] map the fd to 1.
    pub fn stdout(mut self, fd: BorrowedFd<'a>) -> Self {
        self.stdout = Some(fd);
        self
    }

    /// Start the child in the cgroup v2 directory `dir` (`CLONE_INTO_CGROUP`),
    /// so it is a member from its first instruction.
    pub fn into_cgroup(mut self, dir: BorrowedFd<'a>) -> Self {
        self.cgroup = Some(dir);
        self
    }

    /// Create a child that runs `f` and exits with its return value (101 if it
    /// panics). No exec: the child is a copy of the caller.
    ///
    /// In the child, before `f`: signal handlers are reset (`CLONE_CLEAR_SIGHAND`;
    /// ignored signals stay ignored), and every fd except 0, 1, 2, the
    /// lifeline's read end and the kept fds is closed with `close_range`.
    ///
    /// # Errors
    /// - `EDEADLK` when the caller has more than one thread: a copy of a
    ///   multithreaded process may hold locks no thread will ever release
    ///   (casebook 4), so the canonical primitive refuses it. Use
    ///   [`Spawn::exec`] there.
    /// - `ENOSYS` before Linux 5.5 (clone3), `EAGAIN`/`ENOMEM` from clone3.
    ///
    /// # References
    /// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
    /// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
    pub fn run<F: FnOnce(ChildFds) -> i32>(self, f: F) -> io::Result<Child> {
        if super::process::thread_count()? > 1 {
            return Err(io::Error::from_raw_os_error(libc::EDEADLK));
        }
        let lifeline = Lifeline::new()?;
        let mut keep: Vec<RawFd> = vec![0, 1, 2, lifeline.read.as_raw_fd()];
        keep.extend(self.keep.iter().map(|fd| fd.as_raw_fd()));
        keep.sort_unstable();
        keep.dedup();
        match self.clone3()? {
            Forked::Parent(pidfd) => {
                drop(lifeline.read);
                Ok(Child {
                    pidfd,
                    lifeline: lifeline.write,
                })
            }
            Forked::Child => {
                // We are the child, alone: the caller had one thread (checked
                // above), so no lock was held by another thread at the clone and
                // ordinary code is safe here; what remains is the fd hygiene.
                if let Some(out) = self.stdout {
                    if rustix::stdio::dup2_stdout(out).is_err() {
                        exit_now(127);
                    }
                }
                if close_all_except(&keep).is_err() {
                    exit_now(127);
                }
                // close_range closed the write end's number: never drop it.
                std::mem::forget(lifeline.write);
                let fds = ChildFds {
                    lifeline: LifelineReader(lifeline.read),
                };
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(fds)));
                exit_now(code.unwrap_or(101))
            }
        }
    }

    /// Create a child that execs `program` with `args` (`args[0]` included)
    /// and the caller's environment. Safe from a multithreaded caller: between
    /// clone and exec the child makes only async-signal-safe syscalls.
    ///
    /// In the child: each `(fd, target)` of `map` is duplicated to `target`,
    /// the lifeline's read end goes to `lifeline_at`, and every other fd is
    /// marked close-on-exec (`CLOSE_RANGE_CLOEXEC`), so the program starts with
    /// exactly those fds (the kept fds of [`Spawn::keep`] are ignored here).
    ///
    /// # Errors
    /// The exec's own error (`ENOENT`, `EACCES`, ...), reported through a
    /// close-on-exec error pipe; errors of clone3 as in [`Spawn::run`].
    ///
    /// # References
    /// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
    /// - [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html)
    /// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
    pub fn exec(
        self,
        program: &CStr,
        args: &[&CStr],
        map: &[(BorrowedFd<'_>, RawFd)],
        lifeline_at: RawFd,
    ) -> io::Result<Child> {
        let lifeline = Lifeline::new()?;
        let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut moves: Vec<(RawFd, RawFd)> = map.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
        moves.push((lifeline.read.as_raw_fd(), lifeline_at));
        let mut prep = ExecPrep::new(program, args, moves);
        match self.clone3()? {
            Forked::Parent(pidfd) => {
                drop(err_write);
                drop(lifeline.read);
                if let Err(errno) = exec_result(&err_read) {
                    // The child has exited with 127; reap it before reporting.
                    let _ = pidfd.wait();
                    return Err(io::Error::from_raw_os_error(errno));
                }
                Ok(Child {
                    pidfd,
                    lifeline: lifeline.write,
                })
            }
            Forked::Child => {
                let pre = PreExec {
                    hygiene: true,
                    ..PreExec::default()
                };
                prep.exec_in_child(err_write.as_raw_fd(), pre)
            }
        }
    }

    fn clone3(&self) -> io::Result<Forked> {
        let mut args = CloneArgs {
            flags: CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
            exit_signal: libc::SIGCHLD as u64,
            ..CloneArgs::default()
        };
        if let Some(dir) = self.cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = dir.as_raw_fd() as u64;
        }
        clone3(args)
    }
}

/// `clone3(args)`, with `args.pidfd` pointed at a fresh slot; `args.flags`
/// must include [`CLONE_PIDFD`] and not `CLONE_VM`. Returns in both
/// processes: [`Forked::Parent`] with the child's pidfd, [`Forked::Child`] in
/// the child, which must end with `_exit` and, when the caller may be
/// multithreaded, make only async-signal-safe calls until then.
///
/// # Errors
/// `ENOSYS` before Linux 5.3, `EINVAL` for flags the kernel does not know,
/// `EAGAIN`/`ENOMEM`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
pub(super) fn clone3(mut args: CloneArgs) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a
    // copy of the address space and resumes here on its own copy of the
    // stack, so no memory is shared. `args` is a valid clone_args of the
    // size passed, and `pidfd` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that
            // nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Forked::Parent(Pidfd::from_kernel(fd, pid as i32)))
        }
    }
}

/// Which side of a clone the caller is on.
pub(super) enum Forked {
    /// The caller, with the child's pidfd.
    Parent(Pidfd),
    /// The child.
    Child,
}
