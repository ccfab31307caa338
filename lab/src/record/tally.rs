//! Counting trials as they end: [`Counts`], the verdicts, times, signatures,
//! reasons and failing trials of one group of trials, and [`Tally`], the
//! counts of every scenario, swept value and strategy of a run or soak. Fed
//! one trial at a time (a CSV row, or an outcome where no row is written),
//! in memory that does not grow with the trials: the times for medians and
//! percentiles are kept in [`Quantiles`], at most 20 failing trials, and
//! counts by verdict, signature and reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};

use super::row::TrialRow;
use crate::scenario::sweep::SweepValue;
use crate::stats::{Quantiles, Rate};
use crate::verdict::{reason_class, Outcome, Verdict};

/// Failing trials kept per group for the replay list.
const FAILING_KEPT: usize = 20;

/// The key of a group: scenario, swept key and value, strategy.
type Key = (String, String, String, String);

/// What one trial adds to a count.
struct Entry<'a> {
    verdict: &'a str,
    verdict_us: u64,
    duration_us: u64,
    signatures: Vec<&'a str>,
    reason: &'a str,
    panic_site: &'a str,
    trial: u64,
    seed: u64,
    replay: &'a str,
    diagnosis: Option<&'a crate::forensics::Diagnosis>,
    /// Where its diagnosis was written (empty: none).
    diagnosis_path: &'a str,
}

/// A trial that did not pass, and how to replay it.
#[serde_with::serde_as]
#[derive(Clone, Debug, Serialize)]
pub struct Failing {
    /// Trial index.
    pub trial: u64,
    /// Its plan's seed.
    #[serde_as(as = "serde_with::PickFirst<(serde_with::DisplayFromStr, _)>")]
    pub seed: u64,
    /// Its verdict.
    pub verdict: String,
    /// The command that replays it.
    pub replay: String,
    /// Where its diagnosis was written (JSON; the text beside it, `.txt`);
    /// empty when none was (no hang or orphan, or beyond
    /// `--max-diagnoses`).
    pub diagnosis: String,
}

/// The counts of one group of trials (one scenario at one swept value under
/// one strategy; in a suite, one member alone or in the suite).
///
/// Serialized as a suite reports a member's runs: `runs`, `verdicts`
/// (runs by verdict name), `signatures` and `reasons` of the runs that did
/// not pass (reasons with PIDs and pipe inodes written `N`), and the
/// `diagnosis` summary of the first failing run that has one.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    verdicts: BTreeMap<String, u64>,
    /// Times to verdict and durations (µs): exact medians and p99s up to
    /// 4096 trials, within 0.025% beyond, in memory that does not grow
    /// with the trials ([`Quantiles`]).
    verdict_us: Quantiles,
    duration_us: Quantiles,
    /// Trials that named each signature, by the trial's verdict.
    signatures: BTreeMap<String, BTreeMap<String, u64>>,
    /// Distinct reasons of trials that did not pass, by verdict.
    reasons: BTreeMap<String, BTreeMap<String, u64>>,
    panic_sites: BTreeMap<String, u64>,
    failing: Vec<Failing>,
    /// The first trial of each verdict, with its replay command.
    first: BTreeMap<String, Failing>,
    diagnosis: Option<String>,
    /// Diagnoses written (rows with a diagnosis path).
    diagnoses_written: u64,
    /// Diagnoses left unwritten (`--max-diagnoses`).
    diagnoses_unwritten: u64,
}

impl Counts {
    /// Count one CSV row.
    pub fn add_row(&mut self, row: &TrialRow) {
        self.add(&Entry {
            verdict: &row.verdict,
            verdict_us: row.time_to_verdict_us,
            duration_us: row.duration_us,
            signatures: row.signatures.split_whitespace().collect(),
            reason: &row.reason,
            panic_site: &row.panic_site,
            trial: row.trial,
            seed: row.seed,
            replay: &row.replay,
            diagnosis: None,
            diagnosis_path: &row.diagnosis,
        });
    }

