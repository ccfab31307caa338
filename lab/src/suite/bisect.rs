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
//!
//! The first SIGINT or SIGTERM stops the starting of runs (those in flight
//! finish): the report then says what is known so far, the candidates
//! still in play and the smallest set known to make the victim fail, and
//! the command exits 128 + the signal.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::executor::{Execution, Executor};
use super::search::{self, Probe};
use super::{Setup, Source};
use crate::error::{Exit, LabError};
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
    /// Whether the bisection came to its end (false when interrupted
    /// before).
    pub finished: bool,
    /// When interrupted before the end: the predecessors still in play,
    /// in order (the smallest set after which the victim was seen to fail,
    /// with `--opposite` to pass, or the whole list); empty otherwise.
    pub in_play: Vec<String>,
    /// Whether the predecessors in play are known to make the victim fail
    /// (with `--opposite`: pass) when run before it (then `replay` runs
    /// them).
    pub in_play_known: bool,
    /// The step an interruption cut short, with the runs it had done.
    pub unfinished: Option<Step>,
    /// A Ctrl-C (SIGINT) or a SIGTERM stopped the command: no run started
    /// after it, those in flight finished.
    pub interrupted: bool,
    /// The signal that stopped it (`INT`, `TERM`); absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<crate::signal::Sig>,
}

impl BisectReport {
    /// The exit status: 128 + the signal when interrupted (130 after
    /// Ctrl-C, 143 after SIGTERM), else 0 when the set was found, else 1.
    pub fn exit(&self) -> Exit {
        match self.interrupted_by {
            Some(sig) => Exit::Interrupted(sig),
            None => Exit::clean_if(self.found),
        }
    }

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
        // The check an interruption cut short, if one was: the last thing run.
        let cut = !self.finished && self.steps.is_empty() && self.unfinished.is_none();
        let cut_mark = |check: bool| if check { " (not finished)" } else { "" };
        let _ = writeln!(
            s,
            "  alone: {}{}",
            tally(&self.alone),
            cut_mark(cut && self.after_all.runs() == 0 && self.alone.runs() < self.repeat)
        );
        if self.after_all.runs() > 0 {
            let _ = writeln!(
                s,
                "  after the whole list ({}): {}{}",
                crate::text::plural(
                    self.predecessors.len() as u64,
                    if runner { "test" } else { "member" }
                ),
                tally(&self.after_all),
                cut_mark(cut)
            );
        }
        let unfinished = self.unfinished.iter();
        for (i, step) in self.steps.iter().chain(unfinished).enumerate() {
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
                if i >= self.steps.len() {
                    "not finished"
                } else if step.kept {
                    "kept"
                } else {
                    "dropped"
                },
                verdicts.join(", "),
                step.runs
            );
        }
        let _ = writeln!(s, "{}", self.message);
        if let (true, Some(sig)) = (self.finished, self.interrupted_by) {
            let _ = writeln!(
                s,
                "interrupted ({}) after {}, once the bisection had finished",
                crate::error::Exit::interruption_name(sig),
                crate::text::plural(self.runs, "run")
            );
        }
        if !self.finished {
            let n = self.predecessors.len() as u64;
            let _ = writeln!(
                s,
                "still in play: {} ({} of {}){}",
                self.in_play.join(" "),
                self.in_play.len(),
                crate::text::plural(n, "predecessor"),
                match (self.in_play_known, self.opposite) {
                    (true, false) => ": run before the victim, they made it fail",
                    (true, true) => ": run before the victim, they made it pass",
                    (false, _) => ": none yet seen to change its verdict",
                }
            );
        }
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

/// Why a bisection stopped before its end.
enum Stop {
    /// The first SIGINT or SIGTERM: no run starts after it.
    Interrupted,
    /// The lab could not go on.
    Failed(LabError),
}

impl From<LabError> for Stop {
    fn from(e: LabError) -> Stop {
        Stop::Failed(e)
    }
}

/// What up to K runs of the victim after a set showed.
struct Probed {
    /// The victim's verdicts.
    tally: Counts,
    /// The outcome looked for showed in some run.
    shown: bool,
    /// An interruption stopped the runs before the outcome showed or K
    /// runs were done: no conclusion.
    cut: bool,
}

/// The bisection in progress.
struct Bisection<'a> {
    exec: &'a Executor<'a>,
    source: &'a Source,
    args: &'a BisectArgs,
    repeat: u64,
    jobs: u64,
    victim: usize,
    /// The victim alone, and after the whole list of its predecessors.
    alone: Counts,
    after_all: Counts,
    steps: Vec<Step>,
    /// The step an interruption cut short.
    unfinished: Option<Step>,
    /// The smallest set of predecessors seen to make the victim show the
    /// outcome so far (the whole list once the check showed it).
    best: Option<Vec<usize>>,
}

