//! [`spawn`]: `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND)` with a lifeline;
//! for a program, `clone3(CLONE_VM | CLONE_VFORK)` on a stack of its own.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use super::exec::{current_env, exec_result, ExecPrep, PreExec};
use super::fds::close_all_except;
use super::namespace::{NsPrep, PidNamespace};
use super::pidfd::Pidfd;
use super::process::exit_now;
#[cfg(target_arch = "x86_64")]
use super::raw;

pub(super) const CLONE_PIDFD: u64 = 0x1000;
/// Not `libc::CLONE_CLEAR_SIGHAND`: libc 0.2.19x defines it as an overflowing
/// `c_int` that evaluates to 0 (DESIGN.md, traps).
pub(super) const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// Same trap as [`CLONE_CLEAR_SIGHAND`].
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_VM`: the child runs in the caller's memory (the vfork path only).
#[cfg(target_arch = "x86_64")]
const CLONE_VM: u64 = 0x100;
/// `CLONE_VFORK`: the caller sleeps until the child execs or exits.
#[cfg(target_arch = "x86_64")]
const CLONE_VFORK: u64 = 0x4000;

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

/// Remove the repeats of the sorted `fds` in place; the distinct values,
/// in order, are the returned prefix.
fn dedup_sorted(fds: &mut [RawFd]) -> &mut [RawFd] {
    let mut n = 0;
    let mut i = 0;
    while i < fds.len() {
        if n == 0 || fds[i] != fds[n - 1] {
            fds[n] = fds[i];
            n += 1;
        }
        i += 1;
    }
    &mut fds[..n]
}

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

    /// Split into the child's end (the reader) and the parent's end (the
    /// write end, which only the parent may hold: a copy of it anywhere else
    /// keeps the lifeline from ever reporting the parent's death).
    pub fn split(self) -> (LifelineReader, OwnedFd) {
        (LifelineReader(self.read), self.write)
    }
}

/// The child's end of its [`Lifeline`].
#[derive(Debug)]
pub struct LifelineReader(OwnedFd);

impl LifelineReader {
    /// Take the lifeline an exec'd process was started with at `fd`,
    /// trusting the caller that nothing else owns it. Marks it
    /// close-on-exec. Prefer the safe [`LifelineReader::claim_inherited`].
    ///
    /// # Safety
    /// As [`take_inherited`](super::take_inherited): nothing else in the
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
    /// program spawned by [`Command`](super::Command) finds it at
    /// [`Command::lifeline_fd`](super::Command::lifeline_fd), 3 by default):
    /// safe, once per fd per process, see
    /// [`claim_inherited`](super::claim_inherited).
    ///
    /// # Errors
    /// As [`claim_inherited`](super::claim_inherited).
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

/// What the child of [`Spawn::run`] (or of [`Command::from_fn`]) is handed.
///
/// [`Command::from_fn`]: super::Command::from_fn
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

    /// Block until the child exits and reap it: [`Pidfd::wait`]. The
    /// lifeline stays open meanwhile (a child waiting for its parent's death
    /// does not see it).
    ///
    /// # Errors
    /// As [`Pidfd::wait`].
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`P_PIDFD`)
    pub fn wait(&self) -> io::Result<super::pidfd::ExitStatus> {
        self.pidfd.wait()
    }
}

/// Options of one spawn: fds the child keeps besides stdio and its lifeline,
/// and the cgroup it starts in. The lower-level form of
/// [`Command`](super::Command), which is built on it: both create every
/// child through the same `clone3`.
#[derive(Debug, Default)]
pub struct Spawn<'a> {
    /// The fds kept open in the child, inline up to 8: a spawn allocates
    /// nothing (no copy-on-write fault in the heap of a spawning copy).
    keep: smallvec::SmallVec<[BorrowedFd<'a>; 8]>,
    cgroup: Option<BorrowedFd<'a>>,
    /// Stdin, stdout, stderr of a [`Spawn::run`] child.
    stdio: [Option<BorrowedFd<'a>>; 3],
    /// The working directory of a [`Spawn::run`] child.
    cwd: Option<CString>,
    /// Start the child as init of a new PID namespace.
    pidns: Option<PidNamespace>,
}

/// Spawn a child that runs `f` with the canonical primitive and default
/// options: `Spawn::default().run(f)`. `f` runs in the child, a copy of the
/// (single-threaded) caller: see [`Spawn::run`] for what it may do.
///
/// # Errors
/// As [`Spawn::run`].
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
pub fn spawn<F: FnOnce(ChildFds) -> i32>(f: F) -> io::Result<Child> {
    Spawn::default().run(f)
}

impl<'a> Spawn<'a> {
    /// Keep `fd` open in the child (at the same number). Applies to
    /// [`Spawn::run`]; for [`Spawn::exec`] map the fd to a number.
    pub fn keep(mut self, fd: BorrowedFd<'a>) -> Self {
        self.keep.push(fd);
        self
    }

    /// Give the child `fd` as its stdout (`dup2` to 1 before the fd hygiene,
    /// which then closes the original in the child). Applies to
    /// [`Spawn::run`]; for [`Spawn::exec`] map the fd to 1.
    pub fn stdout(mut self, fd: BorrowedFd<'a>) -> Self {
        self.stdio[1] = Some(fd);
        self
    }

    /// Give a [`Spawn::run`] child `fd` as its stdio number `n` (0, 1 or 2).
    pub(super) fn stdio(mut self, n: usize, fd: BorrowedFd<'a>) -> Self {
        self.stdio[n] = Some(fd);
        self
    }

    /// Run a [`Spawn::run`] child in the directory `dir`.
    pub(super) fn cwd(mut self, dir: CString) -> Self {
        self.cwd = Some(dir);
        self
    }

    /// Start the child in the cgroup v2 directory `dir` (`CLONE_INTO_CGROUP`),
    /// so it is a member from its first instruction.
    pub fn into_cgroup(mut self, dir: BorrowedFd<'a>) -> Self {
        self.cgroup = Some(dir);
        self
    }

    /// Start the child as init (PID 1) of a new PID namespace, in a private
    /// mount namespace with its own `/proc`, and with
    /// [`PidNamespace::WithUser`] in a new user namespace where the caller's
    /// uid and gid are 0: see [`PidNamespace`] for what that gives and how
    /// it is set up. Applies to [`Spawn::run`] and [`Spawn::exec`].
    ///
    /// The spawn fails (`EPERM` without the privilege, `EINVAL`/`ENOSPC`
    /// where namespaces are off or at their limit, from `clone3`; for a
    /// [`Spawn::exec`] child also the error of the id maps or the `/proc`
    /// mount, through the exec error pipe) rather than start a program half
    /// set up; a [`Spawn::run`] child whose setup fails exits 127 before
    /// `f` runs. A caller that can do without may spawn again without it.
    ///
    /// ```
    /// use lifeline::{Command, ExitStatus, PidNamespace};
    ///
    /// let ns = if rustix::process::geteuid().is_root() {
    ///     PidNamespace::Plain
    /// } else {
    ///     PidNamespace::WithUser
    /// };
    /// // `$$` of a shell that is PID 1 of its namespace.
    /// match Command::new("sh").args(["-c", "test $$ = 1"]).pid_namespace(ns).spawn() {
    ///     Ok(child) => assert_eq!(child.wait()?, ExitStatus::Exited(0)),
    ///     Err(e) => eprintln!("no PID namespace here: {e}"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # References
    /// - [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html) (`CLONE_NEWPID`, `CLONE_NEWUSER`, `CLONE_NEWNS`)
    /// - [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)
    /// - [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
    /// - [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html)
    pub fn pid_namespace(mut self, ns: PidNamespace) -> Self {
        self.pidns = Some(ns);
        self
    }

    /// Create a child that runs `f` and exits with its return value (101 if it
    /// panics). No exec: the child is a copy of the caller.
    ///
    /// In the child, before `f`: signal handlers are reset (`CLONE_CLEAR_SIGHAND`;
    /// ignored signals stay ignored), the stdio fds given are moved into
    /// place, and every fd except 0, 1, 2, the lifeline's read end and the
    /// kept fds is closed with `close_range`.
    ///
    /// # What `f` may do
    /// `f` runs **in the child**, after the clone, never in the caller. The
    /// child is a copy of a caller that had one thread (checked), so no lock
    /// was held by another thread at the clone: `f` may allocate, lock and
    /// call ordinary code, like a single-threaded program. It must not rely
    /// on the caller's fds other than stdio, its lifeline and the kept ones:
    /// the others are closed before `f` runs, so values captured by `f` that
    /// own such fds (an `OwnedFd`, a `File`) name closed numbers in the
    /// child, which a new open in the child may reuse; do not use or drop
    /// them there (keep the fd with [`Spawn::keep`] instead). `f` returns
    /// the exit code (a panic exits 101); the child never returns into the
    /// caller's frames and runs no `atexit` handler (`_exit`).
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
        let alone = match super::process::single_threaded() {
            Some(alone) => alone,
            None => super::process::thread_count()? == 1,
        };
        if !alone {
            return Err(io::Error::from_raw_os_error(libc::EDEADLK));
        }
        let lifeline = Lifeline::new()?;
        // The fds to keep, inline (on the stack) when they fit, as they do
        // in every spawn of the lab: a heap allocation freed after the clone
        // would touch heap pages the clone just made copy-on-write.
        let mut keep: smallvec::SmallVec<[RawFd; 16]> = [0, 1, 2, lifeline.read.as_raw_fd()]
            .into_iter()
            .chain(self.keep.iter().map(|fd| fd.as_raw_fd()))
            .collect();
        keep.sort_unstable();
        let keep = dedup_sorted(&mut keep);
        let ns = self.pidns.map(NsPrep::new);
        // SAFETY: the caller has one thread (checked above; a single thread
        // cannot gain another behind its back), so the child may run
        // ordinary code; it ends with `_exit` below.
        match unsafe { self.clone3() }? {
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
                // ordinary code is safe here; what remains is the namespaces
                // and the fd hygiene.
                if ns.as_ref().is_some_and(|ns| ns.enter_in_child().is_err()) {
                    exit_now(127);
                }
                if self.child_stdio_and_cwd().is_err() {
                    exit_now(127);
                }
                // SAFETY: we are the child copy. The fds closed here may be
                // owned by values of the copied caller's frames; the child
                // never returns into them (it `_exit`s after `f`), and what
                // `f` captured is covered by `run`'s documented contract.
                if unsafe { close_all_except(keep) }.is_err() {
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
    /// and the caller's environment (copied before the clone). Safe from a
    /// multithreaded caller: between clone and exec the child makes only
    /// async-signal-safe syscalls, and no code of the caller runs there.
    ///
    /// On x86_64, without a [`Spawn::pid_namespace`], the child is created
    /// without a copy of the caller's memory: `clone3(CLONE_VM |
    /// CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND)` (plus
    /// `CLONE_INTO_CGROUP`) on a stack of its own, as glibc's
    /// `posix_spawn` does; the calling thread sleeps until the child has
    /// exec'd or exited, and every signal is blocked in it around the clone
    /// (the child restores the caller's mask just before the exec). With a
    /// namespace, or elsewhere, the child is a copy (clone3 without
    /// `CLONE_VM`). Either way the child gets the same lifeline, fds and
    /// error reporting.
    ///
    /// In the child: each `(fd, target)` of `map` is duplicated to `target`,
    /// the lifeline's read end goes to `lifeline_at`, and every other fd
    /// above 2 is marked close-on-exec (`CLOSE_RANGE_CLOEXEC`, below the
    /// highest target too), so the program starts with 0, 1, 2 and exactly
    /// those fds (the kept fds of [`Spawn::keep`] are ignored here).
    ///
    /// # Errors
    /// The exec's own error (`ENOENT`, `EACCES`, ...), reported through a
    /// close-on-exec error pipe (`InvalidData` "short read from the exec error
    /// pipe" when the child's report is cut short: never taken for success);
    /// errors of clone3 as in [`Spawn::run`].
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
        self.exec_with(program, args, current_env(), None, map, lifeline_at)
    }

    /// [`Spawn::exec`] with the environment `env` (`KEY=VALUE` strings) and
    /// the working directory `cwd`: the one exec path of the crate (the
    /// vfork form of [`Spawn::exec_vfork`] where it applies, else a copy).
    pub(super) fn exec_with(
        self,
        program: &CStr,
        args: &[&CStr],
        env: Vec<CString>,
        cwd: Option<CString>,
        map: &[(BorrowedFd<'_>, RawFd)],
        lifeline_at: RawFd,
    ) -> io::Result<Child> {
        let lifeline = Lifeline::new()?;
        let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut moves: Vec<(RawFd, RawFd)> = map.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
        moves.push((lifeline.read.as_raw_fd(), lifeline_at));
        // Everything the child needs, argv, envp and cwd included, is
        // allocated here, before the clone.
        let mut prep = ExecPrep::new(program, args, env, cwd, moves);
        #[cfg(target_arch = "x86_64")]
        if self.pidns.is_none() {
            return self.exec_vfork(prep, lifeline, err_read, err_write);
        }
        if let Some(ns) = self.pidns {
            prep = prep.with_namespace(NsPrep::new(ns));
        }
        let pre = PreExec {
            hygiene: true,
            ..PreExec::default()
        };
        // SAFETY: the child side only runs `exec_in_child`, which is
        // async-signal-safe, so the child of a multithreaded caller never
        // takes a lock or allocates.
        match unsafe { self.clone3() }? {
            Forked::Parent(pidfd) => exec_spawned(pidfd, err_write, &err_read, lifeline),
            // SAFETY: we are the child just created by clone3 (no CLONE_VM),
            // `err_write` is the close-on-exec write end whose read end the
            // parent reads, and the fds of `moves` are open (borrowed by
            // `map`, and the lifeline's read end).
            Forked::Child => unsafe { prep.exec_in_child(err_write.as_raw_fd(), pre) },
        }
    }

    /// The exec path without the copy: `clone3(CLONE_VM | CLONE_VFORK |
    /// CLONE_PIDFD | CLONE_CLEAR_SIGHAND)` (plus `CLONE_INTO_CGROUP`) on a
    /// child stack of its own, the way glibc's `posix_spawn`
    /// (`sysdeps/unix/sysv/linux/spawni.c`) creates its child. The child
    /// shares the caller's memory and runs [`ExecPrep::exec_in_child`] on
    /// `prep`, which was built before the clone; the caller's thread
    /// sleeps until the child has exec'd or exited, then reads the error
    /// pipe as the copy path does. No page table is copied, so the cost
    /// does not grow with the caller's memory.
    ///
    /// Signals: every signal is blocked around the clone (the kernel's
    /// full set, glibc's internal ones included, as posix_spawn does), so
    /// that no handler of the caller runs in the child, which shares its
    /// memory, before `CLONE_CLEAR_SIGHAND` has taken effect or ever; the
    /// caller's mask is restored in the parent after the clone, and in the
    /// child just before the exec.
    ///
    /// # References
    /// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html) (`CLONE_VM`, `CLONE_VFORK`)
    /// - [vfork(2)](https://man7.org/linux/man-pages/man2/vfork.2.html)
    /// - [sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html)
    /// - glibc: `sysdeps/unix/sysv/linux/spawni.c`, `__spawnix`
    #[cfg(target_arch = "x86_64")]
    fn exec_vfork(
        &self,
        mut prep: ExecPrep<'_>,
        lifeline: Lifeline,
        err_read: OwnedFd,
        err_write: OwnedFd,
    ) -> io::Result<Child> {
        let stack = ChildStack::new()?;
        let mut args = CloneArgs {
            flags: CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.base() as u64,
            stack_size: stack.size() as u64,
            ..CloneArgs::default()
        };
        if let Some(dir) = self.cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = dir.as_raw_fd() as u64;
        }
        let mut old: raw::KernelSigset = 0;
        raw::sigprocmask(libc::SIG_SETMASK, Some(&!0), Some(&mut old))
            .map_err(io::Error::from_raw_os_error)?;
        let mut plan = VforkChild {
            prep: &mut prep,
            err_fd: err_write.as_raw_fd(),
            pre: PreExec {
                hygiene: true,
                sigmask: Some(old),
                ..PreExec::default()
            },
        };
        // SAFETY: CLONE_VM | CLONE_VFORK with a stack of its own (mapped for
        // this child alone, top 16-byte aligned) and neither CLONE_THREAD,
        // CLONE_SETTLS nor CLONE_SIGHAND: clone3_vfork's contract. The child
        // runs `vfork_child` on `plan`, which lives in this frame until the
        // call returns, and the call returns only when the child has
        // exec'd or exited, so nothing the child reads is freed under it.
        let forked = unsafe { clone3_vfork(args, &stack, &mut plan) };
        // Restore the caller's mask whatever happened; the mask set here is
        // a valid one (read above), so this cannot fail.
        let _ = raw::sigprocmask(libc::SIG_SETMASK, Some(&old), None);
        // The child has exec'd (its memory is its own) or exited: its stack
        // is free.
        drop(stack);
        let pidfd = forked?;
        #[cfg(test)]
        VFORK_SPAWNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        exec_spawned(pidfd, err_write, &err_read, lifeline)
    }

    /// In a [`Spawn::run`] child: move the stdio fds into place (parked
    /// above every source first, so no `dup2` overwrites a source still to
    /// be moved) and change directory.
    fn child_stdio_and_cwd(&self) -> io::Result<()> {
        let mut parked: [Option<OwnedFd>; 3] = [None, None, None];
        for (slot, fd) in parked.iter_mut().zip(self.stdio.iter()) {
            if let Some(fd) = fd {
                *slot = Some(rustix::io::fcntl_dupfd_cloexec(fd, 3)?);
            }
        }
        for (n, fd) in parked.iter().enumerate() {
            if let Some(fd) = fd {
                // SAFETY: dup2 onto stdio numbers 0..=2, which std treats as
                // borrowed for the whole process (no value owns them); `fd`
                // is open. Touches no memory.
                if unsafe { libc::dup2(fd.as_raw_fd(), n as RawFd) } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        if let Some(dir) = &self.cwd {
            rustix::process::chdir(dir.as_c_str())?;
        }
        Ok(())
    }

    /// `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND)`, into the cgroup when set,
    /// with the namespace flags of [`Spawn::pid_namespace`] when set.
    ///
    /// # Safety
    /// As [`clone3`]: the caller's child side must only run
    /// async-signal-safe code unless the caller is single-threaded, and
    /// must end with `_exit` or an exec.
    unsafe fn clone3(&self) -> io::Result<Forked> {
        let mut args = CloneArgs {
            flags: CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
            exit_signal: libc::SIGCHLD as u64,
            ..CloneArgs::default()
        };
        if let Some(dir) = self.cgroup {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = dir.as_raw_fd() as u64;
        }
        if let Some(ns) = self.pidns {
            args.flags |= ns.clone_flags();
        }
        // SAFETY: the caller's contract is clone3's.
        unsafe { clone3(args) }
    }
}

/// `clone3(args)`, with `args.pidfd` pointed at a fresh slot. Returns in
/// both processes: [`Forked::Parent`] with the child's pidfd,
/// [`Forked::Child`] in the child.
///
/// # Safety
/// - `args.flags` must include [`CLONE_PIDFD`] and must not include
///   `CLONE_VM`, `CLONE_VFORK`, `CLONE_THREAD` or `CLONE_SETTLS` (the child
///   must be a separate copy of the address space, resuming on its own copy
///   of the stack), and `args.stack`/`args.tls` must be 0.
/// - On [`Forked::Child`], the caller must end the child with `_exit` or an
///   exec, never returning into frames whose values own resources of the
///   parent, and, unless the caller had exactly one thread, make only
///   async-signal-safe calls until then (no allocation, no lock: another
///   thread may have held one at the clone, and it stays held forever in
///   the copy).
///
/// # Errors
/// `ENOSYS` before Linux 5.3, `EINVAL` for flags the kernel does not know,
/// `EAGAIN`/`ENOMEM`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
pub(super) unsafe fn clone3(mut args: CloneArgs) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // SAFETY: clone3 without CLONE_VM behaves like fork (the caller's
    // contract): the child gets a copy of the address space and resumes here
    // on its own copy of the stack, so no memory is shared. `args` is a valid
    // clone_args of the size passed, and `pidfd` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        // In the child: return a plain enum value. Async-signal-safe: no
        // allocation, no lock, nothing but registers and our stack copy.
        0 => Ok(Forked::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that
            // nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Forked::Parent(Pidfd::from_kernel(fd, pid as i32)))
        }
    }
}

/// How many children the vfork path has created in this process (tests).
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) static VFORK_SPAWNS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// What the child of the vfork path runs: [`ExecPrep::exec_in_child`] on
/// the parent's `prep`, with the error pipe and the signal mask to restore.
#[cfg(target_arch = "x86_64")]
struct VforkChild<'p, 'a> {
    prep: &'p mut ExecPrep<'a>,
    err_fd: RawFd,
    pre: PreExec,
}