    /// Count one outcome (of a trial that writes no row: a suite's).
    pub fn add_outcome(&mut self, o: &Outcome) {
        self.add(&Entry {
            verdict: o.verdict.name(),
            verdict_us: o.time_to_verdict_us,
            duration_us: o.duration_us,
            signatures: o.signatures.iter().map(|s| s.name()).collect(),
            reason: o.reason.as_deref().unwrap_or(""),
            panic_site: o.panic_site.as_deref().unwrap_or(""),
            trial: 0,
            seed: 0,
            replay: "",
            diagnosis: o.diagnosis.as_ref(),
            diagnosis_path: "",
        });
    }

    fn add(&mut self, e: &Entry<'_>) {
        let failed = e.verdict != Verdict::Pass.name();
        *self.verdicts.entry(e.verdict.to_string()).or_insert(0) += 1;
        let this = || Failing {
            trial: e.trial,
            seed: e.seed,
            verdict: e.verdict.to_string(),
            replay: e.replay.to_string(),
            diagnosis: e.diagnosis_path.to_string(),
        };
        if !self.first.contains_key(e.verdict) {
            self.first.insert(e.verdict.to_string(), this());
        }
        if !e.diagnosis_path.is_empty() {
            self.diagnoses_written += 1;
        }
        self.verdict_us.add(e.verdict_us);
        self.duration_us.add(e.duration_us);
        for s in &e.signatures {
            *self
                .signatures
                .entry(e.verdict.to_string())
                .or_default()
                .entry(s.to_string())
                .or_insert(0) += 1;
        }
        if !e.panic_site.is_empty() {
            *self
                .panic_sites
                .entry(e.panic_site.to_string())
                .or_insert(0) += 1;
        }
        if !failed {
            return;
        }
        if !e.reason.is_empty() {
            *self
                .reasons
                .entry(e.verdict.to_string())
                .or_default()
                .entry(reason_class(e.reason))
                .or_insert(0) += 1;
        }
        if self.failing.len() < FAILING_KEPT {
            self.failing.push(this());
        }
        if self.diagnosis.is_none() {
            self.diagnosis = e.diagnosis.map(|d| d.summary());
        }
    }

    /// Diagnoses written for this group's trials (rows that name one).
    pub fn diagnoses_written(&self) -> u64 {
        self.diagnoses_written
    }

    /// Diagnoses left unwritten for this group's trials
    /// (`--max-diagnoses`).
    pub fn diagnoses_unwritten(&self) -> u64 {
        self.diagnoses_unwritten
    }

    /// Trials counted.
    pub fn runs(&self) -> u64 {
        self.verdicts.values().sum()
    }

    /// Trials with verdict `v`.
    pub fn count(&self, v: Verdict) -> u64 {
        self.verdicts.get(v.name()).copied().unwrap_or(0)
    }

    /// Trials that did not pass.
    pub fn failures(&self) -> u64 {
        self.runs() - self.count(Verdict::Pass)
    }

    /// Trials by verdict name (`pass`, `hang`, ...).
    pub fn verdicts(&self) -> &BTreeMap<String, u64> {
        &self.verdicts
    }

    /// For each signature named by a trial that did not pass, the trials
    /// that named it.
    pub fn failing_signatures(&self) -> BTreeMap<String, u64> {
        self.signatures_where(|v| v != Verdict::Pass.name())
    }

    /// The distinct reasons of trials that did not pass, over every verdict,
    /// with their counts.
    pub fn failing_reasons(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (reason, n) in self.reasons.values().flatten() {
            *out.entry(reason.clone()).or_insert(0) += n;
        }
        out
    }

    /// The diagnosis summary of the first failing trial that had one.
    pub fn diagnosis(&self) -> Option<&str> {
        self.diagnosis.as_deref()
    }

