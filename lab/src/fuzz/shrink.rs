//! Shrinking a failing case with proptest's own value tree: the case is
//! drawn again ([`generate::case_tree`]), and each step takes the tree's
//! next candidate (`simplify` after a failing candidate, `complicate`
//! after one that does not fail the same way, as proptest's runner does),
//! runs it as `--repeat K` real trials, and keeps it when one of them
//! fails the same way as the case it started from: the same
//! [`FailureClass`], verdict and signature set
//! ([`property::first_same_failure`]). A candidate that fails another way
//! (a hang that turns into an orphan) is another bug, and is not kept. A
//! candidate with more nodes than the smallest failing case so far is not
//! run and counts as not failing, so shrinking never grows the tree.
//! `--shrink-steps` bounds the candidates run.

use std::path::Path;

use proptest::strategy::ValueTree;

use super::generate::{self, Case};
use super::property::{self, FailureClass};
use super::{write_case, Lab, MinimalCase, Written};
use crate::error::LabError;
use crate::strategy::Strategy;
use crate::verdict::Outcome;

/// Where a shrink starts: the first failing case (lowest index) of one
/// failure class of the exploration.
pub struct FirstFailure<'a> {
    /// Its index in the run's cases.
    pub index: u64,
    /// Its file.
    pub written: &'a Written,
    /// Its failing trial (its class is the one the shrink keeps).
    pub outcome: &'a Outcome,
}

/// The outcome of a shrink, before it is written.
#[derive(Debug)]
pub struct Shrunk<T> {
    /// The smallest failing value found.
    pub minimal: T,
    /// Candidates run (steps taken).
    pub steps: u64,
    /// Candidates that failed and were kept.
    pub accepted: u64,
}

/// Drive `tree` (whose current value fails) to the smallest value that
/// `fails` still calls failing (the same way: that is `fails`'s to judge), running at most `max_steps` candidates;
/// `size` measures a value, and a candidate larger than the smallest so
/// far is not run. `fails` returns `None` to stop (a Ctrl-C).
///
/// # Errors
/// What `fails` returns.
pub fn minimize<T: Clone + std::fmt::Debug, E>(
    tree: &mut dyn ValueTree<Value = T>,
    max_steps: u64,
    size: impl Fn(&T) -> u64,
    mut fails: impl FnMut(&T, u64) -> Result<Option<bool>, E>,
) -> Result<Shrunk<T>, E> {
    let mut minimal = tree.current();
    let (mut steps, mut accepted) = (0u64, 0u64);
    // A bound on the walk itself, for candidates skipped without a trial.
    let mut walk = max_steps.saturating_mul(20).max(100);
    let mut more = tree.simplify();
    while more && steps < max_steps && walk > 0 {
        walk -= 1;
        let candidate = tree.current();
        let failed = if size(&candidate) > size(&minimal) {
            false
        } else {
            steps += 1;
            match fails(&candidate, steps)? {
                Some(f) => f,
                None => break,
            }
        };
        if failed {
            minimal = candidate;
            accepted += 1;
            more = tree.simplify();
        } else {
            more = tree.complicate();
        }
    }
    Ok(Shrunk {
        minimal,
        steps,
        accepted,
    })
}