/// The entry point of a vfork-path child, on its own stack: exec the plan
/// of `arg` (a `*mut VforkChild`) or report why not and `_exit(127)`.
///
/// Async-signal-safe: it only calls [`ExecPrep::exec_in_child`], which
/// makes raw errno-free syscalls on memory prepared before the clone and
/// writes nothing of the parent's but the plan's own `parked` slots.
///
/// # Safety
/// Only as the child function of [`clone3_vfork`], with `arg` the
/// `VforkChild` it was given.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn vfork_child(arg: *mut std::ffi::c_void) -> ! {
    // SAFETY: `arg` is the `&mut VforkChild` clone3_vfork was given; the
    // parent's thread sleeps (CLONE_VFORK) until this child has exec'd or
    // exited, so the plan is ours alone meanwhile.
    let plan = unsafe { &mut *arg.cast::<VforkChild<'_, '_>>() };
    // SAFETY: we are the child just created by clone3(CLONE_VM |
    // CLONE_VFORK) on a stack of our own, from the process that built
    // `plan.prep` (without a namespace: exec_with takes this path only
    // then); `err_fd` is the close-on-exec write end of the error pipe whose
    // read end the parent reads, and the fds of the moves are open.
    unsafe { plan.prep.exec_in_child(plan.err_fd, plan.pre) }
}

