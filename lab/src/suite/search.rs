//! The search of `lab bisect`, over an oracle: which candidates, run
//! before the victim in one process, make it show the outcome looked for
//! (fail; with `--opposite`, pass).
//!
//! [`find`] is a noisy binary search (probabilistic bisection, Waeber,
//! Frazier and Henderson 2013; the halving of detect-test-pollution with
//! the evidence kept): every candidate carries a weight, its odds of being
//! the one polluter. Each step tries the heaviest candidates holding half
//! the weight, up to K runs, stopping at the first run that shows the
//! outcome. A run that shows it is conclusive (the victim does not show it
//! alone, so the polluter is among those run): every candidate outside the
//! set is dropped. A run that does not show it is evidence, not proof (a
//! flaky polluter misses some runs): it halves the weight of every
//! candidate in the set, so a set wrongly passed over is tried again once
//! the others have lost weight too. The search ends when one candidate is
//! left and a run showed the outcome with that candidate alone before the
//! victim: O(log n) steps with one polluter. When no single candidate does
//! it within the step budget (two polluters needed together, say), it
//! falls back to [`ddmin`] over the candidates left.
//!
//! Both are pure over the oracle, so they are tested on simulated ones
//! (deterministic, flaky, a pair, n up to 2000).

/// What up to K runs of one step showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Some run showed the outcome looked for.
    pub shown: bool,
    /// Runs that did not show it (each halves the weight of the set's
    /// candidates).
    pub quiet: u64,
}

/// The weight a quiet run leaves to each candidate of its set: the odds of
/// a quiet run when the polluter is in the set, for a polluter that shows
/// at least half the time.
const QUIET: f64 = 0.5;

/// The steps [`find`] takes at most over `n` candidates before it falls
/// back to [`ddmin`]: `2·⌈log2(n+1)⌉ + 4`.
pub fn step_budget(n: usize) -> usize {
    2 * ((n + 1) as f64).log2().ceil() as usize + 4
}

/// The smallest set of `0..n` for which `test` shows the outcome, given
/// that the whole of `0..n` shows it: one candidate by the noisy binary
/// search, or a 1-minimal set by [`ddmin`] when no single one was found
/// within [`step_budget`] steps. Sets are passed to `test` sorted (the
/// candidates' order).
///
/// # Errors
/// The first error of `test`.
pub fn find<E>(
    n: usize,
    test: &mut impl FnMut(&[usize]) -> Result<Probe, E>,
) -> Result<Vec<usize>, E> {
    let mut live: Vec<usize> = (0..n).collect();
    let mut weight = vec![1.0_f64; n];
    let mut confirmed = n == 1;
    for _ in 0..step_budget(n) {
        if live.len() <= 1 && confirmed {
            return Ok(live);
        }
        let set = heaviest_half(&live, &weight);
        let probe = test(&set)?;
        if probe.shown {
            live = set;
            confirmed = live.len() == 1;
        } else {
            let factor = QUIET.powi(probe.quiet.min(1000) as i32);
            for &i in &set {
                weight[i] *= factor;
            }
            // Keep the weights in range; only their ratios matter.
            let top = live.iter().map(|&i| weight[i]).fold(0.0, f64::max);
            if top > 0.0 {
                live.iter().for_each(|&i| weight[i] /= top);
            }
        }
    }
    if live.len() <= 1 && confirmed {
        return Ok(live);
    }
    let mut holds = |s: &[usize]| test(s).map(|p| p.shown);
    ddmin(live, &mut holds)
}

/// The heaviest candidates of `live` holding at least half its weight (at
/// least one, fewer than all when there are two or more), in the
/// candidates' order; ties go to the earlier candidate.
fn heaviest_half(live: &[usize], weight: &[f64]) -> Vec<usize> {
    if live.len() <= 1 {
        return live.to_vec();
    }
    let mut by_weight = live.to_vec();
    by_weight.sort_by(|&a, &b| weight[b].total_cmp(&weight[a]).then(a.cmp(&b)));
    let total: f64 = live.iter().map(|&i| weight[i]).sum();
    let mut set = Vec::new();
    let mut sum = 0.0;
    for &i in &by_weight[..live.len() - 1] {
        set.push(i);
        sum += weight[i];
        if sum >= total / 2.0 {
            break;
        }
    }
    set.sort_unstable();
    set
}

