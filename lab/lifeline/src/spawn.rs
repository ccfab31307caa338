//! [`spawn`] and [`Spawn`]: `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND)`
//! with a [`Lifeline`]; for a program, `clone3(CLONE_VM | CLONE_VFORK)` on
//! a stack of its own (the vfork path, `vfork.rs`).
//!
//! # References
//! - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::pipe::{pipe_with, PipeFlags};

use super::clone3::{
    clone3, CloneArgs, Forked, CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_PIDFD,
};
use super::execve::{current_env, exec_result, report_setup_error, ExecPrep, PreExec};
use super::fds::close_all_except;
use super::lifeline::{Lifeline, LifelineReader};
use super::namespace::{NsPrep, PidNamespace};
use super::pidfd::{ExitStatus, Pidfd};
use super::process::exit_now;

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

/// What the child of [`Spawn::run`] (or of [`Command::from_fn`]) is handed.
///
/// [`Command::from_fn`]: super::Command::from_fn
#[derive(Debug)]
pub struct ChildFds {
    /// The read end of the child's lifeline.
    pub lifeline: LifelineReader,
    /// The fds given with [`Spawn::give`], in the order given, owned by the
    /// child (the caller closed its copies once the child existed).
    pub given: Vec<OwnedFd>,
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
    pub fn wait(&self) -> io::Result<ExitStatus> {
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
    /// Fds handed over to a [`Spawn::run`] child ([`Spawn::give`]).
    given: Vec<OwnedFd>,
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

    /// Hand `fd` over to a [`Spawn::run`] child: it stays open there at the
    /// same number and comes to `f` owned, in [`ChildFds::given`] (in the
    /// order of the calls); the caller's copy is closed when the spawn
    /// returns, child or not. Unlike [`Spawn::keep`], no value of the
    /// caller's copied frames owns it in the child, so the child may use,
    /// keep and close it as its own. Ignored by [`Spawn::exec`].
    pub fn give(mut self, fd: OwnedFd) -> Self {
        self.given.push(fd);
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
    /// where namespaces are off or at their limit, from `clone3`; also the
    /// error of the id maps or the `/proc` mount, which the child reports
    /// through a close-on-exec error pipe before it exits 127) rather than
    /// start a child half set up: a [`Spawn::run`] child whose setup fails
    /// never runs `f`. A caller that can do without may spawn again without
    /// it.
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
    /// ignored signals stay ignored), the namespaces of
    /// [`Spawn::pid_namespace`] are set up, the stdio fds given are moved
    /// into place, and every fd except 0, 1, 2, the lifeline's read end, the
    /// kept fds and the given ones is closed with `close_range`.
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
    /// - With [`Spawn::pid_namespace`]: the error of the namespace's setup
    ///   in the child (the id maps, the `/proc` mount); the child has
    ///   exited and is reaped.
    ///
    /// # References
    /// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
    /// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
    pub fn run<F: FnOnce(ChildFds) -> i32>(mut self, f: F) -> io::Result<Child> {
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
            .chain(self.given.iter().map(AsRawFd::as_raw_fd))
            .collect();
        keep.sort_unstable();
        let keep = dedup_sorted(&mut keep);
        let ns = self.pidns.map(NsPrep::new);
        // With a namespace, its setup's error comes back on a close-on-exec
        // pipe (closed in the child by the fd hygiene once the setup is
        // done: EOF is success).
        let setup_err = match ns {
            Some(_) => Some(pipe_with(PipeFlags::CLOEXEC)?),
            None => None,
        };
        // SAFETY: the caller has one thread (checked above; a single thread
        // cannot gain another behind its back), so the child may run
        // ordinary code; it ends with `_exit` below.
        match unsafe { self.clone3() }? {
            Forked::Parent(pidfd) => {
                drop(lifeline.read);
                if let Some((err_read, err_write)) = setup_err {
                    drop(err_write);
                    if let Err(e) = exec_result(&err_read) {
                        let _ = pidfd.wait();
                        return Err(e);
                    }
                }
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
                if let (Some(ns), Some((_, err_write))) = (&ns, &setup_err) {
                    if let Err(e) = ns.enter_in_child() {
                        let errno = e.raw_os_error().unwrap_or(libc::EIO);
                        // SAFETY: we are the child just made by clone3, and
                        // `err_write` is the open write end of the error
                        // pipe whose read end the parent reads above.
                        unsafe { report_setup_error(err_write.as_raw_fd(), errno) }
                    }
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
                // close_range closed the write end's number (and the error
                // pipe's): never drop them.
                std::mem::forget(lifeline.write);
                std::mem::forget(setup_err);
                let fds = ChildFds {
                    lifeline: LifelineReader(lifeline.read),
                    given: std::mem::take(&mut self.given),
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
    /// vfork path of `vfork::spawn_vfork` where it applies, else a copy).
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
            let pidfd = super::vfork::spawn_vfork(self.cgroup, &mut prep, err_write.as_raw_fd())?;
            return exec_spawned(pidfd, err_write, &err_read, lifeline);
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
