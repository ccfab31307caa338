//! `lab bisect`: the smallest set of members that, run before a victim in
//! one supervisor, make it fail (or, with `--opposite`, make it pass).
//!
//! It first checks that the victim passes alone and fails after the whole
//! list of its predecessors (in the suite's order), and says so plainly when
//! it does not. Then it reduces the predecessors with delta debugging
//! (ddmin, Zeller and Hildebrandt 2002): test halves, then finer chunks and
//! their complements, keeping any subset after which the victim still
//! fails, until removing any one member makes it pass (a 1-minimal set: two
//! polluters that must both run are both kept). Subsets keep the suite's
//! relative order, and a subset is never run twice.
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
use super::{Setup, Suite};
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
    /// The suite file as given.
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
    /// What was found, or why nothing was, in a sentence.
    pub message: String,
    /// Whether trials ran in cgroups of their own.
    pub cgroup: bool,
}

impl BisectReport {
    /// The checks, the steps and the result, as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "lab bisect {}  victim {}  strategy {}  repeat {}{}",
            self.suite,
            self.victim,
            self.strategy,
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
                "  after the whole list ({} members): {}",
                self.predecessors.len(),
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
        let _ = writeln!(s, "runs: {}", self.runs);
        s
    }
}

/// The bisection in progress.
struct Bisection<'a> {
    exec: &'a Executor<'a>,
    suite: &'a Suite,
    args: &'a BisectArgs,
    repeat: u64,
    jobs: u64,
    victim: usize,
    tried: BTreeMap<Vec<usize>, bool>,
    steps: Vec<Step>,
}

impl Bisection<'_> {
    /// The outcome the bisection looks for: the victim failed (with
    /// `--opposite`: passed).
    fn wanted(&self, o: &Outcome) -> bool {
        (o.verdict == Verdict::Pass) == self.args.opposite
    }

    /// Run `before` then the victim, up to K times in waves of `jobs`
    /// supervisors, until a wave in which the wanted outcome shows; the
    /// victim's tally and whether it showed.
    fn probe(&self, before: &[usize]) -> Result<(Counts, bool), LabError> {
        let mut order = before.to_vec();
        order.push(self.victim);
        let mut tally = Counts::default();
        let mut r = 0;
        while r < self.repeat {
            let wave: Vec<Execution> = (r..self.repeat.min(r + self.jobs))
                .map(|rep| Execution {
                    members: order.clone(),
                    strategy: self.args.strategy.clone(),
                    repetition: rep,
                })
                .collect();
            r += wave.len() as u64;
            let mut shown = false;
            for outcomes in self.exec.execute_all(&wave)? {
                if let Some(o) = outcomes.last() {
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

    /// Whether the victim shows the wanted outcome after `subset` (once per
    /// subset; recorded as a step).
    fn test(&mut self, subset: &[usize]) -> Result<bool, LabError> {
        if let Some(&known) = self.tried.get(subset) {
            return Ok(known);
        }
        let (tally, kept) = self.probe(subset)?;
        self.steps.push(Step {
            before: self.names(subset),
            runs: tally.runs(),
            kept,
            verdicts: tally.verdicts().clone(),
        });
        self.tried.insert(subset.to_vec(), kept);
        Ok(kept)
    }

    fn names(&self, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&i| self.suite.members[i].name.clone())
            .collect()
    }
}

/// ddmin: a 1-minimal subset of `c` (for which `test` is known to hold)
/// for which `test` holds: removing any one element of it makes `test`
/// fail. Subsets keep the order of `c`. Tests halves first, then finer
/// chunks and their complements, doubling the granularity when nothing
/// smaller holds.
///
/// # Errors
/// The first error of `test`.
fn ddmin<E>(
    mut c: Vec<usize>,
    test: &mut impl FnMut(&[usize]) -> Result<bool, E>,
) -> Result<Vec<usize>, E> {
    let mut n = 2;
    while c.len() >= 2 {
        let chunks = split(&c, n);
        let mut reduced = None;
        for chunk in &chunks {
            if test(chunk)? {
                reduced = Some((chunk.clone(), 2));
                break;
            }
        }
        // With two chunks, each complement is the other chunk.
        if reduced.is_none() && chunks.len() > 2 {
            for i in 0..chunks.len() {
                let complement: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .flat_map(|(_, ch)| ch.iter().copied())
                    .collect();
                if test(&complement)? {
                    reduced = Some((complement, (n - 1).max(2)));
                    break;
                }
            }
        }
        match reduced {
            Some((smaller, granularity)) => {
                c = smaller;
                n = granularity;
            }
            None if n >= c.len() => break,
            None => n = (2 * n).min(c.len()),
        }
    }
    Ok(c)
}

/// `c` cut into `n` contiguous chunks of nearly equal length (the first
/// ones longer), none empty.
fn split(c: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, c.len().max(1));
    let (base, extra) = (c.len() / n, c.len() % n);
    let mut chunks = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        chunks.push(c[at..at + len].to_vec());
        at += len;
    }
    chunks.retain(|ch| !ch.is_empty());
    chunks
}

