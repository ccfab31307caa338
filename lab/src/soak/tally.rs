//! Counting a soak as it goes: verdicts, times and failing trials per
//! scenario, swept value and strategy, fed one CSV row at a time (so memory
//! does not grow with the rows, only with the times kept for percentiles).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::results::TrialRow;
use crate::stats::{median, percentile, Rate};
use crate::verdict::reason_class;
use crate::verdict::Verdict;

/// Failing trials kept per group for the replay list.
const FAILING_KEPT: usize = 20;

/// The key of a group: scenario, swept key and value, strategy.
type Key = (String, String, String, String);

#[derive(Debug, Default)]
struct Group {
    counts: BTreeMap<String, u64>,
    verdict_us: Vec<u64>,
    duration_us: Vec<u64>,
    signatures: BTreeMap<String, u64>,
    reasons: BTreeMap<String, BTreeMap<String, u64>>,
    panic_sites: BTreeMap<String, u64>,
    failing: Vec<Failing>,
}

/// A trial that did not pass, and how to replay it.
#[derive(Clone, Debug, Serialize)]
pub struct Failing {
    /// Trial index.
    pub trial: u64,
    /// Its plan's seed.
    pub seed: u64,
    /// Its verdict.
    pub verdict: String,
    /// The command that replays it.
    pub replay: String,
}

/// The counts of a soak so far.
#[derive(Debug, Default)]
pub struct Tally {
    groups: BTreeMap<Key, Group>,
}

/// The results of one scenario (at one swept value) under one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    /// Scenario name.
    pub scenario: String,
    /// The swept key, empty when none.
    pub sweep_key: String,
    /// Its value.
    pub sweep_value: String,
    /// Strategy name.
    pub strategy: String,
    /// Trials.
    pub trials: u64,
    /// Every verdict's rate with its 95% Wilson interval.
    pub rates: BTreeMap<String, Rate>,
    /// Median time to verdict (µs).
    pub median_verdict_us: u64,
    /// 99th percentile of the time to verdict (µs).
    pub p99_verdict_us: u64,
    /// Median trial duration (µs).
    pub median_duration_us: u64,
    /// 99th percentile of the trial duration (µs).
    pub p99_duration_us: u64,
    /// Trials that named each signature.
    pub signatures: BTreeMap<String, u64>,
    /// Distinct reasons of the trials that did not pass, by verdict, with
    /// PIDs and pipe inodes written `N` so that equal failures group.
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// The guards' sites (`file:line`) of `panic` verdicts, with counts.
    pub panic_sites: BTreeMap<String, u64>,
    /// The first failing trials (at most 20), with their replay commands.
    pub failing: Vec<Failing>,
}

impl Tally {
    /// Count one row.
    pub fn add(&mut self, row: &TrialRow) {
        let key = (
            row.scenario.clone(),
            row.sweep_key.clone(),
            row.sweep_value.clone(),
            row.strategy.clone(),
        );
        let g = self.groups.entry(key).or_default();
        *g.counts.entry(row.verdict.clone()).or_insert(0) += 1;
        g.verdict_us.push(row.time_to_verdict_us);
        g.duration_us.push(row.duration_us);
        for s in row.signatures.split_whitespace() {
            *g.signatures.entry(s.to_string()).or_insert(0) += 1;
        }
        if row.verdict != Verdict::Pass.name() && !row.reason.is_empty() {
            *g.reasons
                .entry(row.verdict.clone())
                .or_default()
                .entry(reason_class(&row.reason))
                .or_insert(0) += 1;
        }
        if !row.panic_site.is_empty() {
            *g.panic_sites.entry(row.panic_site.clone()).or_insert(0) += 1;
        }
        if row.verdict != Verdict::Pass.name() && g.failing.len() < FAILING_KEPT {
            g.failing.push(Failing {
                trial: row.trial,
                seed: row.seed,
                verdict: row.verdict.clone(),
                replay: row.replay.clone(),
            });
        }
    }

    /// Trials counted so far.
    pub fn trials(&self) -> u64 {
        self.groups
            .values()
            .map(|g| g.counts.values().sum::<u64>())
            .sum()
    }

    /// `(strategy, verdict) -> count` over every scenario.
    pub fn by_strategy(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for ((_, _, _, strategy), g) in &self.groups {
            for (v, n) in &g.counts {
                *out.entry((strategy.clone(), v.clone())).or_insert(0) += n;
            }
        }
        out
    }

    /// One summary per group, in scenario, swept value and strategy order.
    pub fn summaries(&self) -> Vec<GroupSummary> {
        self.groups
            .iter()
            .map(|((scenario, sweep_key, sweep_value, strategy), g)| {
                let trials: u64 = g.counts.values().sum();
                GroupSummary {
                    scenario: scenario.clone(),
                    sweep_key: sweep_key.clone(),
                    sweep_value: sweep_value.clone(),
                    strategy: strategy.clone(),
                    trials,
                    rates: Verdict::ALL
                        .iter()
                        .map(|v| {
                            let n = g.counts.get(v.name()).copied().unwrap_or(0);
                            (v.name().to_string(), Rate::wilson(n, trials))
                        })
                        .collect(),
                    median_verdict_us: median(&g.verdict_us),
                    p99_verdict_us: percentile(&g.verdict_us, 99.0),
                    median_duration_us: median(&g.duration_us),
                    p99_duration_us: percentile(&g.duration_us, 99.0),
                    signatures: g.signatures.clone(),
                    reasons: g.reasons.clone(),
                    panic_sites: g.panic_sites.clone(),
                    failing: g.failing.clone(),
                }
            })
            .collect()
    }
}

/// The summaries as text: one block per scenario and swept value, one line
/// per strategy with `pass`, `orphan` and `hang` always and every other
/// verdict that occurred.
pub fn render(groups: &[GroupSummary]) -> String {
    let mut s = String::new();
    let mut last = (String::new(), String::new());
    for g in groups {
        let here = (g.scenario.clone(), g.sweep_value.clone());
        if here != last {
            let sweep = if g.sweep_key.is_empty() {
                String::new()
            } else {
                format!("  {}={}", g.sweep_key, g.sweep_value)
            };
            let _ = writeln!(s, "\n{}{sweep}", g.scenario);
            last = here;
        }
        let shown: Vec<String> = Verdict::ALL
            .iter()
            .filter(|v| {
                matches!(v, Verdict::Pass | Verdict::Orphan | Verdict::Hang)
                    || g.rates[v.name()].count > 0
            })
            .map(|v| format!("{} {}", v.name(), g.rates[v.name()].render()))
            .collect();
        let _ = writeln!(
            s,
            "  {:<18} {:>7} trials  {}  verdict median {:.2} ms p99 {:.2} ms",
            g.strategy,
            g.trials,
            shown.join("; "),
            g.median_verdict_us as f64 / 1000.0,
            g.p99_verdict_us as f64 / 1000.0
        );
    }
    s
}
