//! [`LabError`], why a command could not run, and [`Exit`], the one table
//! from what a command came to to the process exit status.

use std::io;

use crate::scenario::overrides::OverrideError;
use crate::scenario::ScenarioError;
use crate::signal::Sig;
use crate::strategy::StrategyError;

/// Why a command could not run. Displayed as a chain: the message, then
/// each `#[source]` after a colon ("cannot write results/x/trials.csv:
/// Permission denied (os error 13)"); see [`LabError::chain`].
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A scenario or suite file is invalid (exit status 2); the error names
    /// `file:line:col` and the offending text.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// An unknown or unsupported strategy (exit status 2).
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// A `--set` or `--sweep` that cannot apply (exit status 2).
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// The user asked for something invalid or impossible (exit status 2):
    /// what, and what to do instead.
    #[error("{0}")]
    Input(String),
    /// A file or directory could not be read or written (exit status 3):
    /// what the lab was doing, with the kernel's error as the source.
    #[error("{what}")]
    Io {
        /// What was being done (`cannot write results/x/trials.csv`).
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The lab itself could not work (exit status 3), with the reason.
    #[error("{0}")]
    Lab(String),
}

impl LabError {
    /// An [`LabError::Io`]: `what` the lab was doing when `source` happened.
    pub fn io(what: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }

    /// The exit status this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            LabError::Scenario(_)
            | LabError::Strategy(_)
            | LabError::Override(_)
            | LabError::Input(_) => Exit::Input,
            LabError::Io { .. } | LabError::Lab(_) => Exit::Lab,
        }
    }

    /// The message and every source after it, joined by `": "`.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// `e`'s message and every source after it, joined by `": "` ("cannot set
/// kill.3.at (kill.3.at): `kill` has 1 entries, no index 3").
pub fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The process exit status of `lab`: the one place where what a command
/// came to becomes a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: `lab run`/`lab soak`: every strategy met its expectation (the
    /// scenario's `[expect]`, a `--gate`, or `lab run`'s default for a
    /// strategy the scenario does not name: every trial passed); `lab
    /// suite`: no member is order-dependent; `lab bisect`: the polluters
    /// were found.
    Clean,
    /// 1: `lab run`/`lab soak`: some strategy gave a verdict its
    /// expectation does not allow (UNEXPECTED); `lab suite`: a member is
    /// order-dependent; `lab bisect`: the victim is not order-dependent;
    /// `lab check`/`lab plan`: a strategy refuses the plan.
    Found,
    /// 2: bad input: a scenario error, an unknown strategy or scenario.
    Input,
    /// 3: the lab itself could not work.
    Lab,
    /// 128 + the signal, as a shell reports a process that signal ended:
    /// 130 after a SIGINT (Ctrl-C), 143 after a SIGTERM (what a CI system
    /// sends on cancel). `lab run`/`lab exec`/`lab soak`/`lab fuzz`/`lab
    /// suite`/`lab bisect` was interrupted; it printed the partial summary
    /// of the trials done (and, for a soak, the command that resumes).
    Interrupted(Sig),
}

impl Exit {
    /// The process exit status: 0, 1, 2, 3, or 128 + the signal of an
    /// interruption.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Found => 1,
            Exit::Input => 2,
            Exit::Lab => 3,
            Exit::Interrupted(sig) => 128 + sig.signal().as_raw() as u8,
        }
    }

    /// How a summary names the signal that interrupted a command:
    /// `Ctrl-C` for SIGINT, `SIGTERM`, ...
    pub fn interruption_name(sig: Sig) -> &'static str {
        match sig {
            Sig::Int => "Ctrl-C",
            Sig::Term => "SIGTERM",
            Sig::Hup => "SIGHUP",
            Sig::Kill => "SIGKILL",
            Sig::Quit => "SIGQUIT",
            Sig::Usr1 => "SIGUSR1",
            Sig::Usr2 => "SIGUSR2",
        }
    }

    /// `Clean` when `clean`, else `Found`.
    pub fn clean_if(clean: bool) -> Exit {
        if clean {
            Exit::Clean
        } else {
            Exit::Found
        }
    }

    /// `lab run` and `lab soak`: `Clean` when every judgement met its
    /// expectation (as expected, or not judged), else `Found`.
    pub fn of_expectations<'a>(
        judgements: impl IntoIterator<Item = &'a crate::expect::Comparison>,
    ) -> Exit {
        Exit::clean_if(judgements.into_iter().all(|j| j.met()))
    }

    /// The exit status of a command's result.
    pub fn of(result: &Result<Exit, LabError>) -> Exit {
        match result {
            Ok(e) => *e,
            Err(e) => e.exit(),
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_reads_as_a_chain_and_exits_3() {
        let e = LabError::io(
            "cannot write results/x/trials.csv",
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(
            e.chain(),
            "cannot write results/x/trials.csv: Permission denied (os error 13)"
        );
        assert_eq!(e.exit(), Exit::Lab);
        assert_eq!(LabError::Input("no".into()).exit().code(), 2);
        assert_eq!(Exit::Interrupted(Sig::Int).code(), 130);
        assert_eq!(Exit::Interrupted(Sig::Term).code(), 143);
        assert_eq!(Exit::of(&Ok(Exit::clean_if(false))), Exit::Found);
    }
}