/// The index of the victim `args.victim` in `suite`.
///
/// # Errors
/// [`LabError::Input`] for a name that is no member, or a victim that runs
/// a command at its root (see [`super::Member::root_command`]): nothing run
/// before it can change its verdict, so there is nothing to bisect.
fn victim_of(setup: &Setup, suite: &Suite, args: &BisectArgs) -> Result<usize, LabError> {
    let victim = suite.index(&args.victim).ok_or_else(|| {
        LabError::Input(format!(
            "{}: no member `{}` (members: {})",
            setup.suite,
            args.victim,
            suite.names()
        ))
    })?;
    if let Some(command) = suite.members[victim].root_command() {
        return Err(LabError::Input(format!(
            "{}: the victim `{}` runs a command at its root (`{command}`): a fresh exec'd \
             process that inherits nothing from the test process, so nothing run before it \
             can change its verdict and there is nothing to bisect; choose a victim whose \
             root is a copy of the test process (no `command` at the root)",
            setup.suite, args.victim
        )));
    }
    Ok(victim)
}

/// `lab bisect`: check the victim alone and after the whole list of its
/// predecessors, then reduce the predecessors to a 1-minimal set after
/// which it still fails (with `args.opposite`: still passes).
///
/// # Errors
/// [`LabError::Input`] for a bad suite file, order or victim name, or a
/// victim that runs a command at its root;
/// [`LabError::Lab`] when supervisors cannot be started.
pub fn bisect(setup: &Setup, args: &BisectArgs) -> Result<BisectReport, LabError> {
    let suite = Suite::load(&setup.suite)?;
    let order = setup.order.resolve(&suite)?;
    let victim = victim_of(setup, &suite, args)?;
    let Some(at) = order.iter().position(|&m| m == victim) else {
        return Err(LabError::Input(format!(
            "the victim `{}` is not in the order given (--members)",
            args.victim
        )));
    };
    let predecessors = order[..at].to_vec();
    let exec = Executor::new(&suite, setup);
    let mut b = Bisection {
        exec: &exec,
        suite: &suite,
        args,
        repeat: setup.repeat,
        jobs: setup.jobs.max(1) as u64,
        victim,
        tried: BTreeMap::new(),
        steps: Vec::new(),
    };
    let (fails, passes) = if args.opposite {
        ("passes", "fails")
    } else {
        ("fails", "passes")
    };
    let (alone, shown_alone) = b.probe(&[])?;
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
        let (tally, shown) = b.probe(&predecessors)?;
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
            b.tried.insert(predecessors.clone(), true);
            let minimal = ddmin(predecessors.clone(), &mut |subset: &[usize]| b.test(subset))?;
            let names = b.names(&minimal);
            let msg = format!(
                "{} the victim {}: {}",
                if minimal.len() == 1 {
                    "one member makes"
                } else {
                    "these members, run together, make"
                },
                if args.opposite { "pass" } else { "fail" },
                names.join(" then ")
            );
            found = Some(minimal);
            msg
        }
    };
    let polluters = found.as_ref().map(|m| b.names(m)).unwrap_or_default();
    let replay = found.as_ref().map(|m| {
        let mut names = b.names(m);
        names.push(args.victim.clone());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        setup.suite_command(&refs, &args.strategy)
    });
    let steps = std::mem::take(&mut b.steps);
    let (cgroup, _) = exec.cgroup();
    let runs = exec.runs();
    drop(exec);
    Ok(BisectReport {
        suite: suite.name.clone(),
        file: setup.suite.clone(),
        victim: args.victim.clone(),
        strategy: args.strategy.name.clone(),
        repeat: setup.repeat,
        opposite: args.opposite,
        predecessors: predecessors
            .iter()
            .map(|&i| suite.members[i].name.clone())
            .collect(),
        alone,
        after_all,
        found: found.is_some(),
        polluters,
        runs,
        steps,
        replay,
        message,
        cgroup,
    })
}

#[cfg(test)]
mod tests {
    use super::{ddmin, split};
    use std::collections::BTreeSet;

    /// ddmin over 0..n with `holds`; the result and the distinct subsets
    /// tested.
    fn reduce(n: usize, holds: impl Fn(&[usize]) -> bool) -> (Vec<usize>, usize) {
        let mut tested = BTreeSet::new();
        let result = ddmin::<()>((0..n).collect(), &mut |s| {
            tested.insert(s.to_vec());
            Ok(holds(s))
        })
        .unwrap();
        (result, tested.len())
    }

    #[test]
    fn one_polluter_is_found_in_a_logarithmic_number_of_tests() {
        for n in [2, 5, 16, 64, 100] {
            for p in [0, n / 3, n - 1] {
                let (found, tests) = reduce(n, |s| s.contains(&p));
                assert_eq!(found, [p], "n {n} p {p}");
                let log = (n as f64).log2().ceil() as usize;
                assert!(tests <= 2 * log, "n {n} p {p}: {tests} tests");
            }
        }
    }

    #[test]
    fn polluters_that_must_all_run_are_all_kept() {
        let (found, _) = reduce(6, |s| s.contains(&1) && s.contains(&4));
        assert_eq!(found, [1, 4]);
        let (found, _) = reduce(9, |s| [0, 4, 8].iter().all(|p| s.contains(p)));
        assert_eq!(found, [0, 4, 8]);
        // Either of two suffices: one of them, not both.
        let (found, _) = reduce(8, |s| s.contains(&2) || s.contains(&6));
        assert!(found == [2] || found == [6], "{found:?}");
    }

    #[test]
    fn chunks_cover_the_list_in_order() {
        assert_eq!(split(&[1, 2, 3, 4, 5], 2), [vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(
            split(&[1, 2, 3, 4, 5], 4),
            [vec![1, 2], vec![3], vec![4], vec![5]]
        );
        assert_eq!(split(&[1, 2], 5), [vec![1], vec![2]]);
        assert_eq!(split(&[7], 2), [vec![7]]);
    }
}
