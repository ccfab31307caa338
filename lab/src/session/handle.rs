//! The lab's handle on one supervisor ([`SupervisorHandle`]; the
//! supervisor process's own loop is `crate::supervisor`): a fresh process
//! (the lab's own binary in its hidden mode; `lab wrap`'s one supervisor is
//! forked from the wrap instead, [`SupervisorHandle::start_wrap`]) started
//! with the canonical primitive and fed one trial at a time through its
//! lifeline, and [`SupervisorError`], what can go wrong with it.
//!
//! # Its PID namespace
//!
//! Every supervisor is started as init (PID 1) of a PID namespace of its
//! own, with a private mount namespace and its own `/proc`
//! ([`lifeline::PidNamespace`]: the namespace flags go to the `clone3`
//! that creates it, and the id maps and the `/proc` mount are made in the
//! child before the exec, so the supervisor is PID 1 from its first
//! instruction and a failed setup is the spawn's error, never a half-set-up
//! supervisor). As root: [`PidNamespace::Plain`]; otherwise, or where root
//! lacks the privilege: [`PidNamespace::WithUser`] (the lab's uid and gid
//! are 0 inside). The supervisor gets the lab's `/proc` at
//! [`HOST_PROC_FD`] to show the user PIDs of the lab's namespace
//! (`crate::pidns`).
//!
//! Why at the clone and not in the supervisor (unshare + a re-exec): it
//! needs no extra process, and the lab keeps the pidfd of the process that
//! is init, so ending it (SIGKILL from an ancestor namespace always gets
//! through) ends the whole trial: the kernel kills every process of a PID
//! namespace when its init dies.
//!
//! The choice is made once per lab process ([`pid_namespace`]): the first
//! start tries the namespaced forms; if none can be made (unprivileged user
//! namespaces off, a seccomp filter, no `/proc` mount allowed), supervisors
//! run as before, in the lab's namespace, and [`PidNsMode::None`] says why,
//! in `lab run`'s header and as `none` in every result row. The environment
//! variable `LAB_PID_NAMESPACE=off` forces that fallback (for comparison).
//! The fallback needs the lab's `/proc` to be its PID namespace's: where it
//! is not (`unshare --pid --fork` without `--mount-proc`), a supervisor
//! without a namespace of its own is refused
//! ([`SupervisorError::ForeignProc`]); one with a namespace mounts its own
//! `/proc` and is unaffected.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::LabError;
use crate::pidns::HOST_PROC_FD;
use crate::trial::protocol::TrialRequest;
use crate::trial::protocol::{BYE, MODE_ARG, PLAN_FD, RELEASE, RESULT_FD};
use crate::verdict::Outcome;
use lifeline::{PidNamespace, Pidfd, Spawn};

/// How this lab process runs its supervisors: in a PID namespace of their
/// own, or (where none can be made) in the lab's, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PidNsMode {
    /// Init of a PID namespace of its own, of this form.
    Own(PidNamespace),
    /// In the lab's PID namespace (signals by PID can reach the host's
    /// processes), for this reason.
    None(String),
}

impl PidNsMode {
    /// The value of a result row's `pid_namespace` column: `pid`,
    /// `pid+user` or `none`.
    pub fn label(&self) -> &'static str {
        match self {
            PidNsMode::Own(PidNamespace::Plain) => "pid",
            PidNsMode::Own(PidNamespace::WithUser | PidNamespace::WithUserKeepIds) => "pid+user",
            PidNsMode::None(_) => "none",
        }
    }

    /// For a header: `pid namespace`, `pid namespace (in a user
    /// namespace)` or `no pid namespace (why)`.
    pub fn describe(&self) -> String {
        match self {
            PidNsMode::Own(PidNamespace::Plain) => "pid namespace".into(),
            PidNsMode::Own(PidNamespace::WithUser | PidNamespace::WithUserKeepIds) => {
                "pid namespace (in a user namespace)".into()
            }
            PidNsMode::None(why) => format!("no pid namespace ({why})"),
        }
    }

    /// The one line the header and the summary of a command carry in the
    /// fallback ([`crate::pidns::FALLBACK_WARNING`]); `None` with a
    /// namespace.
    pub fn warning(&self) -> Option<&'static str> {
        matches!(self, PidNsMode::None(_)).then_some(crate::pidns::FALLBACK_WARNING)
    }

    fn namespace(&self) -> Option<PidNamespace> {
        match self {
            PidNsMode::Own(ns) => Some(*ns),
            PidNsMode::None(_) => None,
        }
    }
}