/// `clone3(args)` with `CLONE_VM | CLONE_VFORK` on `stack`, whose child
/// runs [`vfork_child`] on `plan`; returns in the parent only, once the
/// child has exec'd or exited, with the child's pidfd.
///
/// # Safety
/// `args.flags` includes `CLONE_VM`, `CLONE_VFORK` and [`CLONE_PIDFD`] and
/// none of `CLONE_THREAD`, `CLONE_SETTLS`, `CLONE_SIGHAND`;
/// `args.stack`/`args.stack_size` are `stack`'s. `plan` is valid for the
/// child as [`vfork_child`] needs.
///
/// # Errors
/// `ENOSYS` before Linux 5.3, `EINVAL` for flags the kernel does not know
/// (`CLONE_CLEAR_SIGHAND` before 5.5, `CLONE_INTO_CGROUP` before 5.7),
/// `EAGAIN`/`ENOMEM`, `EBADF` for a bad cgroup fd.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
/// - kernel: `kernel/fork.c`, `kernel_clone` (`wait_for_vfork_done`)
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_vfork(
    mut args: CloneArgs,
    stack: &ChildStack,
    plan: &mut VforkChild<'_, '_>,
) -> io::Result<Pidfd> {
    debug_assert_eq!(args.stack, stack.base() as u64);
    let mut pidfd: RawFd = -1;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // SAFETY: `args` is a valid clone_args of the size passed, `pidfd`
    // outlives the call, the stack is mapped for this child alone; the
    // flags and the child's code are this function's contract.
    let rc = unsafe {
        raw::clone3_run(
            (&mut args as *mut CloneArgs).cast(),
            std::mem::size_of::<CloneArgs>(),
            vfork_child,
            (plan as *mut VforkChild<'_, '_>).cast(),
        )
    };
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc as i32));
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that nothing
    // else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Pidfd::from_kernel(fd, rc as i32))
}

