//! The soak matrix: cells (a scenario, at one value of a swept key), the
//! strategies run on each, and the order in which trials are dealt out.
//!
//! Trial `t` of every cell and strategy runs the plan of seed
//! [`trial_seed`]`(seed, t)`: the strategies of a cell see the same plans
//! (a paired A/B comparison), and a trial can be replayed alone from its
//! seed. Trials are dealt round by round (every cell and strategy at `t`,
//! then at `t + 1`), so a soak stopped at any moment has balanced counts.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::scenario::overrides::{Override, Sweep};
use crate::scenario::{Scenario, ScenarioError};

/// The seed of trial `t` of a soak seeded with `seed`: SplitMix64 of
/// `seed + t·φ` (the golden-ratio increment), so neighbouring seeds and
/// trials give unrelated plans.
pub fn trial_seed(seed: u64, t: u64) -> u64 {
    let mut z = seed.wrapping_add(t.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `--shard I/N`: the trials `t` with `t % N == I - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// Whether trial `t` belongs to this shard.
    pub fn has(&self, t: u64) -> bool {
        t % self.count == self.index - 1
    }
}

/// Why a text is not a shard `I/N`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a shard I/N with 1 <= I <= N (e.g. 1/4)")]
pub struct ShardError {
    /// The text as given.
    pub text: String,
}

impl FromStr for Shard {
    type Err = ShardError;

    /// Parse `I/N` (spaces around either number allowed).
    ///
    /// # Errors
    /// [`ShardError`] unless both are numbers with `1 <= I <= N`.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError {
            text: s.to_string(),
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One cell of the matrix: a scenario, with the swept key at one value.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The scenario as the user named it (a built-in name or a path).
    pub name: String,
    /// The scenario, with the soak's `--set` values and the sweep's
    /// override applied.
    pub scenario: Scenario,
    /// The sweep's override of this cell, if the soak sweeps.
    pub sweep: Option<Override>,
    /// Every override of this cell, in the order applied: the soak's
    /// `--set` values, then the sweep's (what a replay command repeats).
    pub overrides: Vec<Override>,
}

/// Every cell of `scenarios` (each with the overrides `set` applied) ×
/// the values of `sweep`.
///
/// # Errors
/// A scenario that does not load, or a set or swept value it refuses (the
/// error names the value).
pub fn cells(
    scenarios: &[String],
    set: &[Override],
    sweep: Option<&Sweep>,
) -> Result<Vec<Cell>, ScenarioError> {
    let swept: Vec<Option<Override>> = match sweep {
        None => vec![None],
        Some(s) => s.values.iter().map(|v| Some(s.at(v))).collect(),
    };
    let mut out = Vec::new();
    for name in scenarios {
        for o in &swept {
            let overrides: Vec<Override> = set.iter().chain(o).cloned().collect();
            out.push(Cell {
                name: name.clone(),
                scenario: Scenario::load_with(name, &overrides)?,
                sweep: o.clone(),
                overrides,
            });
        }
    }
    Ok(out)
}

/// One trial to run: cell, strategy (index into the soak's list) and trial
/// index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    /// Index of the cell.
    pub cell: usize,
    /// Index of the strategy.
    pub strategy: usize,
    /// Trial index within the cell and strategy.
    pub trial: u64,
}

/// The `k`-th item of the round-by-round order over `cells` cells and
/// `strategies` strategies, counting only trials of `shard`.
pub fn nth_item(k: u64, cells: usize, strategies: usize, shard: Option<Shard>) -> Item {
    let per_round = (cells * strategies) as u64;
    let round = k / per_round;
    let within = (k % per_round) as usize;
    let trial = match shard {
        Some(s) => round * s.count + (s.index - 1),
        None => round,
    };
    Item {
        cell: within / strategies,
        strategy: within % strategies,
        trial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_trial_and_repeat_per_soak() {
        assert_eq!(trial_seed(1, 5), trial_seed(1, 5));
        assert_ne!(trial_seed(1, 5), trial_seed(1, 6));
        assert_ne!(trial_seed(1, 5), trial_seed(2, 5));
    }

    #[test]
    fn shards_partition_the_trials() {
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        for t in 0..30 {
            assert_eq!(shards.iter().filter(|s| s.has(t)).count(), 1);
        }
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        // Shard 2/3 deals trials 1, 4, 7, ... to every cell and strategy.
        let s = Some(shards[1]);
        let items: Vec<Item> = (0..8).map(|k| nth_item(k, 2, 2, s)).collect();
        assert!(items.iter().all(|i| shards[1].has(i.trial)));
        assert_eq!(
            items[0],
            Item {
                cell: 0,
                strategy: 0,
                trial: 1
            }
        );
        assert_eq!(
            items[3],
            Item {
                cell: 1,
                strategy: 1,
                trial: 1
            }
        );
        assert_eq!(
            items[4],
            Item {
                cell: 0,
                strategy: 0,
                trial: 4
            }
        );
    }
}