impl Bisection<'_> {
    /// The outcome the bisection looks for: the victim failed (with
    /// `--opposite`: passed).
    fn wanted(&self, o: &Outcome) -> bool {
        (o.verdict == Verdict::Pass) == self.args.opposite
    }

    /// Run `before` then the victim, up to `runs` times in waves of `jobs`
    /// supervisors, until a wave in which the wanted outcome shows, or an
    /// interruption stops the starting of runs.
    fn probe(&self, before: &[usize], runs: u64) -> Result<Probed, LabError> {
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
            let mut cut = false;
            for ran in self.exec.execute_all(&wave)? {
                // None: not run (interrupted); no tests' last: the victim
                // did not run (a test before it hung): no evidence of it.
                let Some(ran) = ran else {
                    cut = true;
                    continue;
                };
                if let Some(Some(o)) = ran.tests.last() {
                    tally.add_outcome(o);
                    shown |= self.wanted(o);
                }
            }
            // A run that showed it is conclusive, interrupted or not.
            if shown || cut || (crate::session::interrupted() && r < runs) {
                return Ok(Probed {
                    tally,
                    shown,
                    cut: !shown,
                });
            }
        }
        Ok(Probed {
            tally,
            shown: false,
            cut: false,
        })
    }

    /// What the victim showed after `subset` (up to K runs), recorded as a
    /// step; `subset` holds indexes into the predecessors `preds`.
    fn test(&mut self, preds: &[usize], subset: &[usize]) -> Result<Probe, Stop> {
        let before: Vec<usize> = subset.iter().map(|&i| preds[i]).collect();
        let Probed { tally, shown, cut } = self.probe(&before, self.repeat)?;
        let step = Step {
            before: self.names(&before),
            runs: tally.runs(),
            kept: shown,
            verdicts: tally.verdicts().clone(),
        };
        if cut {
            self.unfinished = Some(step);
            return Err(Stop::Interrupted);
        }
        self.steps.push(step);
        if shown {
            self.best = Some(before);
        }
        let quiet = tally.runs() - u64::from(shown);
        Ok(Probe { shown, quiet })
    }

    fn names(&self, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&i| self.source.name_of(i).to_string())
            .collect()
    }

    /// Check the victim alone and after the whole list of `predecessors`
    /// (the tallies kept), then search them: what was found, in a
    /// sentence, and the set found.
    fn conclude(
        &mut self,
        setup: &Setup,
        predecessors: &[usize],
    ) -> Result<(String, Option<Vec<usize>>), Stop> {
        let args = self.args;
        let (fails, passes) = if args.opposite {
            ("passes", "fails")
        } else {
            ("fails", "passes")
        };
        let alone = self.probe(&[], self.repeat)?;
        self.alone = alone.tally;
        if alone.shown {
            return Ok((
                format!(
                    "the victim {fails} alone ({} of {} runs): it does not depend on what runs \
                     before it; nothing to bisect",
                    if args.opposite {
                        self.alone.count(Verdict::Pass)
                    } else {
                        self.alone.failures()
                    },
                    self.alone.runs()
                ),
                None,
            ));
        }
        if alone.cut {
            return Err(Stop::Interrupted);
        }
        if predecessors.is_empty() {
            return Ok((
                format!(
                    "the victim runs first in this order ({}): nothing runs before it; choose \
                     another order (--reverse, --seed N, --members)",
                    setup.order.describe()
                ),
                None,
            ));
        }
        // The search's starting point: a flaky cause can miss K runs in a
        // row (one that shows in half the runs misses 5 in 1 of 32), so
        // the whole list gets up to WHOLE_LIST_ROUNDS x K runs; a cause
        // that shows costs no more.
        let all = self.probe(predecessors, WHOLE_LIST_ROUNDS * self.repeat)?;
        self.after_all = all.tally;
        if all.cut {
            return Err(Stop::Interrupted);
        }
        if !all.shown {
            return Ok((
                format!(
                    "the victim {passes} after the whole list of its predecessors ({}) in {n} of \
                     {n} runs: nothing before it made it {} (a flaky cause may need more runs: \
                     --repeat)",
                    predecessors.len(),
                    if args.opposite { "pass" } else { "fail" },
                    n = self.after_all.runs(),
                ),
                None,
            ));
        }
        // A cause the whole list showed only beyond K runs would be missed
        // by steps of K runs, as the check's first K missed it: each step
        // gets as many runs as the check could take.
        let mut raised = String::new();
        if self.after_all.runs() > self.repeat {
            raised = format!(
                " (after the whole list it showed only in run {} of up to {}: each step ran up to \
                 {} times, not {})",
                self.after_all.runs(),
                WHOLE_LIST_ROUNDS * self.repeat,
                WHOLE_LIST_ROUNDS * self.repeat,
                self.repeat
            );
            self.repeat *= WHOLE_LIST_ROUNDS;
        }
        self.best = Some(predecessors.to_vec());
        let set = search::find(predecessors.len(), &mut |subset: &[usize]| {
            self.test(predecessors, subset)
        })?;
        let minimal: Vec<usize> = set.iter().map(|&i| predecessors[i]).collect();
        let msg = format!(
            "{} the victim {}: {}",
            match (minimal.len(), self.source.runner().is_some()) {
                (1, false) => "one member makes",
                (1, true) => "one test makes",
                (_, false) => "these members, run together, make",
                (_, true) => "these tests, run together, make",
            },
            if args.opposite { "pass" } else { "fail" },
            self.names(&minimal).join(" then ")
        );
        Ok((msg + &raised, Some(minimal)))
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
/// which it still fails (with `args.opposite`: still passes). Its header
/// goes to standard error once the first SIGINT or SIGTERM stops the
/// starting of runs instead of ending the lab: the report then says what
/// is known so far ([`BisectReport::interrupted_by`]).
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
    // Before anything is made (a runner's results directory): a lab whose
    // supervisors cannot judge by this /proc is refused and leaves nothing.
    crate::session::check_proc(&setup.exe)?;
    crate::session::stop_on_interrupt();
    let exec = Executor::new(&source, setup)?;
    crate::output::write_err(format_args!("{}\n", header(setup, &source, args)));
    let mut b = Bisection {
        exec: &exec,
        source: &source,
        args,
        repeat: setup.repeat,
        jobs: setup.jobs.max(1) as u64,
        victim,
        alone: Counts::default(),
        after_all: Counts::default(),
        steps: Vec::new(),
        unfinished: None,
        best: None,
    };
    let concluded = b.conclude(setup, &predecessors);
    let runs = exec.runs();
    let interrupted_by = crate::session::interruption();
    let (message, found, finished) = match concluded {
        Ok((message, found)) => (message, found, true),
        Err(Stop::Failed(e)) => return Err(e),
        Err(Stop::Interrupted) => (
            format!(
                "interrupted ({}) after {}: not finished",
                interrupted_by.map_or("?", crate::error::Exit::interruption_name),
                crate::text::plural(runs, "run")
            ),
            None,
            false,
        ),
    };
    let best = if finished {
        found.clone()
    } else {
        b.best.clone()
    };
    let in_play = match (finished, &b.best) {
        (true, _) => Vec::new(),
        (false, Some(best)) => b.names(best),
        (false, None) => b.names(&predecessors),
    };
    let polluters = found.as_ref().map(|m| b.names(m)).unwrap_or_default();
    // A search whose steps ran more than --repeat times (the cause showed
    // only beyond K runs of the whole list) replays with as many.
    let replay_setup = Setup {
        repeat: b.repeat,
        ..setup.clone()
    };
    let (replay, command) = replays(&replay_setup, &source, args, best.map(|m| b.names(&m)));
    let (steps, unfinished) = (std::mem::take(&mut b.steps), b.unfinished.take());
    let (alone, after_all) = (b.alone.clone(), b.after_all.clone());
    let in_play_known = !finished && b.best.is_some();
    let (cgroup, _) = exec.cgroup();
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
        finished,
        in_play,
        in_play_known,
        unfinished,
        interrupted: interrupted_by.is_some(),
        interrupted_by,
    })
}

/// The line `lab bisect` writes to standard error as it starts: the
/// source, the victim, the strategy (a suite file's), K and the
/// supervisors at once.
fn header(setup: &Setup, source: &Source, args: &BisectArgs) -> String {
    let strategy = match source {
        Source::Suite(_) => format!("  strategy {}", args.strategy.name),
        Source::Runner(_) => String::new(),
    };
    format!(
        "lab bisect {}  victim {}{strategy}  repeat {}  -j {}{}",
        setup.source.label(),
        args.victim,
        setup.repeat,
        setup.jobs.max(1),
        if args.opposite { "  (opposite)" } else { "" }
    )
}
