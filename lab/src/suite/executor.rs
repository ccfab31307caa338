//! Executions of a source's tests: an ordered list of suite members run in
//! one fresh supervisor, one trial each, sharing its process-global state
//! (a member alone is an execution of one); or, for a test runner, one run
//! of its test process over the list, one trial, whose output says what
//! each test did. Both on the session's supervisors.

use std::sync::Mutex;

use super::{Setup, Source};
use crate::error::LabError;
use crate::record::{Finished, Recorder, TrialSource};
use crate::session::Session;
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

/// One execution: tests (indexes into the source) run in this order in one
/// fresh process under `strategy`, each as trial `repetition`.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Test indexes, in the order they run.
    pub members: Vec<usize>,
    /// The strategy of every trial (a runner's test process starts the
    /// canonical way whatever it is).
    pub strategy: Strategy,
    /// The repetition (0..K): every trial's index, which also seeds the
    /// draw of a host action's `chance`.
    pub repetition: u64,
}

/// What one execution came to.
#[derive(Clone, Debug)]
pub struct Ran {
    /// One per test of the execution, in its order: the test's outcome, or
    /// `None` when it did not run (a test after a hang in the same
    /// process, a skipped test).
    pub tests: Vec<Option<Outcome>>,
    /// The test process's own outcome, for a runner (one trial); `None`
    /// for a suite file's members.
    pub process: Option<Outcome>,
}

/// Runs executions of a source's tests, each in a fresh supervisor of its
/// [`Session`] (which owns the lab's cgroup for the trials and cleans up
/// when the executor is dropped), and counts them.
#[derive(Debug)]
pub struct Executor<'a> {
    source: &'a Source,
    setup: &'a Setup,
    session: Session,
    /// For a runner with `setup.out`: where every run of its test process
    /// is recorded (a row of `trials.csv` each, its diagnosis and output
    /// beside it), and the runs recorded so far.
    recorder: Option<Mutex<(Recorder, u64)>>,
}

impl<'a> Executor<'a> {
    /// Prepare to run tests of `source` as `setup` says: `setup.jobs`
    /// supervisors at once, and the lab's cgroup (unless `no_cgroup`, or
    /// none is writable; then subreaper mode). For a runner with
    /// `setup.out`, a new run directory there records every run of its test
    /// process, as `lab exec` records its trials.
    ///
    /// # Errors
    /// [`LabError::Io`] or [`LabError::Input`] when the run directory
    /// cannot be made ([`Recorder::new_run`]).
    pub fn new(source: &'a Source, setup: &'a Setup) -> Result<Executor<'a>, LabError> {
        let recorder = match (source, &setup.out) {
            (Source::Runner(_), Some(out)) => {
                let rec = Recorder::new_run(out, &source.name(), 1)?;
                Some(Mutex::new((rec, 0)))
            }
            _ => None,
        };
        Ok(Executor {
            source,
            setup,
            session: Session::open(&setup.exe, setup.jobs, setup.no_cgroup),
            recorder,
        })
    }

    /// Where the runs of a runner's test process are recorded
    /// (`DIR/trials.csv`), when they are.
    pub fn csv(&self) -> Option<std::path::PathBuf> {
        let rec = self.recorder.as_ref()?.lock().ok()?;
        Some(rec.0.csv_path().to_path_buf())
    }

    /// Record the run of `names` that came to `process` (a runner's, when
    /// recording); the first error of writing is kept by the recorder and
    /// returned by [`Executor::finish`].
    fn record(&self, e: &Execution, process: &crate::verdict::Outcome) {
        let (Some(rec), Source::Runner(r)) = (&self.recorder, self.source) else {
            return;
        };
        let names = self.names(e);
        let Ok(plan) = r.plan(&names) else { return };
        let Ok(mut guard) = rec.lock() else { return };
        let (rec, n) = &mut *guard;
        let hash = plan.hash();
        let replay = r.command_line(&names).unwrap_or_default();
        rec.record(&Finished {
            source: TrialSource::of(&plan, &hash, *n, None),
            strategy: &e.strategy,
            outcome: process,
            stem: &format!("run.{n}"),
            replay: &replay,
        });
        *n += 1;
    }

    /// The first error of recording, if any.
    ///
    /// # Errors
    /// [`LabError::Io`] when a row or a diagnosis could not be written.
    pub fn finish(&self) -> Result<(), LabError> {
        match &self.recorder {
            Some(rec) => rec.lock().map_or(Ok(()), |mut r| r.0.check()),
            None => Ok(()),
        }
    }

    /// Executions run so far (each is one fresh supervisor: for a runner,
    /// one run of its test process).
    pub fn runs(&self) -> u64 {
        self.session.supervisors_started()
    }

    /// Whether trials run in cgroups of their own, and why not.
    pub fn cgroup(&self) -> (bool, Option<String>) {
        (self.session.has_cgroup(), self.session.cgroup_note())
    }

    /// The requests of execution `e`: each member's plan under its
    /// strategy, as trial `e.repetition`, with the setup's deadline; for a
    /// runner, the one run of its test process over the tests.
    fn requests(&self, e: &Execution) -> Result<Vec<TrialRequest>, LabError> {
        let request = |plan: &crate::plan::Plan| TrialRequest {
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
        };
        Ok(match self.source {
            Source::Suite(suite) => e
                .members
                .iter()
                .map(|&m| request(&suite.members[m].plan))
                .collect(),
            Source::Runner(r) => {
                let names = self.names(e);
                vec![request(&r.plan(&names)?)]
            }
        })
    }

    fn names(&self, e: &Execution) -> Vec<&str> {
        e.members.iter().map(|&m| self.source.name_of(m)).collect()
    }

    /// Run `executions` on up to `setup.jobs` supervisors at once, in the
    /// order of `executions`; one entry each, in that order. A member whose
    /// supervisor died (in it or before it) gets an `error` outcome. After
    /// an interruption ([`crate::session::stop_on_interrupt`]: the first
    /// SIGINT or SIGTERM) no execution starts and those in flight finish:
    /// an execution that did not start is `None`.
    ///
    /// # Errors
    /// [`LabError::Io`] when a supervisor cannot be started;
    /// [`LabError::Input`] when a runner's command is refused.
    pub fn execute_all(&self, executions: &[Execution]) -> Result<Vec<Option<Ran>>, LabError> {
        let requests: Vec<Vec<TrialRequest>> = executions
            .iter()
            .map(|e| self.requests(e))
            .collect::<Result<_, _>>()?;
        let outcomes = self.session.execute_all(&requests)?;
        Ok(executions
            .iter()
            .zip(outcomes)
            .map(|(e, outcomes)| match self.source {
                // Every execution has a request: none came back, none ran.
                _ if outcomes.is_empty() => None,
                Source::Suite(_) => Some(Ran {
                    tests: outcomes.into_iter().map(Some).collect(),
                    process: None,
                }),
                Source::Runner(r) => {
                    let process = outcomes.into_iter().next();
                    if let Some(p) = &process {
                        self.record(e, p);
                    }
                    let tests = process.as_ref().map_or_else(
                        || vec![None; e.members.len()],
                        |p| r.attribute(&self.names(e), p),
                    );
                    Some(Ran { tests, process })
                }
            })
            .collect())
    }
}