static MODE: std::sync::OnceLock<PidNsMode> = std::sync::OnceLock::new();

/// How supervisors started from `exe` run in this lab process, decided at
/// the first call (a probe: a supervisor started in each form, root's
/// first, and ended at once) and the same for every later one.
pub fn pid_namespace(exe: &Path) -> &'static PidNsMode {
    MODE.get_or_init(|| probe(exe))
}

/// Why this process's `/proc` is not its PID namespace's
/// ([`crate::pidns::foreign_proc`]), looked at once. A supervisor that is
/// init of a PID namespace of its own mounts its own `/proc` and does not
/// care; one without refuses to start ([`SupervisorError::ForeignProc`]).
fn foreign_proc() -> Option<&'static String> {
    static FOREIGN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FOREIGN.get_or_init(crate::pidns::foreign_proc).as_ref()
}

/// Whether supervisors of `exe` can judge by this `/proc`: `Ok` when they
/// are init of PID namespaces of their own (they mount theirs) or this
/// `/proc` is the lab's PID namespace's. A command calls it before it makes
/// anything (a results directory), so that a refused lab leaves nothing;
/// [`SupervisorHandle::start`] calls it again.
///
/// # Errors
/// [`SupervisorError::ForeignProc`], saying how `/proc` differs and what to
/// do.
pub fn check_proc(exe: &Path) -> Result<(), SupervisorError> {
    let mode = pid_namespace(exe);
    match (mode, foreign_proc()) {
        (PidNsMode::None(_), Some(why)) => Err(SupervisorError::ForeignProc {
            why: why.clone(),
            mode: mode.describe(),
        }),
        _ => Ok(()),
    }
}

fn probe(exe: &Path) -> PidNsMode {
    if namespaces_off() {
        return PidNsMode::None("turned off by LAB_PID_NAMESPACE=off".into());
    }
    let started = start_namespaced(PidNamespace::WithUser, |mode| {
        SupervisorHandle::spawn(exe, mode, None)
    });
    let why = match started {
        // The probe ends at once (dropped).
        Ok((mode, _probe)) => return mode,
        Err(why) => why,
    };
    // Not the namespaces' fault when a supervisor cannot start at all (a
    // missing binary, no fds left): the start that follows reports that.
    if let Err(e) = SupervisorHandle::spawn(exe, &PidNsMode::None(String::new()), None) {
        return PidNsMode::None(format!("no supervisor could start to find out: {e}"));
    }
    PidNsMode::None(format!(
        "cannot make one here, {}; signals by PID can reach the host's processes",
        why.join("; ")
    ))
}

/// Whether PID namespaces are turned off (`LAB_PID_NAMESPACE=off`).
fn namespaces_off() -> bool {
    std::env::var_os("LAB_PID_NAMESPACE").is_some_and(|v| v == "off")
}

/// `start` a supervisor in the first form of PID namespace of its own that
/// starts, most wanted first (root: a plain one, then one in a user
/// namespace; others: in a user namespace, `user` its form): the form and
/// what `start` gave; else why each form failed, in words.
fn start_namespaced<T>(
    user: PidNamespace,
    mut start: impl FnMut(&PidNsMode) -> io::Result<T>,
) -> Result<(PidNsMode, T), Vec<String>> {
    let both = [PidNamespace::Plain, user];
    let forms: &[PidNamespace] = if rustix::process::geteuid().is_root() {
        &both
    } else {
        &both[1..]
    };
    let mut why = Vec::new();
    for &ns in forms {
        let mode = PidNsMode::Own(ns);
        match start(&mode) {
            Ok(started) => return Ok((mode, started)),
            Err(e) => why.push(format!("{}: {e}", mode.label())),
        }
    }
    Err(why)
}

