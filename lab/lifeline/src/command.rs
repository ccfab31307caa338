//! [`Command`]: a `std::process::Command`-like builder over [`Spawn`], the
//! canonical primitive with a lifeline.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{open, Mode, OFlags};

use super::execve::{env_block, resolve_os};
use super::namespace::PidNamespace;
use super::pidfd::ExitStatus;
use super::spawn::{Child, ChildFds, Spawn};

/// Where a standard stream (stdin, stdout or stderr) of the child goes.
#[derive(Clone, Copy, Debug, Default)]
pub enum Stdio<'a> {
    /// The caller's own fd 0, 1 or 2 (the default).
    #[default]
    Inherit,
    /// `/dev/null`, opened read-write.
    Null,
    /// This fd, duplicated to the stream's number in the child.
    Fd(BorrowedFd<'a>),
}

impl<'a, F: AsFd> From<&'a F> for Stdio<'a> {
    fn from(fd: &'a F) -> Self {
        Stdio::Fd(fd.as_fd())
    }
}

/// What the child runs.
enum Program<'a> {
    /// Exec this program (resolved in `$PATH` when it has no `/`).
    Exec(OsString),
    /// Run this closure in a copy of the caller.
    Closure(Box<dyn FnOnce(ChildFds) -> i32 + 'a>),
}

/// A builder for one child process, made the canonical way: `clone3` with
/// `CLONE_PIDFD | CLONE_CLEAR_SIGHAND`, a [`Lifeline`](super::Lifeline)
/// always, every fd not kept closed (or, for a program, marked
/// close-on-exec with `close_range`), and a [`Child`] holding a
/// [`Pidfd`](super::Pidfd).
///
/// Two kinds of child:
/// - [`Command::new`]: exec a program, with [`arg`](Command::arg)s, an
///   environment ([`env`](Command::env), [`env_remove`](Command::env_remove),
///   [`env_clear`](Command::env_clear)), a [`current_dir`](Command::current_dir),
///   stdio, the fds to keep, a cgroup. No code of the caller runs in the
///   child: between the clone and the exec only the crate's
///   async-signal-safe steps do, so it works from a multithreaded caller.
///   The program finds its lifeline's read end at
///   [`lifeline_fd`](Command::lifeline_fd) (3 by default).
/// - [`Command::from_fn`]: run a closure in a copy of a single-threaded
///   caller (no exec). Stdio, the fds to keep, the working directory and the
///   cgroup apply; args and environment do not (`EINVAL`).
///
/// ```
/// use lifeline::{Command, ExitStatus, Stdio};
///
/// let child = Command::new("sh")
///     .arg("-c")
///     .arg("test \"$GREETING\" = hello && test \"$(pwd)\" = /")
///     .env("GREETING", "hello")
///     .current_dir("/")
///     .stdout(Stdio::Null)
///     .spawn()?;
/// assert_eq!(child.wait()?, ExitStatus::Exited(0));
///
/// // A missing program is an error of `spawn`, not a child that exits 127.
/// let err = Command::new("/nonexistent/program").spawn().unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound); // ENOENT
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command<'a> {
    program: Program<'a>,
    args: Vec<OsString>,
    env_clear: bool,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdio: [Stdio<'a>; 3],
    keep: Vec<BorrowedFd<'a>>,
    cgroup: Option<BorrowedFd<'a>>,
    pidns: Option<PidNamespace>,
    lifeline_fd: RawFd,
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let program: &dyn fmt::Debug = match &self.program {
            Program::Exec(p) => p,
            Program::Closure(_) => &"<closure>",
        };
        f.debug_struct("Command")
            .field("program", program)
            .field("args", &self.args)
            .field("env_clear", &self.env_clear)
            .field("env", &self.env)
            .field("cwd", &self.cwd)
            .field("stdio", &self.stdio)
            .field("keep", &self.keep)
            .field("cgroup", &self.cgroup)
            .field("pidns", &self.pidns)
            .field("lifeline_fd", &self.lifeline_fd)
            .finish()
    }
}

