//! `lab bisect`: the smallest set of tests (suite members, or a runner's
//! tests) that, run before a victim in one process, make it fail (or, with
//! `--opposite`, make it pass).
//!
//! It first checks that the victim passes alone and fails after the whole
//! list of its predecessors (in the suite's order; for libtest, the tests
//! that sort before it), and says so plainly when it does not. Then it
//! searches the predecessors ([`super::search`]): a noisy binary search for
//! one polluter, every run's evidence kept per candidate, and delta
//! debugging (ddmin) when no single one does it (two polluters that must
//! both run are both kept). Sets keep the suite's relative order.
//!
//! Each step runs K times (`--repeat`) so that a polluter that fails the
//! victim only in some runs is not missed: the runs go in waves of `jobs`
//! fresh supervisors, and a step stops after the first wave in which the
//! victim failed (a failure needs no confirmation; a pass needs all K). A
//! hang counts as a failure and costs its trial's deadline, no more.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::executor::{Execution, Executor};
use super::search::{self, Probe};
use super::{Setup, Source};
use crate::error::LabError;
use crate::record::Counts;
use crate::strategy::Strategy;
use crate::verdict::{Outcome, Verdict};

/// What `lab bisect` is asked to find.
#[derive(Clone, Debug)]
pub struct BisectArgs {
    /// The member whose verdict depends on what ran before it.
    pub victim: String,
    /// The strategy of every trial.
    pub strategy: Strategy,
    /// Look for the reverse dependency: a victim that fails alone and passes
    /// only because something ran before it.
    pub opposite: bool,
}

/// One subset of predecessors tried.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The members run before the victim, in order.
    pub before: Vec<String>,
    /// Runs of this step.
    pub runs: u64,
    /// Whether the victim failed in some run (with `--opposite`: passed in
    /// some run): whether this subset is kept.
    pub kept: bool,
    /// The victim's verdicts in this step.
    pub verdicts: BTreeMap<String, u64>,
}

/// What `lab bisect` reports (`--format json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct BisectReport {
    /// The suite's name.
    pub suite: String,
    /// The suite file or the runner, as given.
    pub file: String,
    /// The victim.
    pub victim: String,
    /// The strategy.
    pub strategy: String,
    /// K: the most runs of one step.
    pub repeat: u64,
    /// Whether the reverse dependency was looked for.
    pub opposite: bool,
    /// The victim's predecessors in the suite's order: the whole list.
    pub predecessors: Vec<String>,
    /// The victim alone.
    pub alone: Counts,
    /// The victim after the whole list.
    pub after_all: Counts,
    /// Whether a set was found.
    pub found: bool,
    /// The smallest set found, in the order it runs before the victim: the
    /// members that make it fail (with `--opposite`: that it needs to
    /// pass). Empty when nothing was found.
    pub polluters: Vec<String>,
    /// Executions run, the checks included (each one fresh supervisor).
    pub runs: u64,
    /// Every subset tried after the checks, in order.
    pub steps: Vec<Step>,
    /// `lab suite ... --members POLLUTERS,VICTIM ...`: the minimal order.
    pub replay: Option<String>,
    /// For a runner: the test process's own command that runs the minimal
    /// order (each word quoted for a shell).
    pub command: Option<String>,
    /// What was found, or why nothing was, in a sentence.
    pub message: String,
    /// For a runner: the `trials.csv` where every run of its test process
    /// is recorded; `null` otherwise.
    pub csv: Option<String>,
    /// Whether trials ran in cgroups of their own.
    pub cgroup: bool,
}

impl BisectReport {
    /// The checks, the steps and the result, as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let runner = self.command.is_some() || self.suite == "pytest";
        let strategy = if runner {
            String::new()
        } else {
            format!("  strategy {}", self.strategy)
        };
        let _ = writeln!(
            s,
            "lab bisect {}  victim {}{strategy}  repeat {}{}",
            if runner { &self.file } else { &self.suite },
            self.victim,
            self.repeat,
            if self.opposite { "  (opposite)" } else { "" }
        );
        let tally = |t: &Counts| {
            let mut line = format!("pass {}/{}", t.count(Verdict::Pass), t.runs());
            let f = t.render_failures();
            if !f.is_empty() {
                let _ = write!(line, ", {f}");
            }
            line
        };
        let _ = writeln!(s, "  alone: {}", tally(&self.alone));
        if self.after_all.runs() > 0 {
            let _ = writeln!(
                s,
                "  after the whole list ({}): {}",
                crate::text::plural(
                    self.predecessors.len() as u64,
                    if runner { "test" } else { "member" }
                ),
                tally(&self.after_all)
            );
        }
        for (i, step) in self.steps.iter().enumerate() {
            let verdicts: Vec<String> = step
                .verdicts
                .iter()
                .map(|(v, n)| format!("{v} x{n}"))
                .collect();
            let _ = writeln!(
                s,
                "  step {}: before it {}: {} ({}; {} runs)",
                i + 1,
                if step.before.is_empty() {
                    "nothing".to_string()
                } else {
                    step.before.join(" ")
                },
                if step.kept { "kept" } else { "dropped" },
                verdicts.join(", "),
                step.runs
            );
        }
        let _ = writeln!(s, "{}", self.message);
        if let Some(r) = &self.replay {
            let _ = writeln!(s, "replay: {r}");
        }
        if let Some(c) = &self.command {
            let _ = writeln!(s, "the test process alone: {c}");
        }
        let _ = writeln!(s, "runs: {}", self.runs);
        if let Some(csv) = &self.csv {
            let _ = writeln!(s, "runs of the test process: {csv}");
        }
        s
    }
}

