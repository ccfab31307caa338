//! What the lab and a supervisor say to each other: the request of one
//! trial (one JSON line on the supervisor's lifeline, fd [`PLAN_FD`]), the
//! answer ([`Outcome`](crate::verdict::Outcome), one JSON line on fd
//! [`RESULT_FD`]), and the control lines [`BYE`] and [`RELEASE`]. The lab
//! side (the session) needs only this module of the trial engine.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::signal::Sig;
use crate::strategy::Strategy;

/// The argument that starts the supervisor mode of the `lab` binary.
pub const MODE_ARG: &str = "__supervisor";
/// The line with which the lab ends a supervisor in order; EOF without it
/// means the lab died.
pub const BYE: &str = "bye";
/// The line with which the lab releases a hang kept alive for the user.
pub const RELEASE: &str = "release";
/// The fd of the plan lifeline in a supervisor.
pub const PLAN_FD: i32 = 3;
/// The fd of the result pipe in a supervisor.
pub const RESULT_FD: i32 = 4;
/// The byte `lab wrap` writes on the control pipe of its supervisor to
/// forward `sig` to the program (the supervisor sends it on, a SIGTERM
/// after a diagnosis): the first letter of its name (`I`, `T`, `H`, `Q`,
/// ...); [`control_signal`] reads it back.
pub fn control_byte(sig: Sig) -> u8 {
    sig.name().as_bytes()[0]
}

/// The signal a control byte ([`control_byte`]) forwards: SIGINT, SIGTERM,
/// SIGHUP or SIGQUIT; `None` for any other byte.
pub fn control_signal(byte: u8) -> Option<Sig> {
    [Sig::Int, Sig::Term, Sig::Hup, Sig::Quit]
        .into_iter()
        .find(|&s| control_byte(s) == byte)
}

/// What the lab asks a supervisor to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRequest {
    /// The plan.
    pub plan: Plan,
    /// The strategy.
    pub strategy: Strategy,
    /// Trial index within the run (names the cgroup; with the plan's seed,
    /// seeds the draw of a host action's `chance`). In a suite, the
    /// repetition: every member of run `r` is trial `r`.
    pub trial: u64,
    /// Deadline of the planned course (µs from the trial's start).
    pub deadline_us: u64,
    /// Parent directory for the trial's cgroup; `None`: subreaper alone.
    pub cgroup_parent: Option<PathBuf>,
    /// Add gdb's all-thread backtraces to the diagnosis of a hang or orphan.
    #[serde(default)]
    pub gdb: bool,
    /// Leave a hung tree alive until the lab releases it (`--keep-hung`).
    #[serde(default)]
    pub keep_hung: bool,
    /// Send the trial's timeline (a program run as the root) whatever its
    /// verdict, not only when it did not pass (`lab exec --trace`).
    #[serde(default)]
    pub trace: bool,
    /// The verdicts whose diagnosis will not be written (the trial's cell
    /// has had its `--max-diagnoses` of each): a trial given one of them
    /// reads only what finds its signatures
    /// ([`Detail::Signatures`](crate::forensics::Detail::Signatures)). A
    /// verdict not listed (a rare hang in a cell of orphans) gets its full
    /// diagnosis.
    #[serde(default)]
    pub brief_verdicts: Vec<crate::verdict::Verdict>,
    /// Where the log files of nodes with `log = true` go (the run's
    /// `log/`); `None`: their output goes to `/dev/null`.
    #[serde(default)]
    pub log_dir: Option<PathBuf>,
}