/// Why a supervisor could not run a trial. After any error but
/// [`SupervisorError::Start`] the supervisor is unusable: start a fresh one.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// pipe, open, clone3 or exec of `exe __supervisor` failed.
    #[error("cannot start a supervisor ({})", exe.display())]
    Start {
        /// The `lab` binary it was started from.
        exe: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The trial's request could not be encoded as JSON.
    #[error("cannot encode the trial's request")]
    Request {
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The supervisors have no PID namespace of their own, and the `/proc`
    /// they would read is not the one of the lab's PID namespace: every
    /// look by PID would read other processes than the trial's.
    #[error(
        "this /proc is not your PID namespace's ({why}), and supervisors without a PID namespace \
         of their own ({mode}) would read other processes than the trial's: mount one \
         (unshare --pid --fork --mount-proc, or mount -t proc proc /proc in a mount namespace \
         of your own), or let the lab make PID namespaces (unset LAB_PID_NAMESPACE)"
    )]
    ForeignProc {
        /// How `/proc` differs ([`crate::pidns::foreign_proc`]).
        why: String,
        /// Why the supervisors have no namespace ([`PidNsMode::describe`]).
        mode: String,
    },
    /// The lab already said `bye` to it.
    #[error("supervisor closed")]
    Closed,
    /// Its lifeline could not be written: it is gone, with this exit status.
    #[error("supervisor gone: {status}")]
    Gone {
        /// Its exit status (`waitid`'s answer, or why there is none).
        status: String,
        /// The write's error.
        #[source]
        source: io::Error,
    },
    /// Its result pipe ended (or failed) before the answer: it died with
    /// this exit status.
    #[error("supervisor died mid-trial: {status}")]
    Died {
        /// Its exit status (`waitid`'s answer, or why there is none).
        status: String,
    },
    /// Its answer is not an [`Outcome`] in JSON.
    #[error("bad answer from the supervisor")]
    BadAnswer {
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
}

impl SupervisorError {
    /// The message and every source after it, joined by `": "`: what a
    /// trial's `error` outcome gives as its reason.
    pub fn reason(&self) -> String {
        let first: &dyn std::error::Error = self;
        std::iter::successors(Some(first), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ")
    }
}

impl From<SupervisorError> for LabError {
    /// [`LabError::Io`] when the supervisor could not start (the kernel's
    /// error as the source), else [`LabError::Lab`] with the whole chain.
    fn from(e: SupervisorError) -> LabError {
        match e {
            SupervisorError::Start { ref exe, source } => LabError::io(
                format!("cannot start a supervisor ({})", exe.display()),
                source,
            ),
            other => LabError::Lab(other.reason()),
        }
    }
}

/// The lab's handle on a running supervisor: its pidfd, the write end of its lifeline (plans go
/// there) and the read end of its result pipe. Dropping it says `bye`,
/// closes the lifeline and reaps it.
#[derive(Debug)]
pub struct SupervisorHandle {
    pidfd: Pidfd,
    mode: &'static str,
    plans: Option<File>,
    results: BufReader<File>,
}

impl SupervisorHandle {
    /// Start `exe __supervisor` with the canonical primitive: clone3 +
    /// exec, lifeline at fd 3, result pipe at fd 4, stdin and stdout
    /// `/dev/null`, stderr shared with the lab; as init of a PID namespace
    /// of its own as [`pid_namespace`] decided, then with the lab's `/proc`
    /// at [`HOST_PROC_FD`].
    ///
    /// `lab_cgroup` is the lab's cgroup, passed as `--lab-cgroup` so that
    /// the last supervisor out removes it should the lab die.
    ///
    /// # Errors
    /// [`SupervisorError::Start`] with the error of pipe, open, clone3 or
    /// exec.
    pub fn start(
        exe: &Path,
        lab_cgroup: Option<&Path>,
    ) -> Result<SupervisorHandle, SupervisorError> {
        check_proc(exe)?;
        let mode = pid_namespace(exe);
        SupervisorHandle::spawn(exe, mode, lab_cgroup).map_err(|source| SupervisorError::Start {
            exe: exe.to_path_buf(),
            source,
        })
    }

