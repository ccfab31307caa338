//! [`Group`]: the trials of one scenario and strategy (and swept value),
//! counted: verdicts, times (µs), reasons, signatures, panic sites.

use std::collections::BTreeMap;

use super::{Row, SweepValue};
use crate::stats::{percentile_sorted, Rate};
use crate::verdict::Verdict;

/// The trials of one scenario and strategy (and swept value), counted.
#[derive(Clone, Debug)]
pub struct Group {
    /// Scenario name.
    pub scenario: String,
    /// Strategy name.
    pub strategy: String,
    /// The strategy's axes, `(create, death, observe)`, from its first row.
    pub axes: (String, String, String),
    /// Whether the canonical path's guards were on (first row).
    pub guards: bool,
    /// The swept value, for a group of one swept value.
    pub sweep: Option<SweepValue>,
    /// Trials.
    pub trials: u64,
    /// Trials per verdict (verdicts seen only).
    pub counts: BTreeMap<Verdict, u64>,
    /// `(verdict, time to verdict µs, duration µs)` of every trial, in the
    /// order read.
    pub points: Vec<(Verdict, u64, u64)>,
    /// Times to verdict (µs), ascending.
    pub verdict_us: Vec<u64>,
    /// Trial durations (µs), ascending.
    pub duration_us: Vec<u64>,
    /// Distinct reasons per verdict (every verdict but pass), with PIDs and
    /// pipe inodes written `N` so that equal failures group, and counts.
    pub reasons: BTreeMap<Verdict, BTreeMap<String, u64>>,
    /// Trials that named each signature.
    pub signatures: BTreeMap<String, u64>,
    /// The guards' sites (`file:line`) of panics, with counts.
    pub panic_sites: BTreeMap<String, u64>,
    /// The run ids of the trials, in order of first appearance.
    pub run_ids: Vec<String>,
}

impl Group {
    /// Count `trials` (all of `scenario`, one strategy).
    pub fn of<'a>(
        scenario: &str,
        sweep: Option<SweepValue>,
        trials: impl IntoIterator<Item = &'a Row>,
    ) -> Group {
        let mut g = Group {
            scenario: scenario.into(),
            strategy: String::new(),
            axes: Default::default(),
            guards: false,
            sweep,
            trials: 0,
            counts: BTreeMap::new(),
            points: Vec::new(),
            verdict_us: Vec::new(),
            duration_us: Vec::new(),
            reasons: BTreeMap::new(),
            signatures: BTreeMap::new(),
            panic_sites: BTreeMap::new(),
            run_ids: Vec::new(),
        };
        for t in trials {
            let r = &t.row;
            if g.trials == 0 {
                g.strategy = r.strategy.clone();
                g.axes = (r.create.clone(), r.death.clone(), r.observe.clone());
                g.guards = r.guards;
            }
            g.trials += 1;
            *g.counts.entry(t.verdict).or_insert(0) += 1;
            g.points
                .push((t.verdict, r.time_to_verdict_us, r.duration_us));
            g.verdict_us.push(r.time_to_verdict_us);
            g.duration_us.push(r.duration_us);
            if t.verdict != Verdict::Pass && !r.reason.is_empty() {
                *g.reasons
                    .entry(t.verdict)
                    .or_default()
                    .entry(crate::verdict::reason_class(&r.reason))
                    .or_insert(0) += 1;
            }
            for s in r.signatures.split_whitespace() {
                *g.signatures.entry(s.to_string()).or_insert(0) += 1;
            }
            if !r.panic_site.is_empty() {
                *g.panic_sites.entry(r.panic_site.clone()).or_insert(0) += 1;
            }
            if !g.run_ids.contains(&r.run_id) {
                g.run_ids.push(r.run_id.clone());
            }
        }
        g.verdict_us.sort_unstable();
        g.duration_us.sort_unstable();
        g
    }

    /// Trials with verdict `v`.
    pub fn count(&self, v: Verdict) -> u64 {
        self.counts.get(&v).copied().unwrap_or(0)
    }

    /// The rate of verdict `v` with its 95% Wilson interval.
    pub fn rate(&self, v: Verdict) -> Rate {
        Rate::wilson(self.count(v), self.trials)
    }

    /// The rate of trials that did not pass, with its 95% Wilson interval.
    pub fn not_pass(&self) -> Rate {
        Rate::wilson(self.trials - self.count(Verdict::Pass), self.trials)
    }

    /// The most frequent verdict (the first in [`Verdict::ALL`] order on a
    /// tie); `pass` for an empty group.
    pub fn modal(&self) -> Verdict {
        Verdict::ALL
            .into_iter()
            .max_by_key(|&v| (self.count(v), std::cmp::Reverse(v)))
            .unwrap_or(Verdict::Pass)
    }

    /// The `p`-th percentile (nearest rank) of the times to verdict, in ms.
    pub fn verdict_ms(&self, p: f64) -> f64 {
        percentile_sorted(&self.verdict_us, p) as f64 / 1000.0
    }

    /// The `p`-th percentile (nearest rank) of the trial durations, in ms.
    pub fn duration_ms(&self, p: f64) -> f64 {
        percentile_sorted(&self.duration_us, p) as f64 / 1000.0
    }

    /// The axes on which this group's strategy differs from `canonical`,
    /// as `axis=value`; with the guards switch when it differs from
    /// canonical's (on).
    pub fn differs_from_canonical(&self) -> Vec<String> {
        use crate::strategy::{Create, Observe, ParentDeath};
        let (c, d, o) = &self.axes;
        let mut out = Vec::new();
        if c != Create::Clone3.name() {
            out.push(format!("create={c}"));
        }
        if d != ParentDeath::Lifeline.name() {
            out.push(format!("death={d}"));
        }
        if o != Observe::Pidfd.name() {
            out.push(format!("observe={o}"));
        }
        if !self.guards {
            out.push("guards=off".into());
        }
        out
    }
}
