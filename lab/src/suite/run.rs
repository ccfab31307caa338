//! The suite machinery and `lab suite`.
//!
//! One **execution** is an ordered list of members run in one fresh
//! supervisor, one trial each, sharing its process-global state; a member
//! alone is an execution of one. [`Executor`] runs executions on `jobs`
//! supervisors at once and counts them (`runs`). `lab suite` runs every
//! member alone and the whole suite K times under each strategy, and calls
//! out the members whose verdict depends on the order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::{Setup, Suite};
use crate::error::LabError;
use crate::runner::{self, Supervisor};
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::reason_class;
use crate::verdict::{Outcome, Verdict};
use crate::{cgroup, results};

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

/// Runs executions of a suite's members, each in a fresh supervisor, and
/// counts them. Owns the lab's cgroup for the trials (removed on drop).
#[derive(Debug)]
pub struct Executor<'a> {
    suite: &'a Suite,
    setup: &'a Setup,
    cgroup: Option<PathBuf>,
    cgroup_note: Option<String>,
    runs: AtomicU64,
}

impl<'a> Executor<'a> {
    /// Prepare to run members of `suite` as `setup` says: the lab's cgroup
    /// (unless `no_cgroup`, or none is writable; then subreaper mode).
    pub fn new(suite: &'a Suite, setup: &'a Setup) -> Executor<'a> {
        let (cgroup, cgroup_note) = cgroup::trial_parent(setup.no_cgroup);
        Executor {
            suite,
            setup,
            cgroup,
            cgroup_note,
            runs: AtomicU64::new(0),
        }
    }

    /// Executions run so far (each is one fresh supervisor).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Whether trials run in cgroups of their own, and why not.
    pub fn cgroup(&self) -> (bool, Option<String>) {
        (self.cgroup.is_some(), self.cgroup_note.clone())
    }

    /// Run one execution: start a supervisor, hand it each member's trial in
    /// turn, and return one outcome per member, in order. A member whose
    /// supervisor died (in it or before it) gets an `error` outcome.
    ///
    /// # Errors
    /// [`LabError::Lab`] when no supervisor can be started.
    pub fn execute(&self, e: &Execution) -> Result<Vec<Outcome>, LabError> {
        let mut sup = Supervisor::start(&self.setup.exe).map_err(|err| {
            LabError::Lab(format!(
                "cannot start a supervisor ({}): {err}",
                self.setup.exe.display()
            ))
        })?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let mut outcomes = Vec::with_capacity(e.members.len());
        let mut dead: Option<String> = None;
        for &m in &e.members {
            if let Some(why) = &dead {
                outcomes.push(Outcome::error(
                    format!("not run: the suite's supervisor died earlier ({why})"),
                    0,
                ));
                continue;
            }
            let plan = &self.suite.members[m].plan;
            let req = TrialRequest {
                plan: plan.clone(),
                strategy: e.strategy.clone(),
                trial: e.repetition,
                deadline_us: self
                    .setup
                    .deadline
                    .map_or(plan.deadline_us, |d| d.as_micros() as u64),
                cgroup_parent: self.cgroup.clone(),
                gdb: false,
                keep_hung: false,
            };
            match sup.run(&req, &|_| {}) {
                Ok(o) => outcomes.push(o),
                Err(why) => {
                    outcomes.push(Outcome::error(why.clone(), 0));
                    dead = Some(why);
                }
            }
        }
        Ok(outcomes)
    }

    /// Run `executions` on up to `jobs` supervisors at once; the outcomes
    /// are returned in the order of `executions`.
    ///
    /// # Errors
    /// [`LabError::Lab`] when a supervisor cannot be started.
    pub fn execute_all(&self, executions: &[Execution]) -> Result<Vec<Vec<Outcome>>, LabError> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Vec<Outcome>>>> = Mutex::new(vec![None; executions.len()]);
        let failure: Mutex<Option<LabError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..self.setup.jobs.max(1).min(executions.len()) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= executions.len() || failure.lock().is_ok_and(|f| f.is_some()) {
                        break;
                    }
                    match self.execute(&executions[i]) {
                        Ok(o) => results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(o),
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            break;
                        }
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|o| o.unwrap_or_default())
            .collect())
    }
}