impl<'a> Command<'a> {
    fn with(program: Program<'a>) -> Self {
        Command {
            program,
            args: Vec::new(),
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdio: [Stdio::Inherit; 3],
            keep: Vec::new(),
            cgroup: None,
            pidns: None,
            lifeline_fd: 3,
        }
    }

    /// A child that execs `program`: a path when it contains `/`, else
    /// looked up in `$PATH` at [`spawn`](Command::spawn) (as `execvp(3)`
    /// does). `argv[0]` is `program` as given.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command::with(Program::Exec(program.as_ref().to_owned()))
    }

    /// A child that runs `f` instead of a program: a copy of the caller, as
    /// [`Spawn::run`]. `f` runs **in the child**, after the clone; it gets
    /// the child's end of its lifeline and returns the exit code (a panic
    /// exits 101). The caller must be single-threaded (`EDEADLK` otherwise),
    /// so `f` may run ordinary code; values it captures that own fds which
    /// are not kept name closed numbers there (see [`Spawn::run`]).
    ///
    /// ```
    /// use lifeline::{Command, ExitStatus};
    ///
    /// let child = Command::from_fn(|fds| {
    ///     // In the child: its parent is alive, so the lifeline is quiet.
    ///     if fds.lifeline.parent_gone() { 1 } else { 9 }
    /// })
    /// .spawn()?;
    /// assert_eq!(child.wait()?, ExitStatus::Exited(9));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_fn(f: impl FnOnce(ChildFds) -> i32 + 'a) -> Self {
        Command::with(Program::Closure(Box::new(f)))
    }

    /// Add one argument (after `argv[0]`).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Add arguments (after `argv[0]`).
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set the environment variable `key` to `value` in the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Remove the environment variable `key` from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Start the child's environment empty instead of from the caller's,
    /// and drop the changes made so far (variables set with
    /// [`env`](Command::env) after this call still apply), as
    /// `std::process::Command::env_clear` does.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Run the child in the directory `dir` (`chdir` in the child before the
    /// exec or the closure; a failure is the spawn's error).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's stdin (fd 0).
    pub fn stdin(mut self, stdio: Stdio<'a>) -> Self {
        self.stdio[0] = stdio;
        self
    }

    /// The child's stdout (fd 1).
    pub fn stdout(mut self, stdio: Stdio<'a>) -> Self {
        self.stdio[1] = stdio;
        self
    }

    /// The child's stderr (fd 2).
    pub fn stderr(mut self, stdio: Stdio<'a>) -> Self {
        self.stdio[2] = stdio;
        self
    }

    /// Keep `fd` open in the child at the same number (without
    /// close-on-exec for a program). Every other fd above 2 except the
    /// lifeline is closed (closure) or marked close-on-exec (program).
    pub fn keep(mut self, fd: BorrowedFd<'a>) -> Self {
        self.keep.push(fd);
        self
    }

    /// Start the child in the cgroup v2 directory `dir` (`CLONE_INTO_CGROUP`),
    /// so it is a member from its first instruction.
    pub fn cgroup(mut self, dir: BorrowedFd<'a>) -> Self {
        self.cgroup = Some(dir);
        self
    }

    /// Start the child as init (PID 1) of a new PID namespace with its own
    /// mount namespace and `/proc` (and a user namespace with
    /// [`PidNamespace::WithUser`]): [`Spawn::pid_namespace`].
    ///
    /// # References
    /// - [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)
    /// - [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
    pub fn pid_namespace(mut self, ns: PidNamespace) -> Self {
        self.pidns = Some(ns);
        self
    }

    /// The fd number at which an exec'd program finds the read end of its
    /// lifeline (default 3); a program claims it with
    /// [`LifelineReader::claim_inherited`](super::LifelineReader::claim_inherited).
    /// Must not be 0, 1, 2 or a kept fd. A closure child gets its lifeline in
    /// [`ChildFds`] instead.
    pub fn lifeline_fd(mut self, fd: RawFd) -> Self {
        self.lifeline_fd = fd;
        self
    }

    /// Create the child. Everything the child needs (the resolved program,
    /// `argv`, `envp`, the working directory, `/dev/null` for
    /// [`Stdio::Null`]) is prepared before the clone.
    ///
    /// # Errors
    /// - For a program: `ENOENT` when it is not found, `EACCES` and the other
    ///   errors of `execve` or `chdir` in the child (reported through a
    ///   close-on-exec error pipe; a report cut short is the error "short read
    ///   from the exec error pipe"); `EINVAL` for a NUL byte in the program,
    ///   an argument, a variable or the directory, or a bad
    ///   [`lifeline_fd`](Command::lifeline_fd).
    /// - For a closure: `EDEADLK` when the caller has more than one thread;
    ///   `EINVAL` when args or environment changes were given. A failing
    ///   `chdir` or stdio `dup2` ends the child with 127.
    /// - Both: errors of `clone3` (`ENOSYS`, `EAGAIN`, `ENOMEM`, `EBADF`/`EINVAL`
    ///   for a bad cgroup), of `pipe2` and of opening `/dev/null`.
    ///
    /// # References
    /// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
    /// - [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html)
    /// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
    /// - [chdir(2)](https://man7.org/linux/man-pages/man2/chdir.2.html)
    pub fn spawn(self) -> io::Result<Child> {
        let einval = || io::Error::from_raw_os_error(libc::EINVAL);
        let cwd = self
            .cwd
            .as_ref()
            .map(|d| CString::new(d.as_os_str().as_bytes()).map_err(|_| einval()))
            .transpose()?;
        // /dev/null for the Null streams, open across the clone.
        let null: Option<OwnedFd> = if self.stdio.iter().any(|s| matches!(s, Stdio::Null)) {
            Some(open(
                "/dev/null",
                OFlags::RDWR | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        } else {
            None
        };
        let stdio: Vec<(usize, BorrowedFd<'_>)> = self
            .stdio
            .iter()
            .enumerate()
            .filter_map(|(n, s)| match s {
                Stdio::Inherit => None,
                Stdio::Null => null.as_ref().map(|fd| (n, fd.as_fd())),
                Stdio::Fd(fd) => Some((n, *fd)),
            })
            .collect();
        let mut sp = Spawn::default();
        if let Some(dir) = self.cgroup {
            sp = sp.into_cgroup(dir);
        }
        if let Some(ns) = self.pidns {
            sp = sp.pid_namespace(ns);
        }
        let env = match &self.program {
            Program::Exec(_) => env_block(self.environment()),
            Program::Closure(_) => Vec::new(),
        };
        match self.program {
            Program::Closure(f) => {
                if !self.args.is_empty() || self.env_clear || !self.env.is_empty() {
                    return Err(einval());
                }
                for fd in &self.keep {
                    sp = sp.keep(*fd);
                }
                for &(n, fd) in &stdio {
                    sp = sp.stdio(n, fd);
                }
                if let Some(dir) = cwd {
                    sp = sp.cwd(dir);
                }
                sp.run(f)
            }
            Program::Exec(program) => {
                let path = resolve_os(&program)?;
                let cstr = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| einval());
                let argv: Vec<CString> = std::iter::once(program.as_os_str())
                    .chain(self.args.iter().map(|a| a.as_os_str()))
                    .map(cstr)
                    .collect::<io::Result<_>>()?;
                let argv: Vec<&CStr> = argv.iter().map(|a| a.as_c_str()).collect();
                let mut map: Vec<(BorrowedFd<'_>, RawFd)> =
                    stdio.iter().map(|&(n, fd)| (fd, n as RawFd)).collect();
                map.extend(self.keep.iter().map(|fd| (*fd, fd.as_raw_fd())));
                if self.lifeline_fd <= 2 || map.iter().any(|&(_, t)| t == self.lifeline_fd) {
                    return Err(einval());
                }
                sp.exec_with(&path, &argv, env, cwd, &map, self.lifeline_fd)
            }
        }
    }

    /// [`spawn`](Command::spawn), then wait for the child to exit and reap
    /// it. The lifeline stays open until then.
    ///
    /// # Errors
    /// As [`spawn`](Command::spawn) and [`Pidfd::wait`](super::Pidfd::wait).
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`P_PIDFD`)
    pub fn status(self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The child's environment: the caller's (unless cleared) with the
    /// changes applied in order. Read here, in the parent.
    fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut vars: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            vars.retain(|(key, _)| key != k);
            if let Some(v) = v {
                vars.push((k.clone(), v.clone()));
            }
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn output(cmd: Command<'_>) -> (ExitStatus, String) {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let child = cmd.stdout(Stdio::from(&w)).spawn().unwrap();
        drop(w);
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        (child.wait().unwrap(), out)
    }

    #[test]
    fn args_env_and_cwd_reach_the_program() {
        let (status, out) = output(
            Command::new("sh")
                .args(["-c", "echo \"$0 $1 $LIFELINE_T $(pwd)\"", "zero", "one"])
                .env("LIFELINE_T", "set")
                .env_remove("HOME")
                .current_dir("/tmp"),
        );
        assert_eq!(status, ExitStatus::Exited(0));
        assert_eq!(out, "zero one set /tmp\n");
    }

    #[test]
    fn the_program_starts_with_sigpipe_at_its_default_action() {
        // The Rust runtime ignores SIGPIPE in this process; the program
        // must not inherit that (bit 13 - 1 of SigIgn).
        let (_, out) = output(Command::new("sh").args(["-c", "grep SigIgn /proc/self/status"]));
        let ignored = u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16)
            .unwrap_or_else(|e| panic!("{out:?}: {e}"));
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn env_clear_leaves_only_what_is_set() {
        let (_, out) = output(Command::new("/usr/bin/env").env_clear().env("ONLY", "1"));
        assert_eq!(out, "ONLY=1\n");
    }

    #[test]
    fn kept_fds_and_the_lifeline_reach_the_program_and_nothing_else() {
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let kept = rustix::io::fcntl_dupfd_cloexec(&devnull, 40).unwrap();
        // A stray fd without close-on-exec, below the kept one.
        let stray = rustix::io::fcntl_dupfd_cloexec(&devnull, 30).unwrap();
        rustix::io::fcntl_setfd(&stray, rustix::io::FdFlags::empty()).unwrap();
        let (_, out) = output(
            Command::new("sh")
                .args(["-c", "cd /proc/self/fd && echo *"])
                .keep(kept.as_fd())
                .lifeline_fd(7),
        );
        let mut fds: Vec<i32> = out
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        fds.sort();
        // The shell may hold one more fd of its own (the directory).
        let expected = [0, 1, 2, 7, kept.as_raw_fd()];
        assert!(
            expected.iter().all(|f| fds.contains(f)) && fds.len() <= expected.len() + 1,
            "{fds:?}"
        );
        assert!(!fds.contains(&stray.as_raw_fd()), "{fds:?}");
    }

    #[test]
    fn a_failing_chdir_is_the_spawn_error() {
        let err = Command::new("/bin/true")
            .current_dir("/nonexistent/dir")
            .spawn()
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn bad_requests_are_refused() {
        let e = Command::new("true").lifeline_fd(1).spawn().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let e = Command::from_fn(|_| 0).arg("x").spawn().unwrap_err();
        // EINVAL, or EDEADLK first in the multithreaded test harness.
        assert!(matches!(
            e.raw_os_error(),
            Some(libc::EINVAL) | Some(libc::EDEADLK)
        ));
    }

    #[test]
    fn exec_of_bin_true_succeeds_and_a_missing_program_is_enoent() {
        assert_eq!(
            Command::new("/bin/true").status().unwrap(),
            ExitStatus::Exited(0)
        );
        let e = Command::new("lifeline-no-such-program")
            .spawn()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
