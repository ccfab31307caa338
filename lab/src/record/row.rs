//! The row schema of a run's `trials.csv`: one [`TrialRow`] per trial
//! (documented in `docs/results-format.md`), what the rows of one run share
//! ([`RunContext`]) and where one trial came from ([`TrialSource`]).

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::strategy::Strategy;
use crate::verdict::Outcome;

/// Version of the CSV header; bumped on any change of columns (documented in
/// `docs/results-format.md`).
pub const SCHEMA: u32 = 6;

/// The oldest schema the readers accept: a schema 4 row (no
/// `pid_namespace` column) is read with `pid_namespace` `none`, which is
/// what every trial before schema 5 ran with; a schema 4 or 5 row (no
/// `kill_planned_us`, `kill_sent_us`) with both empty, as a row without a
/// kill has them. Either comes back as a [`SCHEMA`] row.
pub const OLDEST_SCHEMA: u32 = 4;

/// What a reader says it reads, for its refusals: `schemas 4 to 6`.
pub fn schemas_read() -> String {
    format!("schemas {OLDEST_SCHEMA} to {SCHEMA}")
}

/// One CSV row: one trial. Written by `lab run` and `lab soak`, read back by
/// `lab merge`, `lab report` and `lab plot`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The run this trial belongs to.
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file.
    pub scenario_hash: String,
    /// Hash of the plan.
    pub plan_hash: String,
    /// The plan's seed.
    pub seed: u64,
    /// Trial index within the run, scenario and strategy.
    pub trial: u64,
    /// Strategy name.
    pub strategy: String,
    /// Create axis.
    pub create: String,
    /// Parent-death axis.
    pub death: String,
    /// Observe axis.
    pub observe: String,
    /// Whether the canonical path's guards were on.
    pub guards: bool,
    /// The swept scenario parameter (`kill_delay`, ...); empty when none.
    pub sweep_key: String,
    /// Its value in this trial, as written in the scenario (`5ms`).
    pub sweep_value: String,
    /// Verdict.
    pub verdict: String,
    /// Orphans counted.
    pub orphans: u32,
    /// Hung processes counted.
    pub hung: u32,
    /// Time to verdict (µs).
    pub time_to_verdict_us: u64,
    /// Trial duration, cleanup included (µs).
    pub duration_us: u64,
    /// Latency of a slow cascade (µs), if one was seen.
    pub slow_cascade_us: Option<u64>,
    /// Cascade window used (µs).
    pub window_us: u64,
    /// What ended the tree.
    pub kill_rung: String,
    /// When the plan's first kill was due in this trial, µs after its
    /// target's spawn (the moment drawn for the trial, or the plan's);
    /// empty without a timed kill, or when the moment never came to be
    /// known (schema 6).
    #[serde(default)]
    pub kill_planned_us: Option<u64>,
    /// When its first signal was sent, µs after the target's spawn; empty
    /// when it was never sent (the target ended first) or there is no kill
    /// (schema 6).
    #[serde(default)]
    pub kill_sent_us: Option<u64>,
    /// Nodes that reported `created`.
    pub nodes_spawned: u32,
    /// `cgroup` or `subreaper`.
    pub cgroup_mode: String,
    /// The supervisor's PID namespace: `pid` (init of its own), `pid+user`
    /// (the same, in a user namespace of its own) or `none` (the lab's: a
    /// signal by a stale PID could reach the host's processes).
    #[serde(default)]
    pub pid_namespace: String,
    /// The lab's version.
    pub lab_version: String,
    /// Kernel release.
    pub kernel: String,
    /// Node paths of survivors or blocked processes, space-separated.
    pub survivors: String,
    /// Why, for every verdict but pass (a panic's reason included).
    pub reason: String,
    /// The teardown rung in effect when each node died, `path=RUNG`,
    /// space-separated.
    pub node_rungs: String,
    /// Kill targets the `/proc` oracle read as alive right after the kill
    /// although their pidfd reported the exit (legacy observe axis only).
    pub false_orphans: u32,
    /// Signatures named in the trial, space-separated (`writer-elsewhere
    /// duplicated-stdio`).
    pub signatures: String,
    /// For a `panic`: the guard's site in the lab's source (`file:line`);
    /// its reason is in `reason`.
    pub panic_site: String,
    /// The trial's diagnosis (JSON; the readable text sits beside it with
    /// the extension `.txt`), for hang and orphan verdicts.
    pub diagnosis: String,
    /// The command that replays this trial.
    pub replay: String,
}