impl Drop for Executor<'_> {
    fn drop(&mut self) {
        if let Some(dir) = &self.cgroup {
            cgroup::remove_lab_cgroup(dir);
        }
        runner::sweep_orphans();
    }
}

/// The verdicts of one member over K runs: counts by verdict, and for the
/// failures the signatures named and the reasons (PIDs and pipe inodes
/// written `N`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Runs counted.
    pub runs: u64,
    /// Runs by verdict name (`pass`, `hang`, ...).
    pub verdicts: BTreeMap<String, u64>,
    /// For each signature named by a failing run, the runs that named it.
    pub signatures: BTreeMap<String, u64>,
    /// Distinct reasons of failing runs, with their counts.
    pub reasons: BTreeMap<String, u64>,
    /// The diagnosis summary of the first failing run that has one.
    pub diagnosis: Option<String>,
}

impl Tally {
    /// Count `o`.
    pub fn add(&mut self, o: &Outcome) {
        self.runs += 1;
        *self
            .verdicts
            .entry(o.verdict.name().to_string())
            .or_insert(0) += 1;
        if o.verdict == Verdict::Pass {
            return;
        }
        for s in &o.signatures {
            *self.signatures.entry(s.to_string()).or_insert(0) += 1;
        }
        if let Some(r) = &o.reason {
            *self.reasons.entry(reason_class(r)).or_insert(0) += 1;
        }
        if self.diagnosis.is_none() {
            self.diagnosis = o.diagnosis.as_ref().map(|d| d.summary());
        }
    }

    /// Runs with verdict `v`.
    pub fn count(&self, v: Verdict) -> u64 {
        self.verdicts.get(v.name()).copied().unwrap_or(0)
    }

    /// Runs that did not pass.
    pub fn failures(&self) -> u64 {
        self.runs - self.count(Verdict::Pass)
    }

    /// The failures as text: `hang x5 (lone-futex-waiter)`, or empty.
    pub fn render_failures(&self) -> String {
        let mut parts: Vec<String> = self
            .verdicts
            .iter()
            .filter(|(v, _)| v.as_str() != Verdict::Pass.name())
            .map(|(v, n)| format!("{v} x{n}"))
            .collect();
        if !self.signatures.is_empty() {
            let names: Vec<&str> = self.signatures.keys().map(String::as_str).collect();
            parts.push(format!("({})", names.join(", ")));
        }
        parts.join(" ")
    }
}

/// How a member's verdict depends on the order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dependence {
    /// It passes alone in every run and fails in the suite in some run:
    /// something that ran before it pollutes it.
    FailsInSuite,
    /// It fails alone in every run and passes in the suite in some run:
    /// it passes only because something ran before it.
    PassesOnlyInSuite,
}

impl Dependence {
    /// The dependence shown by `alone` and `in_suite` tallies, if any.
    pub fn of(alone: &Tally, in_suite: &Tally) -> Option<Dependence> {
        let (a, s) = (alone.count(Verdict::Pass), in_suite.count(Verdict::Pass));
        if alone.runs > 0 && a == alone.runs && s < in_suite.runs {
            Some(Dependence::FailsInSuite)
        } else if alone.runs > 0 && a == 0 && s > 0 {
            Some(Dependence::PassesOnlyInSuite)
        } else {
            None
        }
    }
}

/// One member under one strategy: alone and in the suite, K runs each.
#[derive(Clone, Debug, Serialize)]
pub struct MemberReport {
    /// The member's name.
    pub name: String,
    /// The strategy.
    pub strategy: String,
    /// Its place in the suite's order (0 first).
    pub position: usize,
    /// Runs alone and runs in the suite (K).
    pub repeat: u64,
    /// Runs alone that passed.
    pub alone_pass: u64,
    /// Runs alone that hung.
    pub alone_hang: u64,
    /// Runs alone that panicked.
    pub alone_panic: u64,
    /// Runs in the suite that passed.
    pub suite_pass: u64,
    /// Runs in the suite that hung.
    pub suite_hang: u64,
    /// Runs in the suite that panicked.
    pub suite_panic: u64,
    /// Its verdicts alone.
    pub alone: Tally,
    /// Its verdicts in the suite.
    pub suite: Tally,
    /// Whether, and how, its verdict depends on the order.
    pub order_dependent: Option<Dependence>,
}