    fn signatures_where(&self, verdict: impl Fn(&str) -> bool) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (_, sigs) in self.signatures.iter().filter(|(v, _)| verdict(v)) {
            for (s, n) in sigs {
                *out.entry(s.clone()).or_insert(0) += n;
            }
        }
        out
    }

    /// The failures as text: `hang x5 (lone-futex-waiter)`, or empty.
    pub fn render_failures(&self) -> String {
        let mut parts: Vec<String> = self
            .verdicts
            .iter()
            .filter(|(v, _)| v.as_str() != Verdict::Pass.name())
            .map(|(v, n)| format!("{v} x{n}"))
            .collect();
        let signatures = self.failing_signatures();
        if !signatures.is_empty() {
            let names: Vec<&str> = signatures.keys().map(String::as_str).collect();
            parts.push(format!("({})", names.join(", ")));
        }
        parts.join(" ")
    }

    /// The summary of this group under `key`.
    fn summary(&self, key: &Key) -> GroupSummary {
        let (scenario, sweep_key, sweep_value, strategy) = key.clone();
        let trials = self.runs();
        GroupSummary {
            scenario,
            sweep_key,
            sweep_value,
            strategy,
            trials,
            rates: Verdict::ALL
                .iter()
                .map(|v| (v.name().to_string(), Rate::wilson(self.count(*v), trials)))
                .collect(),
            median_verdict_us: self.verdict_us.median(),
            p99_verdict_us: self.verdict_us.percentile(99.0),
            median_duration_us: self.duration_us.median(),
            p99_duration_us: self.duration_us.percentile(99.0),
            signatures: self.signatures_where(|_| true),
            reasons: self.reasons.clone(),
            panic_sites: self.panic_sites.clone(),
            failing: self.failing.clone(),
            first: self.first.clone(),
            diagnoses_unwritten: self.diagnoses_unwritten,
        }
    }
}

impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            runs: u64,
            #[serde(serialize_with = "crate::json::verdict_keys")]
            verdicts: &'a BTreeMap<String, u64>,
            #[serde(serialize_with = "crate::json::named_counts")]
            signatures: BTreeMap<String, u64>,
            #[serde(serialize_with = "crate::json::named_counts")]
            reasons: BTreeMap<String, u64>,
            diagnosis: Option<&'a str>,
        }
        View {
            runs: self.runs(),
            verdicts: &self.verdicts,
            signatures: self.failing_signatures(),
            reasons: self.failing_reasons(),
            diagnosis: self.diagnosis(),
        }
        .serialize(s)
    }
}

/// The group of `row`: scenario, swept key and value, strategy.
fn key_of(row: &TrialRow) -> Key {
    (
        row.scenario.clone(),
        row.sweep_key.clone(),
        row.sweep_value.clone(),
        row.strategy.clone(),
    )
}

/// The counts of a run or soak so far, by scenario, swept value and
/// strategy.
#[derive(Debug, Default)]
pub struct Tally {
    groups: BTreeMap<Key, Counts>,
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
    /// Every verdict's rate with its 95% Wilson interval (in JSON, keyed
    /// by the verdict in snake_case: `early_death`).
    #[serde(serialize_with = "crate::json::verdict_keys")]
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
    #[serde(serialize_with = "crate::json::named_counts")]
    pub signatures: BTreeMap<String, u64>,
    /// Distinct reasons of the trials that did not pass, by verdict, with
    /// PIDs and pipe inodes written `N` so that equal failures group.
    #[serde(serialize_with = "crate::json::named_counts_by_verdict")]
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// The guards' sites (`file:line`) of `panic` verdicts, with counts.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub panic_sites: BTreeMap<String, u64>,
    /// The first failing trials (at most 20), with their replay commands.
    pub failing: Vec<Failing>,
    /// The first trial of each verdict (by verdict name), with its replay
    /// command and diagnosis path: what a JUnit failure names.
    #[serde(skip)]
    pub first: BTreeMap<String, Failing>,
    /// Diagnoses of hangs and orphans left unwritten: beyond
    /// `--max-diagnoses` per scenario x strategy cell (their rows are in
    /// the CSV, with an empty diagnosis path).
    pub diagnoses_unwritten: u64,
}

impl Tally {
    /// Count one row.
    pub fn add(&mut self, row: &TrialRow) {
        self.group_mut(row).add_row(row);
    }

    /// Count one diagnosis of `row`'s group left unwritten
    /// (`--max-diagnoses`); the row itself is counted by [`Tally::add`].
    pub fn add_unwritten(&mut self, row: &TrialRow) {
        self.group_mut(row).diagnoses_unwritten += 1;
    }