/// ddmin (Zeller and Hildebrandt 2002): a 1-minimal subset of `c` (for
/// which `test` is known to hold) for which `test` holds: removing any one
/// element of it makes `test` fail. Subsets keep the order of `c`. Tests
/// halves first, then finer chunks and their complements, doubling the
/// granularity when nothing smaller holds.
///
/// # Errors
/// The first error of `test`.
pub fn ddmin<E>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;

    /// A simulated victim: whether it shows the outcome after `before`, one
    /// run.
    type Victim<'a> = dyn FnMut(&[usize]) -> bool + 'a;

    /// [`find`] over `n` candidates with K runs a step (stopping at the
    /// first that shows); the result and the runs it took.
    fn search(n: usize, k: u64, victim: &mut Victim<'_>) -> (Vec<usize>, u64) {
        let mut runs = 0;
        let found = find::<()>(n, &mut |set| {
            let mut quiet = 0;
            for _ in 0..k {
                runs += 1;
                if victim(set) {
                    return Ok(Probe { shown: true, quiet });
                }
                quiet += 1;
            }
            Ok(Probe {
                shown: false,
                quiet,
            })
        })
        .unwrap();
        (found, runs)
    }

    fn log2(n: usize) -> u64 {
        (n as f64).log2().ceil() as u64
    }

    #[test]
    fn one_polluter_is_found_in_at_most_2_log2_n_plus_4_runs_per_repeat() {
        for n in [20, 200, 2000] {
            for p in [0, n / 3, n / 2, n - 1] {
                for k in [1, 3, 5] {
                    let (found, runs) = search(n, k, &mut |s| s.contains(&p));
                    assert_eq!(found, [p], "n {n} p {p} k {k}");
                    assert!(
                        runs <= k * (2 * log2(n) + 4),
                        "n {n} p {p} k {k}: {runs} runs"
                    );
                }
            }
        }
    }

    #[test]
    fn a_flaky_polluter_is_found_with_five_runs_a_step_in_nine_seeds_of_ten() {
        for n in [20, 200] {
            let mut found_in = 0;
            for seed in 0..10 {
                let p = 7 % n;
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (found, _) = search(n, 5, &mut |s| s.contains(&p) && rng.next_u32() % 2 == 0);
                found_in += u64::from(found == [p]);
            }
            assert!(found_in >= 9, "n {n}: found in {found_in} of 10 seeds");
        }
    }

    #[test]
    fn two_polluters_needed_together_are_found_as_a_pair() {
        for (n, a, b) in [(20, 3, 15), (20, 0, 1), (200, 10, 150)] {
            let (found, _) = search(n, 3, &mut |s| s.contains(&a) && s.contains(&b));
            assert_eq!(found, [a, b], "n {n}");
        }
    }

    #[test]
    fn the_opposite_a_state_setter_the_victim_needs_is_found_the_same_way() {
        // The victim passes only after the setter: the outcome looked for
        // is a pass, shown only when the setter ran before it.
        let setter = 11;
        let passes = |s: &[usize]| s.contains(&setter);
        let (found, _) = search(40, 2, &mut |s| passes(s));
        assert_eq!(found, [setter]);
    }

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
    fn ddmin_keeps_polluters_that_must_all_run() {
        let (found, _) = reduce(6, |s| s.contains(&1) && s.contains(&4));
        assert_eq!(found, [1, 4]);
        let (found, _) = reduce(9, |s| [0, 4, 8].iter().all(|p| s.contains(p)));
        assert_eq!(found, [0, 4, 8]);
        // Either of two suffices: one of them, not both.
        let (found, _) = reduce(8, |s| s.contains(&2) || s.contains(&6));
        assert!(found == [2] || found == [6], "{found:?}");
        let (found, tests) = reduce(64, |s| s.contains(&9));
        assert_eq!(found, [9]);
        assert!(tests <= 12, "{tests}");
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

    #[test]
    fn the_heaviest_half_is_never_everything() {
        assert_eq!(heaviest_half(&[0, 1], &[1.0, 1.0]), [0]);
        assert_eq!(heaviest_half(&[0, 1, 2, 3], &[1.0; 4]), [0, 1]);
        assert_eq!(heaviest_half(&[0, 1, 2, 3], &[0.1, 0.1, 1.0, 1.0]), [2, 3]);
        assert_eq!(heaviest_half(&[0, 1], &[1.0, 0.01]), [0]);
    }
}
