//! The trials of one soak invocation on the session's pool: which trial
//! runs next (round by round, skipping those an earlier invocation
//! finished), its request (journaled in `started.csv` first), and its
//! outcome recorded and shown.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::matrix::{trial_seed, Item};
use super::{next_item, sweep_value, Done, Matrix, SoakArgs, SoakSpec};
use crate::error::LabError;
use crate::output::progress::{Bar, Progress};
use crate::plan::Plan;
use crate::record::{DiagnosedCells, Finished, Recorder, RunCommand, TrialSource};
use crate::session::Session;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

/// What the pool's callbacks share while the soak's trials run.
pub(super) struct Trials<'a> {
    /// The invocation.
    pub args: &'a SoakArgs,
    /// The soak.
    pub spec: &'a SoakSpec,
    /// Its cells and strategies.
    pub m: &'a Matrix,
    /// The trials an earlier invocation finished.
    pub done: &'a Done,
    /// `started.csv`, a line per trial before it starts.
    pub started: Mutex<Journal>,
    /// A write failed (`started.csv`, `trials.csv`, a diagnosis): no
    /// trial starts any more, as after a Ctrl-C.
    pub failed: AtomicBool,
    /// When a soak for a duration stops starting trials.
    pub deadline: Option<Instant>,
    /// The cgroup each trial's cgroup is made under.
    pub cgroup_parent: Option<PathBuf>,
    /// Where nodes write their logs (absolute: the supervisors write there
    /// from their own mount namespace).
    pub log_dir: PathBuf,
    /// The verdicts of each cell whose diagnoses are all written.
    pub diagnosed: DiagnosedCells,
    /// The next position in the round-by-round order.
    pub cursor: Mutex<u64>,
    /// The items in flight by pool index, with their plan and its hash.
    pub in_flight: Mutex<HashMap<u64, (Item, Plan, String)>>,
}

impl Trials<'_> {
    /// The request of the pool's `i`-th trial: the next item not done,
    /// journaled before it starts; `None` when there is none left, the
    /// duration is over, or a write failed (the journal's included: a
    /// trial is never run unjournaled).
    fn request(&self, i: u64) -> Option<TrialRequest> {
        let (spec, m) = (self.spec, self.m);
        if self.failed.load(Ordering::SeqCst) {
            return None;
        }
        let item = next_item(spec, m, self.done, &self.cursor, self.deadline)?;
        let cell = &m.cells[item.cell];
        let strategy = &m.strategies[item.strategy];
        let seed = trial_seed(spec.seed, item.trial);
        let plan = Plan::new(&cell.scenario, seed);
        if let Ok(mut j) = self.started.lock() {
            j.started(&format!(
                "{},{},{},{},{seed}",
                cell.scenario.name,
                sweep_value(cell),
                strategy.name,
                item.trial
            ));
            if j.failing() {
                self.failed.store(true, Ordering::SeqCst);
                return None;
            }
        }
        self.in_flight
            .lock()
            .expect("in flight")
            .insert(i, (item, plan.clone(), plan.hash()));
        Some(TrialRequest {
            deadline_us: spec.deadline_ms.map_or(plan.deadline_us, |ms| ms * 1000),
            plan,
            strategy: strategy.clone(),
            trial: item.trial,
            cgroup_parent: self.cgroup_parent.clone(),
            gdb: false,
            keep_hung: false,
            trace: false,
            // A verdict whose diagnoses are all written in this cell is
            // diagnosed briefly: only what finds its signatures.
            brief_verdicts: self.diagnosed.brief_verdicts(
                &cell.scenario.name,
                &strategy.name,
                &sweep_value(cell),
            ),
            log_dir: Some(self.log_dir.clone()),
        })
    }

    /// Record the outcome `o` of the pool's `i`-th trial into `rec` and
    /// show it (a line, or the bar); `false` when `i` was not in flight.
    fn record(&self, rec: &mut Recorder, bar: &Bar, i: u64, o: &Outcome) -> bool {
        let Some((item, plan, plan_hash)) = self.in_flight.lock().expect("in flight").remove(&i)
        else {
            return false;
        };
        let cell = &self.m.cells[item.cell];
        let strategy = &self.m.strategies[item.strategy];
        let stem = format!(
            "{}.{}.{}.{}",
            cell.scenario.name,
            sweep_value(cell),
            strategy.name,
            item.trial
        );
        let sweep = cell
            .sweep
            .as_ref()
            .map(|o| (o.key.as_str(), o.value.as_str()));
        let replay = RunCommand {
            scenario: &cell.name,
            seed: plan.seed,
            overrides: &cell.overrides,
            deadline_ms: self.spec.deadline_ms,
            no_cgroup: self.spec.no_cgroup,
        }
        .replay_trial(strategy, &plan, item.trial);
        let recorded = rec.record(&Finished {
            source: TrialSource::of(&plan, &plan_hash, item.trial, sweep),
            strategy,
            outcome: o,
            stem: &stem,
            replay: &replay,
        });
        if rec.failing() {
            self.failed.store(true, Ordering::SeqCst);
        }
        match self.args.progress {
            Progress::Lines => {
                // A closed stderr ends the progress lines, not the soak.
                let _ = writeln!(
                    std::io::stderr(),
                    "soak: {} {} {} trial {}: {}",
                    cell.scenario.name,
                    sweep_value(cell),
                    strategy.name,
                    item.trial,
                    recorded.row.verdict
                );
            }
            _ => {
                bar.inc(|| rec.tally().live_counts());
            }
        }
        true
    }

    /// Run every trial left on `session`'s pool, recorded into `rec` and
    /// shown on `bar`: the wall time and the number of trials run.
    ///
    /// # Errors
    /// [`LabError::Lab`] when supervisors cannot be started.
    pub fn run(
        &self,
        session: &Session,
        rec: &mut Recorder,
        bar: &Bar,
    ) -> (Result<Duration, LabError>, u64) {
        let mut trials_run = 0u64;
        let request = |i: u64| self.request(i);
        let wall = session.run_pool(&request, &|_| {}, |i, o: Outcome| {
            if self.record(rec, bar, i, &o) {
                trials_run += 1;
            }
        });
        (wall, trials_run)
    }
}
