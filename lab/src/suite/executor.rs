//! Executions of a suite's members: an ordered list of members run in one
//! fresh supervisor, one trial each, sharing its process-global state (a
//! member alone is an execution of one), on the session's supervisors.

use super::{Setup, Suite};
use crate::error::LabError;
use crate::session::Session;
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

/// One execution: members (indexes into the suite) run in this order in one
/// fresh supervisor under `strategy`, each as trial `repetition`.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Member indexes, in the order they run.
    pub members: Vec<usize>,
    /// The strategy of every trial.
    pub strategy: Strategy,
    /// The repetition (0..K): every trial's index, which also seeds the
    /// draw of a host action's `chance`.
    pub repetition: u64,
}

/// Runs executions of a suite's members, each in a fresh supervisor of its
/// [`Session`] (which owns the lab's cgroup for the trials and cleans up
/// when the executor is dropped), and counts them.
#[derive(Debug)]
pub struct Executor<'a> {
    suite: &'a Suite,
    setup: &'a Setup,
    session: Session,
}

impl<'a> Executor<'a> {
    /// Prepare to run members of `suite` as `setup` says: `setup.jobs`
    /// supervisors at once, and the lab's cgroup (unless `no_cgroup`, or
    /// none is writable; then subreaper mode).
    pub fn new(suite: &'a Suite, setup: &'a Setup) -> Executor<'a> {
        Executor {
            suite,
            setup,
            session: Session::open(&setup.exe, setup.jobs, setup.no_cgroup),
        }
    }

    /// Executions run so far (each is one fresh supervisor).
    pub fn runs(&self) -> u64 {
        self.session.supervisors_started()
    }

    /// Whether trials run in cgroups of their own, and why not.
    pub fn cgroup(&self) -> (bool, Option<String>) {
        (self.session.has_cgroup(), self.session.cgroup_note())
    }

    /// The requests of execution `e`: each member's plan under its
    /// strategy, as trial `e.repetition`, with the setup's deadline.
    fn requests(&self, e: &Execution) -> Vec<TrialRequest> {
        e.members
            .iter()
            .map(|&m| {
                let plan = &self.suite.members[m].plan;
                TrialRequest {
                    plan: plan.clone(),
                    strategy: e.strategy.clone(),
                    trial: e.repetition,
                    deadline_us: self
                        .setup
                        .deadline
                        .map_or(plan.deadline_us, |d| d.as_micros() as u64),
                    cgroup_parent: self.session.cgroup_parent(),
                    gdb: false,
                    keep_hung: false,
                    trace: false,
                    brief_verdicts: Vec::new(),
                    log_dir: None,
                }
            })
            .collect()
    }

    /// Run `executions` on up to `setup.jobs` supervisors at once; one
    /// outcome per member, in order, and the executions' outcomes in the
    /// order of `executions`. A member whose supervisor died (in it or
    /// before it) gets an `error` outcome.
    ///
    /// # Errors
    /// [`LabError::Io`] when a supervisor cannot be started.
    pub fn execute_all(&self, executions: &[Execution]) -> Result<Vec<Vec<Outcome>>, LabError> {
        let requests: Vec<Vec<TrialRequest>> =
            executions.iter().map(|e| self.requests(e)).collect();
        self.session.execute_all(&requests)
    }
}
