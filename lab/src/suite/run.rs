//! `lab suite`: every member alone and the whole suite, K times each.
//!
//! One **execution** is an ordered list of members run in one fresh
//! supervisor, one trial each, sharing its process-global state; a member
//! alone is an execution of one. [`Executor`] runs executions on `jobs`
//! supervisors at once and counts them (`runs`). `lab suite` runs every
//! member alone and the whole suite K times under each strategy, and calls
//! out the members whose verdict depends on the order.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Setup, Source};
use crate::cgroup;
use crate::error::{Exit, LabError};
use crate::record::Counts;
use crate::strategy::Strategy;
use crate::verdict::Verdict;

pub use super::executor::{Execution, Executor, Ran};

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
    /// Runs alone and runs in the suite asked (K).
    pub repeat: u64,
    /// Runs of the whole suite done under its strategy: K, fewer when an
    /// interruption stopped the command (a run in which this member did
    /// not run counts too).
    pub suite_runs_done: u64,
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
    /// It fails alone in every run (and in the suite): broken, whatever
    /// the order; not order-dependent.
    pub broken: bool,
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
    /// For a runner: the test process's own command that runs the tests up
    /// to this one in one process (each word quoted for a shell).
    pub command: Option<String>,
}

/// What `lab suite` reports (`--format json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct SuiteReport {
    /// The suite's name.
    pub suite: String,
    /// The suite file or the runner, as given.
    pub file: String,
    /// Where the tests come from: `suite` (a suite file), `libtest`,
    /// `pytest` or `command`.
    pub source: String,
    /// How the runner orders the tests it is given, when it does not keep
    /// the order given (libtest sorts them); `null` otherwise.
    pub order_note: Option<String>,
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
    /// Executions run (each one fresh supervisor; for a runner, one run of
    /// its test process).
    pub runs: u64,
    /// Executions asked: (tests + 1) x K per strategy; `runs` is fewer when
    /// interrupted.
    pub runs_planned: u64,
    /// A Ctrl-C (SIGINT) or a SIGTERM stopped the command: no execution
    /// started after it, those in flight finished, and the counts are those
    /// of the runs done (never `clean`).
    pub interrupted: bool,
    /// The signal that stopped it (`INT`, `TERM`); absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<crate::signal::Sig>,
    /// For a runner: the test process's own verdicts over the runs of the
    /// whole suite (an `orphan` or `leak` is a process it left behind, with
    /// its lineage in the diagnosis); `null` for a suite file.
    pub process: Option<Counts>,
    /// Runs of the whole suite in which some test, or the test process, did
    /// not pass, and how many runs of the whole suite there were.
    pub failing_suite_runs: u64,
    /// Runs of the whole suite, every strategy.
    pub suite_runs: u64,
    /// Whether nothing is order-dependent, no test is broken, nothing was
    /// left behind and every run was done (not interrupted): what
    /// `--expect-clean` asks.
    pub clean: bool,
    /// The bound a clean result proves: `0 failing runs in N suite runs
    /// (95% upper bound X%)`; `null` when not clean.
    pub bound: Option<String>,
    /// For a runner: the `trials.csv` where every run of its test process
    /// is recorded (its diagnoses and output beside it); `null` otherwise.
    pub csv: Option<String>,
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
        let runner = self.process.is_some();
        if runner {
            let _ = writeln!(
                s,
                "lab suite {}  {}  repeat {}  kernel {}  mode {}",
                self.file,
                crate::text::plural(self.order.len() as u64, "test"),
                self.repeat,
                self.kernel,
                mode
            );
        } else {
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
        }
        if let Some(note) = &self.order_note {
            let _ = writeln!(s, "{note}");
        }
        if let Some(sig) = self.interrupted_by {
            let _ = writeln!(
                s,
                "interrupted ({}): the partial report of {} of {} runs",
                crate::error::Exit::interruption_name(sig),
                self.runs,
                self.runs_planned
            );
        }
        for strategy in &self.strategies {
            let ran = self
                .members
                .iter()
                .any(|m| m.strategy == *strategy && m.alone.runs() + m.suite_runs_done > 0);
            if !ran && self.interrupted {
                let _ = writeln!(s, "\n{strategy}: not run (interrupted)");
                continue;
            }
            if !runner {
                let _ = writeln!(s, "\n{strategy}:");
            } else {
                s.push('\n');
            }
            s.push_str(&self.table(strategy, runner));
        }
        self.render_process(&mut s);
        let what = if runner { "test" } else { "member" };
        if let Some(w) = &self.warning {
            let _ = writeln!(s, "\nwarning: {w}");
        } else if self.order_dependent.is_empty() && self.interrupted {
            let _ = writeln!(
                s,
                "\nno order-dependent {what} in the runs done (interrupted: the report is partial)"
            );
        } else if self.order_dependent.is_empty() {
            let _ = writeln!(
                s,
                "\nno order-dependent {what}: every {what} has the same verdicts alone and in the \
                 suite"
            );
        }
        for f in &self.order_dependent {
            self.render_finding(&mut s, f);
        }
        if let Some(bound) = &self.bound {
            let _ = writeln!(s, "\nclean: {bound}");
        }
        if let Some(csv) = &self.csv {
            let _ = writeln!(s, "\nruns of the test process: {csv}");
        }
        s
    }

    /// The table of `strategy`: a row per test.
    fn table(&self, strategy: &str, runner: bool) -> String {
        let rows: Vec<Vec<String>> = self
            .members
            .iter()
            .filter(|m| m.strategy == strategy)
            .map(|m| {
                let mark = match m.order_dependent {
                    Some(Dependence::FailsInSuite) => "<- order-dependent",
                    Some(Dependence::PassesOnlyInSuite) => "<- passes only in the suite",
                    None if m.broken
                        && m.alone.count(Verdict::Orphan) + m.alone.count(Verdict::Leak) > 0 =>
                    {
                        "<- broken: leaves processes behind"
                    }
                    None if m.broken => "<- broken: fails alone too",
                    None => "",
                };
                let mut failures = m.suite.render_failures();
                if m.alone.failures() > 0 {
                    let _ = write!(failures, "  (alone: {})", m.alone.render_failures());
                }
                let mut in_suite = format!("{}/{}", m.suite_pass, m.suite.runs());
                if m.suite.runs() < m.suite_runs_done {
                    let _ = write!(
                        in_suite,
                        " ({} not run)",
                        m.suite_runs_done - m.suite.runs()
                    );
                }
                vec![
                    m.name.clone(),
                    format!("{}/{}", m.alone_pass, m.alone.runs()),
                    in_suite,
                    failures,
                    mark.to_string(),
                ]
            })
            .collect();
        // The marks' column, headed by nothing, only when a row has a
        // mark: else its underline would be a stray column.
        let first = if runner { "test" } else { "member" };
        let mut header = vec![first, "alone", "in the suite", "failures in the suite"];
        let mut rows = rows;
        if rows.iter().any(|r| !r[4].is_empty()) {
            header.push("");
        } else {
            rows.iter_mut().for_each(|r| r.truncate(4));
        }
        crate::table::text(2, &header, &rows)
    }

    /// What the test process itself came to in the runs of the whole
    /// suite, when it did not pass every one (a runner only).
    fn render_process(&self, s: &mut String) {
        let Some(p) = &self.process else { return };
        if p.failures() == 0 {
            return;
        }
        let _ = writeln!(
            s,
            "\nthe test process in the runs of the whole suite: {}",
            p.render_failures()
        );
        for (reason, n) in p.failing_reasons() {
            let _ = writeln!(s, "  x{n}: {}", crate::text::bounded(&reason, 400));
        }
        if let Some(d) = p.diagnosis() {
            for line in d.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }

    /// An order-dependent test: what it did, why, and the commands.
    fn render_finding(&self, s: &mut String, f: &OrderDependent) {
        let m = self
            .members
            .iter()
            .find(|m| m.name == f.name && m.strategy == f.strategy);
        let Some(m) = m else { return };
        let what = match f.dependence {
            Dependence::FailsInSuite => format!(
                "passes alone {}/{} and fails in the suite {}/{}",
                m.alone_pass,
                m.alone.runs(),
                m.suite.failures(),
                m.suite.runs()
            ),
            Dependence::PassesOnlyInSuite => format!(
                "fails alone {}/{} and passes in the suite {}/{}",
                m.alone.failures(),
                m.alone.runs(),
                m.suite_pass,
                m.suite.runs()
            ),
        };
        if self.process.is_some() {
            let _ = writeln!(s, "\norder-dependent: {} {what}", f.name);
        } else {
            let _ = writeln!(
                s,
                "\norder-dependent under {}: {} {what}",
                f.strategy, f.name
            );
        }
        for (reason, n) in &m.suite.failing_reasons() {
            let _ = writeln!(s, "  x{n}: {reason}");
        }
        if let Some(d) = m.suite.diagnosis() {
            for line in d.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
        let _ = writeln!(s, "  replay: {}", f.replay);
        if let Some(c) = &f.command {
            let _ = writeln!(s, "  the test process alone: {c}");
        }
        let _ = writeln!(s, "  find the cause: {}", f.bisect);
    }
}

impl SuiteReport {
    /// The exit status: 128 + the signal when interrupted (130 after
    /// Ctrl-C, 143 after SIGTERM), whether or not `expect_clean`; else
    /// with `expect_clean` 0 only when [`SuiteReport::clean`], else 0 when
    /// no test is order-dependent; 1 otherwise.
    pub fn exit(&self, expect_clean: bool) -> Exit {
        if let Some(sig) = self.interrupted_by {
            return Exit::Interrupted(sig);
        }
        if expect_clean {
            return Exit::clean_if(self.clean);
        }
        Exit::clean_if(self.order_dependent.is_empty())
    }
}

/// `lab suite`: run every test of the source alone (a fresh supervisor, or
/// test process, each) and the whole list in one, `setup.repeat` times
/// each, under every strategy (a runner: its test process, started the
/// canonical way), and tally each test. Its header goes to standard error
/// once the first SIGINT or SIGTERM stops the starting of executions
/// instead of ending the lab: the report is then that of the runs done
/// ([`SuiteReport::interrupted_by`]).
///
/// # Errors
/// [`LabError::Input`] for a bad suite file, runner or order;
/// [`LabError::Lab`] when supervisors cannot be started.
pub fn run(setup: &Setup, strategies: &[Strategy]) -> Result<SuiteReport, LabError> {
    let source = setup.source.load(setup.deadline)?;
    let order = setup.order.resolve(&source)?;
    if source.runner().is_some() {
        // Its test processes' process events flow while the lab listens:
        // the lineage of what they leave behind, exact.
        let _events = crate::trial::keep_events_flowing();
        return run_order(setup, &source, &order, strategies);
    }
    run_order(setup, &source, &order, strategies)
}

/// What the runs of one strategy came to.
struct Tallies {
    members: Vec<MemberReport>,
    dependents: Vec<OrderDependent>,
    process: Counts,
    failing_suite_runs: u64,
}

/// [`run`] over the resolved `order`.
fn run_order(
    setup: &Setup,
    source: &Source,
    order: &[usize],
    strategies: &[Strategy],
) -> Result<SuiteReport, LabError> {
    let k = setup.repeat;
    let runs_planned = (order.len() as u64 + 1) * k * strategies.len() as u64;
    // Before anything is made (a runner's results directory): a lab whose
    // supervisors cannot judge by this /proc is refused and leaves nothing.
    crate::session::check_proc(&setup.exe)?;
    crate::session::stop_on_interrupt();
    let exec = Executor::new(source, setup)?;
    crate::output::write_err(format_args!(
        "{}\n",
        header(setup, source, order.len(), strategies, runs_planned)
    ));
    let mut all = Tallies {
        members: Vec::new(),
        dependents: Vec::new(),
        process: Counts::default(),
        failing_suite_runs: 0,
    };
    // Repetition by repetition, every strategy, every test alone then the
    // whole order: an interrupted command has runs of each to compare.
    let width = order.len() + 1;
    let mut executions = Vec::with_capacity(runs_planned as usize);
    for repetition in 0..k {
        for strategy in strategies {
            let execution = |members: Vec<usize>| Execution {
                members,
                strategy: strategy.clone(),
                repetition,
            };
            executions.extend(order.iter().map(|&m| execution(vec![m])));
            executions.push(execution(order.to_vec()));
        }
    }
    let ran = exec.execute_all(&executions)?;
    for (i, strategy) in strategies.iter().enumerate() {
        // Strategy i's executions of repetition r: from (r·S + i)·width.
        let of = |slot: usize| -> Vec<&Ran> {
            (0..k as usize)
                .filter_map(|r| ran[(r * strategies.len() + i) * width + slot].as_ref())
                .collect()
        };
        tally_strategy(setup, source, order, strategy, &of, &mut all);
    }
    let (cgroup, cgroup_note) = exec.cgroup();
    let runs = exec.runs();
    exec.finish()?;
    let csv = exec.csv().map(|p| p.display().to_string());
    drop(exec);
    let interrupted_by = crate::session::interruption();
    let suite_runs = all
        .members
        .iter()
        .filter(|m| m.position == 0)
        .map(|m| m.suite_runs_done)
        .sum();
    let left_behind = all.process.failures() > 0
        || all
            .members
            .iter()
            .any(|m| m.alone.count(Verdict::Orphan) + m.alone.count(Verdict::Leak) > 0);
    let clean = all.dependents.is_empty()
        && !all.members.iter().any(|m| m.broken)
        && !left_behind
        && interrupted_by.is_none();
    let bound = clean.then(|| {
        let rate = crate::stats::Rate::wilson(all.failing_suite_runs, suite_runs);
        format!(
            "{} failing runs in {} (95% upper bound {}%): no test order-dependent, none broken, \
             nothing left behind",
            all.failing_suite_runs,
            crate::text::plural(suite_runs, "suite run"),
            crate::stats::percent(rate.high)
        )
    });
    let runner = source.runner();
    Ok(SuiteReport {
        suite: source.name(),
        file: setup.source.label(),
        source: runner.map_or("suite".into(), |_| source.name()),
        order_note: runner.filter(|r| r.sorts()).map(|_| {
            "libtest runs the names it is given in its own sorted order (the order of its list), \
             not in the order given"
                .to_string()
        }),
        order_rule: setup.order.describe(),
        order: order
            .iter()
            .map(|&i| source.name_of(i).to_string())
            .collect(),
        repeat: k,
        strategies: strategies.iter().map(|s| s.name.clone()).collect(),
        members: all.members,
        order_dependent: all.dependents,
        warning: super::shares_nothing(source, order),
        runs,
        runs_planned,
        interrupted: interrupted_by.is_some(),
        interrupted_by,
        process: runner.map(|_| all.process),
        failing_suite_runs: all.failing_suite_runs,
        suite_runs,
        clean,
        bound,
        csv,
        cgroup,
        cgroup_note,
        kernel: crate::record::row::kernel(),
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// The tallies of every test alone and the whole order under `strategy`,
/// added to `all`: `of(pos)` gives the runs done of the test at `pos` of
/// `order` alone, `of(order.len())` those of the whole order (K each, fewer
/// when interrupted).
fn tally_strategy<'r>(
    setup: &Setup,
    source: &Source,
    order: &[usize],
    strategy: &Strategy,
    of: &dyn Fn(usize) -> Vec<&'r Ran>,
    all: &mut Tallies,
) {
    let k = setup.repeat;
    let suite_runs = of(order.len());
    for run in &suite_runs {
        let failed = run
            .tests
            .iter()
            .any(|t| t.as_ref().is_some_and(|o| o.verdict != Verdict::Pass));
        let process_failed = run.process.as_ref().is_some_and(|p| {
            all.process.add_outcome(p);
            p.verdict != Verdict::Pass
        });
        all.failing_suite_runs += u64::from(failed || process_failed);
    }
    for (pos, &m) in order.iter().enumerate() {
        let mut alone = Counts::default();
        for run in of(pos) {
            if let Some(Some(o)) = run.tests.first() {
                alone.add_outcome(o);
            }
        }
        let mut in_suite = Counts::default();
        for run in &suite_runs {
            if let Some(Some(o)) = run.tests.get(pos) {
                in_suite.add_outcome(o);
            }
        }
        let name = source.name_of(m).to_string();
        // A runner's test that leaves processes behind alone is judged so
        // alone; in a run of the whole list its leftovers are the test
        // process's, not its own, so it "passes" there: not a dependence.
        let leftovers = alone.count(Verdict::Orphan) + alone.count(Verdict::Leak);
        let dependence = if source.runner().is_some() && leftovers > 0 {
            None
        } else {
            Dependence::of(&alone, &in_suite)
        };
        if let Some(dependence) = dependence {
            let upto: Vec<&str> = order[..=pos].iter().map(|&i| source.name_of(i)).collect();
            all.dependents.push(OrderDependent {
                name: name.clone(),
                strategy: strategy.name.clone(),
                dependence,
                replay: setup.suite_command(&upto, strategy),
                bisect: setup.bisect_command(
                    &name,
                    strategy,
                    dependence == Dependence::PassesOnlyInSuite,
                ),
                command: source.runner().and_then(|r| r.command_line(&upto)),
            });
        }
        // Fails alone in every run and never passes in the suite either
        // (a test that passes only after another is order-dependent).
        let broken = dependence.is_none() && alone.runs() > 0 && alone.failures() == alone.runs();
        all.members.push(MemberReport {
            name,
            strategy: strategy.name.clone(),
            position: pos,
            repeat: k,
            suite_runs_done: suite_runs.len() as u64,
            alone_pass: alone.count(Verdict::Pass),
            alone_hang: alone.count(Verdict::Hang),
            alone_panic: alone.count(Verdict::Panic),
            suite_pass: in_suite.count(Verdict::Pass),
            suite_hang: in_suite.count(Verdict::Hang),
            suite_panic: in_suite.count(Verdict::Panic),
            alone,
            suite: in_suite,
            order_dependent: dependence,
            broken,
        });
    }
}

/// The line `lab suite` writes to standard error as it starts: the tests,
/// strategies, K, the supervisors at once and the runs asked.
fn header(
    setup: &Setup,
    source: &Source,
    tests: usize,
    strategies: &[Strategy],
    planned: u64,
) -> String {
    let what = if source.runner().is_some() {
        crate::text::plural(tests as u64, "test")
    } else {
        let names: Vec<&str> = strategies.iter().map(|s| s.name.as_str()).collect();
        format!(
            "{}  strategies {}",
            crate::text::plural(tests as u64, "member"),
            names.join(", ")
        )
    };
    format!(
        "lab suite {}  {what}  repeat {}  -j {}  {}",
        setup.source.label(),
        setup.repeat,
        setup.jobs.max(1),
        crate::text::plural(planned, "run")
    )
}