/// A member called out as order-dependent, with the commands that replay
/// it and look for its cause.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The member.
    pub name: String,
    /// The strategy.
    pub strategy: String,
    /// How it depends on the order.
    pub dependence: Dependence,
    /// `lab suite ... --members ...` up to and including it.
    pub replay: String,
    /// `lab bisect ... --victim NAME ...`.
    pub bisect: String,
}

/// What `lab suite` reports (`--format json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct SuiteReport {
    /// The suite's name.
    pub suite: String,
    /// The suite file as given.
    pub file: String,
    /// How the order was chosen: `written`, `reversed`, `seed N`, `members`.
    pub order_rule: String,
    /// The members in the order they ran.
    pub order: Vec<String>,
    /// K: runs alone and runs of the suite, per strategy.
    pub repeat: u64,
    /// The strategies, in the order asked.
    pub strategies: Vec<String>,
    /// One entry per member and strategy, strategy by strategy, members in
    /// the suite's order.
    pub members: Vec<MemberReport>,
    /// The members whose verdict depends on the order.
    pub order_dependent: Vec<Finding>,
    /// Executions run (each one fresh supervisor).
    pub runs: u64,
    /// Whether trials ran in cgroups of their own (else: subreaper alone).
    pub cgroup: bool,
    /// Why not, when `cgroup` is false.
    pub cgroup_note: Option<String>,
    /// Kernel release.
    pub kernel: String,
    /// Lab version.
    pub lab_version: String,
}

impl SuiteReport {
    /// The table, the order-dependent members and their commands, as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mode = cgroup::mode_label(self.cgroup, self.cgroup_note.as_deref());
        let _ = writeln!(
            s,
            "lab suite {}  order {}: {}  repeat {}  kernel {}  mode {}",
            self.suite,
            self.order_rule,
            self.order.join(" "),
            self.repeat,
            self.kernel,
            mode
        );
        let width = self.order.iter().map(|n| n.len()).max().unwrap_or(6).max(6);
        for strategy in &self.strategies {
            let _ = writeln!(s, "\n{strategy}:");
            let _ = writeln!(
                s,
                "  {:<width$}  {:<7}  {:<12}  failures in the suite",
                "member", "alone", "in the suite"
            );
            for m in self.members.iter().filter(|m| &m.strategy == strategy) {
                let mark = match m.order_dependent {
                    Some(Dependence::FailsInSuite) => "  <- order-dependent",
                    Some(Dependence::PassesOnlyInSuite) => "  <- passes only in the suite",
                    None => "",
                };
                let alone = format!("{}/{}", m.alone_pass, m.repeat);
                let suite = format!("{}/{}", m.suite_pass, m.repeat);
                let mut failures = m.suite.render_failures();
                if m.alone.failures() > 0 {
                    let _ = write!(failures, "  (alone: {})", m.alone.render_failures());
                }
                let row = format!(
                    "  {:<width$}  {alone:<7}  {suite:<12}  {failures}{mark}",
                    m.name
                );
                let _ = writeln!(s, "{}", row.trim_end());
            }
        }
        if self.order_dependent.is_empty() {
            let _ = writeln!(
                s,
                "\nno order-dependent member: every member has the same verdicts alone and in the suite"
            );
        }
        for f in &self.order_dependent {
            let m = self
                .members
                .iter()
                .find(|m| m.name == f.name && m.strategy == f.strategy);
            let Some(m) = m else { continue };
            let what = match f.dependence {
                Dependence::FailsInSuite => format!(
                    "passes alone {}/{} and fails in the suite {}/{}",
                    m.alone_pass,
                    m.repeat,
                    m.suite.failures(),
                    m.repeat
                ),
                Dependence::PassesOnlyInSuite => format!(
                    "fails alone {}/{} and passes in the suite {}/{}",
                    m.alone.failures(),
                    m.repeat,
                    m.suite_pass,
                    m.repeat
                ),
            };
            let _ = writeln!(
                s,
                "\norder-dependent under {}: {} {what}",
                f.strategy, f.name
            );
            for (reason, n) in &m.suite.reasons {
                let _ = writeln!(s, "  x{n}: {reason}");
            }
            if let Some(d) = &m.suite.diagnosis {
                for line in d.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
            let _ = writeln!(s, "  replay: {}", f.replay);
            let _ = writeln!(s, "  find the cause: {}", f.bisect);
        }
        s
    }
}