    /// Start the wrap supervisor of `lab wrap`: forked from this process,
    /// not exec'd (one start of the lab binary fewer on every wrapped
    /// program), as init of a PID namespace of its own in the first form
    /// that starts (root's first), else without one (the mode of this
    /// process from then on, with why); it runs
    /// [`crate::supervisor::wrap`] with this process's stdin, stdout and
    /// stderr, which it hands to the program untouched, and `control`, the
    /// read end of the pipe on which the wrap forwards signals.
    /// `lab_cgroup` is the wrap's cgroup, as for [`SupervisorHandle::start`].
    ///
    /// This process must have one thread: the supervisor is a copy of it
    /// and runs ordinary code (the wrap starts its signal thread after).
    ///
    /// # Errors
    /// [`SupervisorError::Start`] with the error of pipe, open or clone3
    /// (`EDEADLK` when this process has more than one thread);
    /// [`SupervisorError::ForeignProc`] as for [`SupervisorHandle::start`].
    pub fn start_wrap(
        exe: &Path,
        lab_cgroup: Option<&Path>,
        control: BorrowedFd<'_>,
    ) -> Result<SupervisorHandle, SupervisorError> {
        let start_err = |source| SupervisorError::Start {
            exe: exe.to_path_buf(),
            source,
        };
        if MODE.get().is_none() {
            let why = if namespaces_off() {
                "turned off by LAB_PID_NAMESPACE=off".to_string()
            } else {
                // The program's uid and gid are the ones it had: the wrap
                // changes nothing the program can see but its PIDs.
                let started = start_namespaced(PidNamespace::WithUserKeepIds, |mode| {
                    Self::fork_wrap(mode, lab_cgroup, control)
                });
                match started {
                    Ok((mode, h)) => {
                        let _ = MODE.set(mode);
                        return Ok(h);
                    }
                    Err(why) => format!(
                        "cannot make one here, {}; signals by PID can reach the host's processes",
                        why.join("; ")
                    ),
                }
            };
            let _ = MODE.set(PidNsMode::None(why));
        }
        check_proc(exe)?;
        Self::fork_wrap(pid_namespace(exe), lab_cgroup, control).map_err(start_err)
    }