/// The stack of a vfork-path child: an anonymous private mapping with a
/// guard page below it (a child that overflows it faults instead of
/// writing into the caller's memory), unmapped on drop. 64 KiB: the child
/// runs one function of a few frames (glibc's posix_spawn gives its child
/// 32 KiB plus the size of argv, which it may copy for a script).
#[cfg(target_arch = "x86_64")]
struct ChildStack {
    map: *mut std::ffi::c_void,
}

#[cfg(target_arch = "x86_64")]
impl ChildStack {
    const GUARD: usize = 4096;
    const SIZE: usize = 64 * 1024;

    /// Map the stack and its guard page.
    ///
    /// # Errors
    /// `ENOMEM` from mmap or mprotect.
    ///
    /// # References
    /// - [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html) (`MAP_STACK`, `MAP_NORESERVE`)
    /// - [mprotect(2)](https://man7.org/linux/man-pages/man2/mprotect.2.html)
    fn new() -> io::Result<Self> {
        // SAFETY: a new anonymous mapping at an address the kernel picks;
        // it aliases nothing of ours.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::GUARD + Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { map };
        // SAFETY: the first page of the mapping made above, which nothing
        // uses.
        if unsafe { libc::mprotect(map, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest address of the usable stack (`clone_args.stack`).
    fn base(&self) -> *mut std::ffi::c_void {
        self.map.wrapping_byte_add(Self::GUARD)
    }

    /// The usable size (`clone_args.stack_size`); base + size, the top, is
    /// page-aligned, so 16-byte aligned.
    fn size(&self) -> usize {
        Self::SIZE
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, which no child uses any more
        // (a vfork child has exec'd or exited before the clone returned).
        unsafe { libc::munmap(self.map, Self::GUARD + Self::SIZE) };
    }
}

/// The parent's side of an exec spawn once its child exists (either
/// path): close the child's ends (`err_write`, the lifeline's read end),
/// then read the close-on-exec error pipe `err_read`; a child whose exec
/// failed has exited with 127 (or is about to) and is reaped before the
/// error is returned.
///
/// # Errors
/// The exec's errno, from [`exec_result`].
fn exec_spawned(
    pidfd: Pidfd,
    err_write: OwnedFd,
    err_read: &OwnedFd,
    lifeline: Lifeline,
) -> io::Result<Child> {
    drop(err_write);
    drop(lifeline.read);
    if let Err(e) = exec_result(err_read) {
        let _ = pidfd.send_signal(rustix::process::Signal::KILL);
        let _ = pidfd.wait();
        return Err(e);
    }
    Ok(Child {
        pidfd,
        lifeline: lifeline.write,
    })
}

/// Which side of a clone the caller is on.
pub(super) enum Forked {
    /// The caller, with the child's pidfd.
    Parent(Pidfd),
    /// The child.
    Child,
}

#[cfg(test)]
mod dedup_tests {
    use super::dedup_sorted;

    #[test]
    fn repeats_go_and_order_stays() {
        let mut fds = [0, 1, 2, 2, 5, 5, 5, 9];
        assert_eq!(dedup_sorted(&mut fds), &[0, 1, 2, 5, 9]);
        let mut one = [3];
        assert_eq!(dedup_sorted(&mut one), &[3]);
        let mut none: [i32; 0] = [];
        assert!(dedup_sorted(&mut none).is_empty());
    }
}