/// The bisection in progress.
struct Bisection<'a> {
    exec: &'a Executor<'a>,
    source: &'a Source,
    args: &'a BisectArgs,
    repeat: u64,
    jobs: u64,
    victim: usize,
    steps: Vec<Step>,
}

impl Bisection<'_> {
    /// The outcome the bisection looks for: the victim failed (with
    /// `--opposite`: passed).
    fn wanted(&self, o: &Outcome) -> bool {
        (o.verdict == Verdict::Pass) == self.args.opposite
    }

    /// Run `before` then the victim, up to `runs` times in waves of `jobs`
    /// supervisors, until a wave in which the wanted outcome shows; the
    /// victim's tally and whether it showed.
    fn probe(&self, before: &[usize], runs: u64) -> Result<(Counts, bool), LabError> {
        let mut order = before.to_vec();
        order.push(self.victim);
        let mut tally = Counts::default();
        let mut r = 0;
        while r < runs {
            let wave: Vec<Execution> = (r..runs.min(r + self.jobs))
                .map(|rep| Execution {
                    members: order.clone(),
                    strategy: self.args.strategy.clone(),
                    repetition: rep,
                })
                .collect();
            r += wave.len() as u64;
            let mut shown = false;
            for ran in self.exec.execute_all(&wave)? {
                // None: the victim did not run (a test before it hung):
                // no evidence of it.
                if let Some(Some(o)) = ran.tests.last() {
                    tally.add_outcome(o);
                    shown |= self.wanted(o);
                }
            }
            if shown {
                return Ok((tally, true));
            }
        }
        Ok((tally, false))
    }

    /// What the victim showed after `subset` (up to K runs), recorded as a
    /// step; `subset` holds indexes into the predecessors `preds`.
    fn test(&mut self, preds: &[usize], subset: &[usize]) -> Result<Probe, LabError> {
        let before: Vec<usize> = subset.iter().map(|&i| preds[i]).collect();
        let (tally, kept) = self.probe(&before, self.repeat)?;
        let quiet = tally.runs() - u64::from(kept);
        self.steps.push(Step {
            before: self.names(&before),
            runs: tally.runs(),
            kept,
            verdicts: tally.verdicts().clone(),
        });
        Ok(Probe { shown: kept, quiet })
    }

    fn names(&self, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&i| self.source.name_of(i).to_string())
            .collect()
    }
}

/// The index of the victim `args.victim` in `source`.
///
/// # Errors
/// [`LabError::Input`] for a name that is no test, or a victim that runs
/// a command at its root (see [`super::Member::root_command`]): nothing run
/// before it can change its verdict, so there is nothing to bisect.
fn victim_of(setup: &Setup, source: &Source, args: &BisectArgs) -> Result<usize, LabError> {
    let victim = source
        .index(&args.victim)
        .ok_or_else(|| super::no_test(source, &args.victim))?;
    if let Source::Suite(suite) = source {
        if let Some(command) = suite.members[victim].root_command() {
            return Err(LabError::Input(format!(
                "{}: the victim `{}` runs a command at its root (`{command}`): a fresh exec'd \
                 process that inherits nothing from the test process, so nothing run before it \
                 can change its verdict and there is nothing to bisect; choose a victim whose \
                 root is a copy of the test process (no `command` at the root)",
                setup.source.label(),
                args.victim
            )));
        }
    }
    Ok(victim)
}

/// The `lab suite` command that replays `polluters` then the victim, and
/// for a runner the test process's own command that does.
fn replays(
    setup: &Setup,
    source: &Source,
    args: &BisectArgs,
    polluters: Option<Vec<String>>,
) -> (Option<String>, Option<String>) {
    let Some(mut names) = polluters else {
        return (None, None);
    };
    names.push(args.victim.clone());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    (
        Some(setup.suite_command(&refs, &args.strategy)),
        source.runner().and_then(|run| run.command_line(&refs)),
    )
}