    /// Fork the wrap supervisor in `mode` ([`SupervisorHandle::start_wrap`]).
    fn fork_wrap(
        mode: &PidNsMode,
        lab_cgroup: Option<&Path>,
        control: BorrowedFd<'_>,
    ) -> io::Result<SupervisorHandle> {
        let (res_read, res_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut spawn = Spawn::default()
            .give(res_write)
            .give(control.try_clone_to_owned()?);
        if let Some(ns) = mode.namespace() {
            // The wrap's /proc, which the supervisor's own /proc will hide.
            spawn = spawn.pid_namespace(ns).give(File::open("/proc")?.into());
        }
        let lab_cgroup = lab_cgroup.map(Path::to_path_buf);
        let child = spawn.run(move |fds| crate::supervisor::wrap(fds, lab_cgroup))?;
        Ok(SupervisorHandle::started(child, mode, res_read))
    }

    fn spawn(
        exe: &Path,
        mode: &PidNsMode,
        lab_cgroup: Option<&Path>,
    ) -> io::Result<SupervisorHandle> {
        let (res_read, res_write) = pipe_with(PipeFlags::CLOEXEC)?;
        // Read and write: a node or a `command` leaf that prints to an
        // uncaptured stdout writes into /dev/null, it does not fail (EBADF).
        let devnull: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into();
        let prog = CString::new(exe.as_os_str().as_bytes())?;
        let arg0 = CString::new("lab")?;
        let arg1 = CString::new(MODE_ARG)?;
        let stderr = io::stderr();
        let mut map = vec![
            (devnull.as_fd(), 0),
            (devnull.as_fd(), 1),
            (stderr.as_fd(), 2),
            (res_write.as_fd(), RESULT_FD),
        ];
        let mut spawn = Spawn::default();
        // The lab's /proc, which the supervisor's own /proc will hide.
        let host_proc: Option<OwnedFd> = match mode.namespace() {
            Some(ns) => {
                spawn = spawn.pid_namespace(ns);
                Some(File::open("/proc")?.into())
            }
            None => None,
        };
        if let Some(fd) = &host_proc {
            map.push((fd.as_fd(), HOST_PROC_FD));
        }
        let mut args = vec![arg0, arg1];
        if let Some(dir) = lab_cgroup {
            args.push(CString::new("--lab-cgroup")?);
            args.push(CString::new(dir.as_os_str().as_bytes())?);
        }
        let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
        let child = spawn.exec(&prog, &argv, &map, PLAN_FD)?;
        Ok(SupervisorHandle::started(child, mode, res_read))
    }

    /// The handle on a supervisor just started as `child` in `mode`, which
    /// answers on the pipe whose read end is `results`.
    fn started(child: lifeline::Child, mode: &PidNsMode, results: OwnedFd) -> SupervisorHandle {
        let (pidfd, plans) = child.into_parts();
        SupervisorHandle {
            pidfd,
            mode: mode.label(),
            plans: Some(File::from(plans)),
            results: BufReader::new(File::from(results)),
        }
    }

    /// Run one trial and return its outcome. A hang kept alive
    /// (`req.keep_hung`) is handed to `on_kept` while its tree lives; when
    /// `on_kept` returns, the tree is released and cleaned up.
    ///
    /// # Errors
    /// The supervisor's death (with its exit status) or a malformed answer;
    /// it is then unusable.
    pub fn run(
        &mut self,
        req: &TrialRequest,
        on_kept: &(dyn Fn(&Outcome) + Sync),
    ) -> Result<Outcome, SupervisorError> {
        let line =
            serde_json::to_string(req).map_err(|source| SupervisorError::Request { source })?;
        self.say(&line)?;
        let mut first = self.answer()?;
        first.pid_namespace = self.mode.into();
        if !first.kept {
            return Ok(first);
        }
        on_kept(&first);
        self.say(RELEASE)?;
        let mut last = self.answer()?;
        last.pid_namespace = self.mode.into();
        Ok(last)
    }

    fn say(&mut self, line: &str) -> Result<(), SupervisorError> {
        let plans = self.plans.as_mut().ok_or(SupervisorError::Closed)?;
        plans
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|source| SupervisorError::Gone {
                status: self.status(),
                source,
            })
    }

    fn answer(&mut self) -> Result<Outcome, SupervisorError> {
        let mut answer = String::new();
        match self.results.read_line(&mut answer) {
            Ok(0) | Err(_) => Err(SupervisorError::Died {
                status: self.status(),
            }),
            Ok(_) => serde_json::from_str(&answer)
                .map_err(|source| SupervisorError::BadAnswer { source }),
        }
    }

    fn status(&self) -> String {
        match self.pidfd.wait() {
            Ok(s) => format!("{s:?}"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for SupervisorHandle {
    fn drop(&mut self) {
        // "bye", then closing the lifeline: the supervisor finishes and exits.
        if let Some(mut plans) = self.plans.take() {
            let _ = plans.write_all(format!("{BYE}\n").as_bytes());
        }
        let _ = self.pidfd.wait();
    }
}
