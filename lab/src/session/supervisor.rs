//! One supervisor seen from the lab: a fresh process (the lab's own binary
//! in its hidden mode) started with the canonical primitive and fed one
//! trial at a time through its lifeline, and [`SupervisorError`], what can
//! go wrong with it.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::LabError;
use crate::trial::protocol::TrialRequest;
use crate::trial::protocol::{BYE, MODE_ARG, PLAN_FD, RELEASE, RESULT_FD};
use crate::verdict::Outcome;
use lifeline::{Pidfd, Spawn};

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

/// A running supervisor: its pidfd, the write end of its lifeline (plans go
/// there) and the read end of its result pipe. Dropping it says `bye`,
/// closes the lifeline and reaps it.
#[derive(Debug)]
pub struct Supervisor {
    pidfd: Pidfd,
    plans: Option<File>,
    results: BufReader<File>,
}

impl Supervisor {
    /// Start `exe __supervisor` with the canonical primitive: clone3 +
    /// exec, lifeline at fd 3, result pipe at fd 4, stdin and stdout
    /// `/dev/null`, stderr shared with the lab.
    ///
    /// # Errors
    /// [`SupervisorError::Start`] with the error of pipe, open, clone3 or
    /// exec.
    pub fn start(exe: &Path) -> Result<Supervisor, SupervisorError> {
        Supervisor::spawn(exe).map_err(|source| SupervisorError::Start {
            exe: exe.to_path_buf(),
            source,
        })
    }

    fn spawn(exe: &Path) -> io::Result<Supervisor> {
        let (res_read, res_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let devnull: OwnedFd = File::open("/dev/null")?.into();
        let prog = CString::new(exe.as_os_str().as_bytes())?;
        let arg0 = CString::new("lab")?;
        let arg1 = CString::new(MODE_ARG)?;
        let stderr = io::stderr();
        let child = Spawn::default().exec(
            &prog,
            &[&arg0, &arg1],
            &[
                (devnull.as_fd(), 0),
                (devnull.as_fd(), 1),
                (stderr.as_fd(), 2),
                (res_write.as_fd(), RESULT_FD),
            ],
            PLAN_FD,
        )?;
        let (pidfd, plans) = child.into_parts();
        Ok(Supervisor {
            pidfd,
            plans: Some(File::from(plans)),
            results: BufReader::new(File::from(res_read)),
        })
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
        let first = self.answer()?;
        if !first.kept {
            return Ok(first);
        }
        on_kept(&first);
        self.say(RELEASE)?;
        self.answer()
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

impl Drop for Supervisor {
    fn drop(&mut self) {
        // "bye", then closing the lifeline: the supervisor finishes and exits.
        if let Some(mut plans) = self.plans.take() {
            let _ = plans.write_all(format!("{BYE}\n").as_bytes());
        }
        let _ = self.pidfd.wait();
    }
}