    /// The counts of the group (cell) of `row`, if it has any yet.
    pub fn group_of(&self, row: &TrialRow) -> Option<&Counts> {
        self.groups.get(&key_of(row))
    }

    fn group_mut(&mut self, row: &TrialRow) -> &mut Counts {
        self.groups.entry(key_of(row)).or_default()
    }

    /// Trials counted so far.
    pub fn trials(&self) -> u64 {
        self.groups.values().map(Counts::runs).sum()
    }

    /// `(strategy, verdict) -> count` over every scenario.
    pub fn by_strategy(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for ((_, _, _, strategy), g) in &self.groups {
            for (v, n) in g.verdicts() {
                *out.entry((strategy.clone(), v.clone())).or_insert(0) += n;
            }
        }
        out
    }

    /// The verdicts so far per strategy, for a progress bar:
    /// `canonical: pass 120 | legacy: orphan 118 hang 2`.
    pub fn live_counts(&self) -> String {
        let mut per: Vec<(String, Vec<String>)> = Vec::new();
        for ((strategy, verdict), n) in self.by_strategy() {
            match per.iter_mut().find(|(s, _)| *s == strategy) {
                Some((_, v)) => v.push(format!("{verdict} {n}")),
                None => per.push((strategy, vec![format!("{verdict} {n}")])),
            }
        }
        per.iter()
            .map(|(s, v)| format!("{s}: {}", v.join(" ")))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// One summary per group, in scenario, swept value and strategy order;
    /// swept values by value (`child+200us` before `child+1ms`), as
    /// [`SweepValue::order`] orders them for `lab report`.
    pub fn summaries(&self) -> Vec<GroupSummary> {
        let mut groups: Vec<(&Key, &Counts)> = self.groups.iter().collect();
        groups.sort_by(|((sa, ka, va, _), _), ((sb, kb, vb, _), _)| {
            (sa, ka).cmp(&(sb, kb)).then_with(|| {
                SweepValue::order(&SweepValue::parse(ka, va), &SweepValue::parse(kb, vb))
            })
        });
        groups.into_iter().map(|(k, g)| g.summary(k)).collect()
    }
}

/// The groups as text: per scenario (and swept value) its `about` (the
/// first sentence of `about(scenario)`), one A/B table (strategies as
/// columns, the verdicts seen and `pass` as rows, with the p99 time to
/// verdict), then one plain-words sentence per failing strategy and verdict.
pub fn render(groups: &[GroupSummary], about: impl Fn(&str) -> Option<String>) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < groups.len() {
        let here = (&groups[i].scenario, &groups[i].sweep_value);
        let end = groups[i..]
            .iter()
            .position(|g| (&g.scenario, &g.sweep_value) != here)
            .map_or(groups.len(), |n| i + n);
        let block = &groups[i..end];
        let g = &groups[i];
        let sweep = if g.sweep_key.is_empty() {
            String::new()
        } else {
            format!("  {}={}", g.sweep_key, g.sweep_value)
        };
        let _ = writeln!(s, "\n{}{sweep}", g.scenario);
        if let Some(about) = about(&g.scenario).filter(|a| !a.is_empty()) {
            s.push_str(&super::ab::about_lines(&about, 2));
        }
        let columns: Vec<super::ab::Column<'_>> = block
            .iter()
            .map(|g| super::ab::Column {
                strategy: &g.strategy,
                trials: g.trials,
                rates: &g.rates,
                median_verdict_us: g.median_verdict_us,
            })
            .collect();
        let p99 = block
            .iter()
            .map(|g| format!("{:.2} ms", g.p99_verdict_us as f64 / 1000.0))
            .collect();
        s.push_str(&super::ab::render(2, &columns, &[("p99 to verdict", p99)]));
        for g in block {
            for line in
                super::ab::sentences(&g.strategy, g.trials, &g.rates, &g.reasons, &g.signatures)
            {
                let _ = writeln!(s, "  {line}");
            }
        }
        i = end;
    }
    s
}