/// What the rows of one run share.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The run id.
    pub run_id: String,
    /// The lab's version.
    pub lab_version: String,
    /// Kernel release.
    pub kernel: String,
}

impl RunContext {
    /// The context of a new run of `scenario` (names the run id) with `seed`.
    pub fn new(scenario: &str, seed: u64) -> RunContext {
        RunContext {
            run_id: super::dir::run_id(scenario, seed),
            lab_version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: kernel(),
        }
    }
}

/// Where one trial came from: its scenario, plan and place in the run.
#[derive(Clone, Copy, Debug)]
pub struct TrialSource<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Hash of the scenario file.
    pub scenario_hash: &'a str,
    /// Hash of the plan.
    pub plan_hash: &'a str,
    /// The plan's seed.
    pub seed: u64,
    /// Trial index.
    pub trial: u64,
    /// The swept parameter and its value, if any.
    pub sweep: Option<(&'a str, &'a str)>,
}

impl<'a> TrialSource<'a> {
    /// Trial `trial` of `plan` (whose [`Plan::hash`] is `plan_hash`), at
    /// the swept value `sweep` if any: the scenario, its hash and the seed
    /// are the plan's own.
    pub fn of(
        plan: &'a Plan,
        plan_hash: &'a str,
        trial: u64,
        sweep: Option<(&'a str, &'a str)>,
    ) -> TrialSource<'a> {
        TrialSource {
            scenario: &plan.scenario,
            scenario_hash: &plan.scenario_hash,
            plan_hash,
            seed: plan.seed,
            trial,
            sweep,
        }
    }
}

impl TrialRow {
    /// This row as a [`SCHEMA`] row: a schema 4 row had no
    /// `pid_namespace` column and ran with none; a schema 4 or 5 row had
    /// no kill moment columns, which stay empty.
    pub fn upgraded(mut self) -> TrialRow {
        if self.schema < 5 {
            self.pid_namespace = "none".into();
        }
        if self.schema < SCHEMA {
            self.schema = SCHEMA;
        }
        self
    }

    /// The row of trial `src` under `strategy` that ended with `o`; its
    /// diagnosis was written at `diagnosis` (empty: none).
    pub fn new(
        ctx: &RunContext,
        src: &TrialSource<'_>,
        strategy: &Strategy,
        o: &Outcome,
        diagnosis: &str,
        replay: &str,
    ) -> TrialRow {
        let (sweep_key, sweep_value) = src.sweep.unwrap_or(("", ""));
        TrialRow {
            schema: SCHEMA,
            run_id: ctx.run_id.clone(),
            scenario: src.scenario.into(),
            scenario_hash: src.scenario_hash.into(),
            plan_hash: src.plan_hash.into(),
            seed: src.seed,
            trial: src.trial,
            strategy: strategy.name.clone(),
            create: strategy.create.name().into(),
            death: strategy.death.name().into(),
            observe: strategy.observe.name().into(),
            guards: strategy.guards,
            sweep_key: sweep_key.into(),
            sweep_value: sweep_value.into(),
            verdict: o.verdict.name().into(),
            orphans: o.orphans,
            hung: o.hung,
            time_to_verdict_us: o.time_to_verdict_us,
            duration_us: o.duration_us,
            slow_cascade_us: o.slow_cascade_us,
            window_us: o.window_us,
            kill_rung: o.kill_rung.to_string(),
            kill_planned_us: o.kill_planned_us,
            kill_sent_us: o.kill_sent_us,
            nodes_spawned: o.nodes_spawned,
            cgroup_mode: if o.cgroup { "cgroup" } else { "subreaper" }.into(),
            pid_namespace: if o.pid_namespace.is_empty() {
                "none".into()
            } else {
                o.pid_namespace.clone()
            },
            lab_version: ctx.lab_version.clone(),
            kernel: ctx.kernel.clone(),
            survivors: o.survivors.join(" "),
            reason: o.reason.clone().unwrap_or_default(),
            node_rungs: crate::verdict::words(&o.node_rungs),
            false_orphans: o.false_orphans,
            signatures: crate::verdict::words(&o.signatures),
            panic_site: o.panic_site.clone().unwrap_or_default(),
            diagnosis: diagnosis.into(),
            replay: replay.into(),
        }
    }
}

/// The kernel release (`uname -r`).
pub fn kernel() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}