/// Shrink the failing case `start` under `strategy`, keeping its failure
/// class: each candidate is written to `RUN/fuzz/shrink/` and run
/// `--repeat` times on the session, and kept when one of its trials fails
/// the same way as `start.outcome`; the minimal case and the first failing
/// one are written to `RUN/fuzz/minimal-STRATEGY-HASH.toml` and
/// `first-STRATEGY-HASH.toml` (`...-HASH-case-I.toml` when another class of
/// the run, which reached the same case, wrote that file already),
/// and the minimal one is copied into the regressions directory.
///
/// # Errors
/// [`LabError::Io`] when a file cannot be written or supervisors cannot be
/// started.
pub fn shrink(
    lab: &mut Lab<'_>,
    strategy: &Strategy,
    start: FirstFailure<'_>,
    run_dir: &Path,
) -> Result<MinimalCase, LabError> {
    let args = lab.args;
    let seed = args.seed;
    let class = FailureClass::of(start.outcome)
        .ok_or_else(|| LabError::Lab("a shrink must start from a failing trial".into()))?;
    let mut tree = generate::case_tree(seed, start.index).map_err(LabError::Lab)?;
    let dir = run_dir.join("fuzz");
    let shrink_dir = dir.join("shrink");
    let mut last: Option<(Written, Outcome)> = None;
    let mut failing_otherwise = 0u64;
    let header = super::seed_header(seed);
    let shrunk = minimize(
        &mut *tree,
        args.shrink_steps,
        Case::nodes,
        |c: &Case, step| -> Result<Option<bool>, LabError> {
            let Some(w) = write_case(c, seed, &header, |h| {
                shrink_dir.join(format!(
                    "{}-case-{}-step-{step}-{h}.toml",
                    strategy.name, start.index
                ))
            })?
            else {
                return Ok(Some(false));
            };
            let tag = format!("c{}.s{step}", start.index);
            let outcomes = lab.trials(strategy, &[&w], args.repeat, &|_| tag.clone())?;
            let outcomes = outcomes.into_iter().next().unwrap_or_default();
            if outcomes.len() < args.repeat as usize {
                return Ok(None);
            }
            match property::first_same_failure(&class, &outcomes) {
                Some(o) => {
                    last = Some((w, o.clone()));
                    Ok(Some(true))
                }
                None => {
                    if outcomes.iter().any(|o| property::fails(o.verdict)) {
                        failing_otherwise += 1;
                    }
                    Ok(Some(false))
                }
            }
        },
    )?;
    let minimal_o = match last {
        Some((_, o)) if shrunk.accepted > 0 => o,
        _ => start.outcome.clone(),
    };
    let nodes_before = start.written.nodes();
    let nodes_after = shrunk.minimal.nodes();
    let write = |kind: &str, case: &Case, note: &str| -> Result<Written, LabError> {
        let header = format!(
            "# lab fuzz: {kind} failing case under {strategy} (case {index} of `lab fuzz --seed {seed}`){note}.\n\
             # Replay it: lab run THIS_FILE --seed {seed} --strategy {strategy} --trials 1\n{seeds}",
            strategy = strategy.name,
            index = start.index,
            seeds = super::seed_header(seed),
        );
        write_case(case, seed, &header, |h| {
            // Another class of this run may have reached the same case (a
            // racy one fails in two ways): its file keeps its own header.
            let path = dir.join(format!("{kind}-{}-{h}.toml", strategy.name));
            if path.exists() {
                dir.join(format!(
                    "{kind}-{}-{h}-case-{}.toml",
                    strategy.name, start.index
                ))
            } else {
                path
            }
        })?
        .ok_or_else(|| LabError::Lab(format!("the {kind} case no longer plans")))
    };
    let first_case = generate::case_tree(seed, start.index)
        .map_err(LabError::Lab)?
        .current();
    let first = write("first", &first_case, "")?;
    let note = format!(
        ", shrunk from {nodes_before} to {nodes_after} nodes in {} steps: {class}",
        shrunk.steps
    );
    let minimal = write("minimal", &shrunk.minimal, &note)?;
    let regression = args.regressions.join(
        minimal
            .path
            .file_name()
            .map_or_else(|| "minimal.toml".into(), |n| n.to_owned()),
    );
    super::write_text(&regression, &minimal.checked.text)?;
    Ok(MinimalCase {
        case: start.index,
        verdict: minimal_o.verdict,
        signatures: class.signatures.iter().copied().collect(),
        reason: minimal_o.reason.clone().unwrap_or_default(),
        first_verdict: start.outcome.verdict,
        first: first.path.clone(),
        replay: lab.replay(&minimal, strategy),
        minimal: minimal.path,
        regression,
        nodes_before,
        nodes_after,
        shrink_steps: shrunk.steps,
        accepted_steps: shrunk.accepted,
        failing_otherwise,
        trials_per_step: args.repeat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure predicate on cases: a tree of at least 3 nodes with a
    /// kill fails.
    fn fails(c: &Case) -> bool {
        c.nodes() >= 3 && c.features[9] && !c.kills.is_empty()
    }

    #[test]
    fn shrinking_never_grows_the_tree_and_reaches_a_small_case() {
        let mut shrunk_some = 0;
        for i in 0..200 {
            let mut tree = generate::case_tree(5, i).unwrap();
            let start = tree.current();
            if !fails(&start) {
                continue;
            }
            let mut sizes = vec![start.nodes()];
            let s = minimize(&mut *tree, 500, Case::nodes, |c: &Case, _| {
                let f = fails(c);
                if f {
                    sizes.push(c.nodes());
                }
                Ok::<_, ()>(Some(f))
            })
            .unwrap();
            assert!(fails(&s.minimal));
            assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{sizes:?}");
            assert_eq!(s.minimal.nodes(), 3, "case {i}: {:?}", s.minimal);
            assert!(s.minimal.kills.len() == 1 && s.minimal.rules.is_empty());
            shrunk_some += 1;
            if shrunk_some == 5 {
                break;
            }
        }
        assert!(shrunk_some > 0);
    }

    /// An injected judge: a tree of at least 3 nodes with a kill hangs
    /// with `lone-futex-waiter`; any other case leaves a daemon orphan.
    fn judge(c: &Case) -> Outcome {
        let mut o = Outcome::error(String::new(), 0);
        if fails(c) {
            o.verdict = crate::verdict::Verdict::Hang;
            o.signatures = vec![crate::forensics::Signature::LoneFutexWaiter];
        } else {
            o.verdict = crate::verdict::Verdict::Orphan;
        }
        o
    }

    #[test]
    fn a_hang_that_could_shrink_to_an_orphan_stays_a_hang() {
        let i = (0..200)
            .find(|i| fails(&generate::case_tree(5, *i).unwrap().current()))
            .unwrap();
        let start = judge(&generate::case_tree(5, i).unwrap().current());
        let class = FailureClass::of(&start).unwrap();
        // Any failing candidate kept: the hang shrinks to an orphan.
        let mut tree = generate::case_tree(5, i).unwrap();
        let any = minimize(&mut *tree, 500, Case::nodes, |c: &Case, _| {
            Ok::<_, ()>(Some(property::fails(judge(c).verdict)))
        })
        .unwrap();
        assert_eq!(judge(&any.minimal).verdict, crate::verdict::Verdict::Orphan);
        // Only candidates of the same class kept: it stays the hang.
        let mut tree = generate::case_tree(5, i).unwrap();
        let same = minimize(&mut *tree, 500, Case::nodes, |c: &Case, _| {
            let trials = [judge(c)];
            Ok::<_, ()>(Some(
                property::first_same_failure(&class, &trials).is_some(),
            ))
        })
        .unwrap();
        assert!(same.accepted > 0);
        assert_eq!(FailureClass::of(&judge(&same.minimal)), Some(class));
        assert_eq!(same.minimal.nodes(), 3, "{:?}", same.minimal);
    }

    #[test]
    fn the_step_bound_and_a_stop_are_kept() {
        let mut tree = generate::case_tree(5, 0).unwrap();
        let s = minimize(&mut *tree, 3, Case::nodes, |_: &Case, _| {
            Ok::<_, ()>(Some(true))
        })
        .unwrap();
        assert!(s.steps <= 3);
        let mut tree = generate::case_tree(5, 0).unwrap();
        let start = tree.current();
        let s = minimize(&mut *tree, 30, Case::nodes, |_: &Case, _| Ok::<_, ()>(None)).unwrap();
        assert_eq!((s.minimal, s.accepted), (start, 0));
    }
}