/// `lab suite`: run every member of the suite alone (a fresh supervisor
/// each) and the whole suite in one supervisor, `setup.repeat` times each,
/// under every strategy, and tally each member.
///
/// # Errors
/// [`LabError::Input`] for a bad suite file or order; [`LabError::Lab`]
/// when supervisors cannot be started.
pub fn run(setup: &Setup, strategies: &[Strategy]) -> Result<SuiteReport, LabError> {
    let suite = Suite::load(&setup.suite)?;
    let order = setup.order.resolve(&suite)?;
    let k = setup.repeat;
    let exec = Executor::new(&suite, setup);
    let mut members = Vec::new();
    let mut findings = Vec::new();
    for strategy in strategies {
        let mut executions = Vec::new();
        for &m in &order {
            for r in 0..k {
                executions.push(Execution {
                    members: vec![m],
                    strategy: strategy.clone(),
                    repetition: r,
                });
            }
        }
        for r in 0..k {
            executions.push(Execution {
                members: order.clone(),
                strategy: strategy.clone(),
                repetition: r,
            });
        }
        let outcomes = exec.execute_all(&executions)?;
        let (alone_runs, suite_runs) = outcomes.split_at(order.len() * k as usize);
        for (pos, &m) in order.iter().enumerate() {
            let mut alone = Tally::default();
            for o in &alone_runs[pos * k as usize..(pos + 1) * k as usize] {
                if let Some(o) = o.first() {
                    alone.add(o);
                }
            }
            let mut in_suite = Tally::default();
            for run in suite_runs {
                if let Some(o) = run.get(pos) {
                    in_suite.add(o);
                }
            }
            let name = suite.members[m].name.clone();
            let dependence = Dependence::of(&alone, &in_suite);
            if let Some(dependence) = dependence {
                let upto: Vec<&str> = order[..=pos]
                    .iter()
                    .map(|&i| suite.members[i].name.as_str())
                    .collect();
                findings.push(Finding {
                    name: name.clone(),
                    strategy: strategy.name.clone(),
                    dependence,
                    replay: setup.suite_command(&upto, strategy),
                    bisect: setup.bisect_command(
                        &name,
                        strategy,
                        dependence == Dependence::PassesOnlyInSuite,
                    ),
                });
            }
            members.push(MemberReport {
                name,
                strategy: strategy.name.clone(),
                position: pos,
                repeat: k,
                alone_pass: alone.count(Verdict::Pass),
                alone_hang: alone.count(Verdict::Hang),
                alone_panic: alone.count(Verdict::Panic),
                suite_pass: in_suite.count(Verdict::Pass),
                suite_hang: in_suite.count(Verdict::Hang),
                suite_panic: in_suite.count(Verdict::Panic),
                alone,
                suite: in_suite,
                order_dependent: dependence,
            });
        }
    }
    let (cgroup, cgroup_note) = exec.cgroup();
    let runs = exec.runs();
    drop(exec);
    Ok(SuiteReport {
        suite: suite.name.clone(),
        file: setup.suite.clone(),
        order_rule: setup.order.describe(),
        order: order
            .iter()
            .map(|&i| suite.members[i].name.clone())
            .collect(),
        repeat: k,
        strategies: strategies.iter().map(|s| s.name.clone()).collect(),
        members,
        order_dependent: findings,
        runs,
        cgroup,
        cgroup_note,
        kernel: results::kernel(),
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}