/// How many times `--repeat` runs of the whole list of the victim's
/// predecessors [`bisect`] makes at most before it concludes that nothing
/// before the victim makes it fail: 3 (a cause that shows in half the
/// runs is then missed with `--repeat 5` once in 32,768 bisections, not
/// once in 32).
pub const WHOLE_LIST_ROUNDS: u64 = 3;

/// `lab bisect`: check the victim alone and after the whole list of its
/// predecessors, then reduce the predecessors to a 1-minimal set after
/// which it still fails (with `args.opposite`: still passes).
///
/// # Errors
/// [`LabError::Input`] for a bad suite file, order or victim name, or a
/// victim that runs a command at its root;
/// [`LabError::Lab`] when supervisors cannot be started.
pub fn bisect(setup: &Setup, args: &BisectArgs) -> Result<BisectReport, LabError> {
    let source = setup.source.load(setup.deadline)?;
    let order = setup.order.resolve(&source)?;
    let victim = victim_of(setup, &source, args)?;
    // A runner's test processes: their process events flow while the lab
    // listens (the lineage of what they leave behind).
    let _events = source
        .runner()
        .and_then(|_| crate::trial::keep_events_flowing());
    let Some(at) = order.iter().position(|&m| m == victim) else {
        return Err(LabError::Input(format!(
            "the victim `{}` is not in the order given (--members)",
            args.victim
        )));
    };
    let predecessors = order[..at].to_vec();
    let exec = Executor::new(&source, setup)?;
    let mut b = Bisection {
        exec: &exec,
        source: &source,
        args,
        repeat: setup.repeat,
        jobs: setup.jobs.max(1) as u64,
        victim,
        steps: Vec::new(),
    };
    let (fails, passes) = if args.opposite {
        ("passes", "fails")
    } else {
        ("fails", "passes")
    };
    let (alone, shown_alone) = b.probe(&[], b.repeat)?;
    let mut after_all = Counts::default();
    let mut found = None;
    let message = if shown_alone {
        format!(
            "the victim {fails} alone ({} of {} runs): it does not depend on what runs before it; \
             nothing to bisect",
            if args.opposite {
                alone.count(Verdict::Pass)
            } else {
                alone.failures()
            },
            alone.runs()
        )
    } else if predecessors.is_empty() {
        format!(
            "the victim runs first in this order ({}): nothing runs before it; choose another \
             order (--reverse, --seed N, --members)",
            setup.order.describe()
        )
    } else {
        // The search's starting point: a flaky cause can miss K runs in a
        // row (one that shows in half the runs misses 5 in 1 of 32), so
        // the whole list gets up to WHOLE_LIST_ROUNDS x K runs; a cause
        // that shows costs no more.
        let (tally, shown) = b.probe(&predecessors, WHOLE_LIST_ROUNDS * b.repeat)?;
        after_all = tally;
        if !shown {
            format!(
                "the victim {passes} after the whole list of its predecessors ({}) in {n} of {n} \
                 runs: nothing before it made it {} (a flaky cause may need more runs: --repeat)",
                predecessors.len(),
                if args.opposite { "pass" } else { "fail" },
                n = after_all.runs(),
            )
        } else {
            let set = search::find(predecessors.len(), &mut |subset: &[usize]| {
                b.test(&predecessors, subset)
            })?;
            let minimal: Vec<usize> = set.iter().map(|&i| predecessors[i]).collect();
            let names = b.names(&minimal);
            let msg = format!(
                "{} the victim {}: {}",
                match (minimal.len(), source.runner().is_some()) {
                    (1, false) => "one member makes",
                    (1, true) => "one test makes",
                    (_, false) => "these members, run together, make",
                    (_, true) => "these tests, run together, make",
                },
                if args.opposite { "pass" } else { "fail" },
                names.join(" then ")
            );
            found = Some(minimal);
            msg
        }
    };
    let polluters = found.as_ref().map(|m| b.names(m)).unwrap_or_default();
    let (replay, command) = replays(setup, &source, args, found.as_ref().map(|m| b.names(m)));
    let steps = std::mem::take(&mut b.steps);
    let (cgroup, _) = exec.cgroup();
    let runs = exec.runs();
    exec.finish()?;
    let csv = exec.csv().map(|p| p.display().to_string());
    drop(exec);
    Ok(BisectReport {
        suite: source.name(),
        file: setup.source.label(),
        victim: args.victim.clone(),
        strategy: args.strategy.name.clone(),
        repeat: setup.repeat,
        opposite: args.opposite,
        predecessors: predecessors
            .iter()
            .map(|&i| source.name_of(i).to_string())
            .collect(),
        alone,
        after_all,
        found: found.is_some(),
        polluters,
        runs,
        steps,
        replay,
        command,
        message,
        csv,
        cgroup,
    })
}
