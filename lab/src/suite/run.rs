//! `lab suite`: every member alone and the whole suite, K times each.
//!
//! One **execution** is an ordered list of members run in one fresh
//! supervisor, one trial each, sharing its process-global state; a member
//! alone is an execution of one. [`Executor`] runs executions on `jobs`
//! supervisors at once and counts them (`runs`). `lab suite` runs every
//! member alone and the whole suite K times under each strategy, and calls
//! out the members whose verdict depends on the order.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::{Setup, Suite};
use crate::cgroup;
use crate::error::LabError;
use crate::record::Counts;
use crate::report::{verdict_counts, Failure, TestCase, TestOutcome, TestReport};
use crate::strategy::Strategy;
use crate::verdict::Verdict;

pub use super::executor::{Execution, Executor};

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
    pub fn of(alone: &Counts, in_suite: &Counts) -> Option<Dependence> {
        let (a, s) = (alone.count(Verdict::Pass), in_suite.count(Verdict::Pass));
        if alone.runs() > 0 && a == alone.runs() && s < in_suite.runs() {
            Some(Dependence::FailsInSuite)
        } else if alone.runs() > 0 && a == 0 && s > 0 {
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
    pub alone: Counts,
    /// Its verdicts in the suite.
    pub suite: Counts,
    /// Whether, and how, its verdict depends on the order.
    pub order_dependent: Option<Dependence>,
}

/// A member called out as order-dependent, with the commands that replay
/// it and look for its cause.
#[derive(Clone, Debug, Serialize)]
pub struct OrderDependent {
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
    pub order_dependent: Vec<OrderDependent>,
    /// Why no member can be order-dependent, when the members share
    /// nothing (every one runs a command at its root); `null` otherwise.
    pub warning: Option<String>,
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
        for strategy in &self.strategies {
            let _ = writeln!(s, "\n{strategy}:");
            let rows: Vec<Vec<String>> = self
                .members
                .iter()
                .filter(|m| &m.strategy == strategy)
                .map(|m| {
                    let mark = match m.order_dependent {
                        Some(Dependence::FailsInSuite) => "<- order-dependent",
                        Some(Dependence::PassesOnlyInSuite) => "<- passes only in the suite",
                        None => "",
                    };
                    let mut failures = m.suite.render_failures();
                    if m.alone.failures() > 0 {
                        let _ = write!(failures, "  (alone: {})", m.alone.render_failures());
                    }
                    vec![
                        m.name.clone(),
                        format!("{}/{}", m.alone_pass, m.repeat),
                        format!("{}/{}", m.suite_pass, m.repeat),
                        failures,
                        mark.to_string(),
                    ]
                })
                .collect();
            // The marks' column, headed by nothing, only when a row has a
            // mark: else its underline would be a stray column.
            let mut header = vec!["member", "alone", "in the suite", "failures in the suite"];
            let mut rows = rows;
            if rows.iter().any(|r| !r[4].is_empty()) {
                header.push("");
            } else {
                rows.iter_mut().for_each(|r| r.truncate(4));
            }
            s.push_str(&crate::table::text(2, &header, &rows));
        }
        if let Some(w) = &self.warning {
            let _ = writeln!(s, "\nwarning: {w}");
        } else if self.order_dependent.is_empty() {
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
            for (reason, n) in &m.suite.failing_reasons() {
                let _ = writeln!(s, "  x{n}: {reason}");
            }
            if let Some(d) = m.suite.diagnosis() {
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

impl SuiteReport {
    /// The test report of the suite (`lab suite`): one test case per member
    /// and strategy, in a suite per strategy; a member whose verdict
    /// depends on the order fails, naming its runs alone and in the suite,
    /// the command that replays it and the one that bisects it.
    pub fn test_report(&self) -> TestReport {
        TestReport {
            name: "lab suite".to_string(),
            cases: self.members.iter().map(|m| self.test_case(m)).collect(),
        }
    }

    /// The test case of member `m` under its strategy.
    fn test_case(&self, m: &MemberReport) -> TestCase {
        let counts = format!(
            "alone: {}; in the suite: {}",
            verdict_counts(m.alone.verdicts().iter().map(|(v, n)| (v.as_str(), *n))),
            verdict_counts(m.suite.verdicts().iter().map(|(v, n)| (v.as_str(), *n)))
        );
        let found = self
            .order_dependent
            .iter()
            .find(|d| d.name == m.name && d.strategy == m.strategy);
        let outcome = found.map_or(TestOutcome::Passed, |d| {
            let what = match d.dependence {
                Dependence::FailsInSuite => "passes alone and fails in the suite",
                Dependence::PassesOnlyInSuite => "fails alone and passes only in the suite",
            };
            let diagnosis = m
                .suite
                .diagnosis()
                .or(m.alone.diagnosis())
                .unwrap_or("none");
            let message = format!(
                "order-dependent: {what}; verdicts {counts}; replay: {}; find the cause: {}; \
                 first diagnosis: {}",
                d.replay,
                d.bisect,
                diagnosis.lines().next().unwrap_or("none")
            );
            let details = format!(
                "order-dependent under {}: {what}\nverdicts {counts}\nreplay: {}\n\
                 find the cause: {}\ndiagnosis:\n{diagnosis}\n",
                m.strategy, d.replay, d.bisect
            );
            TestOutcome::Failed(Failure {
                message,
                details,
                kind: "order-dependent",
            })
        });
        TestCase {
            suite: format!("{} {}", self.suite, m.strategy),
            name: m.name.clone(),
            classname: self.suite.clone(),
            time: Duration::ZERO,
            counts,
            outcome,
        }
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
    let mut dependents = Vec::new();
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
            let mut alone = Counts::default();
            for o in &alone_runs[pos * k as usize..(pos + 1) * k as usize] {
                if let Some(o) = o.first() {
                    alone.add_outcome(o);
                }
            }
            let mut in_suite = Counts::default();
            for run in suite_runs {
                if let Some(o) = run.get(pos) {
                    in_suite.add_outcome(o);
                }
            }
            let name = suite.members[m].name.clone();
            let dependence = Dependence::of(&alone, &in_suite);
            if let Some(dependence) = dependence {
                let upto: Vec<&str> = order[..=pos]
                    .iter()
                    .map(|&i| suite.members[i].name.as_str())
                    .collect();
                dependents.push(OrderDependent {
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
        order_dependent: dependents,
        warning: super::shares_nothing(&suite, &order),
        runs,
        cgroup,
        cgroup_note,
        kernel: crate::record::row::kernel(),
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}
