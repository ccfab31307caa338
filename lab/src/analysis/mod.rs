//! Analysis of result CSVs: `lab report` (markdown tables, [`report`]) and
//! `lab plot` (charts, [`plot`]).
//!
//! A results DIR holds a `trials.csv` (written by `lab run` under
//! `results/<run-id>/`, or by `lab soak --out DIR`); a DIR without one is
//! searched below for every `trials.csv` (so `lab report results/baseline`
//! reads every run under it). The rows of several DIRs are merged (shards,
//! runs of different scenarios) and grouped by scenario, strategy and, for a
//! soak that swept a parameter, the swept value.

pub mod plot;
pub mod png;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::results::{read_rows, TrialRow, SCHEMA};
use crate::stats::{percentile_sorted, Rate};
use crate::verdict::Verdict;

/// The file a results DIR holds.
pub const TRIALS_CSV: &str = "trials.csv";

/// One CSV that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file's path, as found from the DIR given.
    pub path: PathBuf,
    /// Rows read from it.
    pub rows: usize,
}

/// One trial: its CSV row and its verdict, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// The row as read.
    pub row: TrialRow,
    /// `row.verdict`, parsed.
    pub verdict: Verdict,
}

/// The merged rows of one or more results DIRs.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// The CSVs read, in order.
    pub sources: Vec<Source>,
    /// Every trial, in the order read.
    pub trials: Vec<Trial>,
}

/// A verdict by its name (`pass`, `early-death`, ...).
pub fn parse_verdict(name: &str) -> Option<Verdict> {
    Verdict::ALL.into_iter().find(|v| v.name() == name)
}

/// The `trials.csv` files of `dir`: `dir/trials.csv` if there is one, else
/// every `trials.csv` below `dir` (sorted by path); `dir` itself when it is
/// a file.
///
/// # Errors
/// [`LabError::Input`] naming `dir` when it does not exist, cannot be
/// listed, or holds no `trials.csv`.
pub fn find_csvs(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let meta =
        std::fs::metadata(dir).map_err(|e| LabError::Input(format!("{}: {e}", dir.display())))?;
    if meta.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let direct = dir.join(TRIALS_CSV);
    if direct.exists() {
        return Ok(vec![direct]);
    }
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| LabError::Input(format!("{}: {e}", d.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| LabError::Input(format!("{}: {e}", d.display())))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let csv = path.join(TRIALS_CSV);
                if csv.is_file() {
                    found.push(csv);
                } else {
                    pending.push(path);
                }
            }
        }
    }
    if found.is_empty() {
        return Err(LabError::Input(format!(
            "{}: no {TRIALS_CSV} in it or below it",
            dir.display()
        )));
    }
    found.sort();
    Ok(found)
}

/// Read one CSV of trial rows.
///
/// # Errors
/// [`LabError::Input`] naming the file: unreadable, not a CSV of
/// [`TrialRow`]s, a schema other than [`SCHEMA`], or an unknown verdict.
pub fn read_trials(path: &Path) -> Result<Vec<Trial>, LabError> {
    check_schema(path)?;
    let rows = read_rows(path).map_err(|e| {
        let msg = e.to_string();
        // `read_rows` names the file in its own parse errors, not in I/O ones.
        if msg.starts_with(&path.display().to_string()) {
            LabError::Input(msg)
        } else {
            LabError::Input(format!("{}: {msg}", path.display()))
        }
    })?;
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| match parse_verdict(&row.verdict) {
            Some(verdict) => Ok(Trial { row, verdict }),
            None => Err(LabError::Input(format!(
                "{}: row {}: unknown verdict `{}`",
                path.display(),
                i + 1,
                row.verdict
            ))),
        })
        .collect()
}

/// Refuse a CSV whose header has no `schema` column or whose first row has a
/// schema other than [`SCHEMA`], with a message that says so (rather than
/// the column a row of an older schema lacks).
fn check_schema(path: &Path) -> Result<(), LabError> {
    let input = |e: &dyn std::fmt::Display| LabError::Input(format!("{}: {e}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|e| input(&e))?;
    let headers = reader.headers().map_err(|e| input(&e))?.clone();
    if headers.is_empty() {
        return Ok(()); // an empty file: no rows
    }
    let Some(col) = headers.iter().position(|h| h == "schema") else {
        return Err(input(&format!(
            "not a trials CSV of the lab (no `schema` column; this lab reads schema {SCHEMA})"
        )));
    };
    if let Some(record) = reader.records().next() {
        let record = record.map_err(|e| input(&e))?;
        let found = record.get(col).unwrap_or("");
        if found.trim() != SCHEMA.to_string() {
            return Err(input(&format!(
                "schema {found} (this lab reads schema {SCHEMA})"
            )));
        }
    }
    Ok(())
}

impl Dataset {
    /// Read and merge the trials of `dirs` (see [`find_csvs`]).
    ///
    /// # Errors
    /// [`LabError::Input`] naming the DIR or file: a DIR that does not exist
    /// or holds no CSV, a CSV that cannot be read or is of another schema, a
    /// trial read twice (same run, scenario, strategy, swept value, seed and
    /// trial index, as when a merged CSV and its shards are both given), or
    /// no trial at all. A file reached twice (a DIR and a run below it) is
    /// read once.
    pub fn load(dirs: &[PathBuf]) -> Result<Dataset, LabError> {
        if dirs.is_empty() {
            return Err(LabError::Input("no results DIR given".into()));
        }
        let mut ds = Dataset::default();
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        let mut files = std::collections::HashSet::new();
        for dir in dirs {
            for path in find_csvs(dir)? {
                // A file reached twice (a DIR and a run below it) is read once.
                if !files.insert(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())) {
                    continue;
                }
                let trials = read_trials(&path)?;
                for t in &trials {
                    let r = &t.row;
                    let key = format!(
                        "{}\u{0}{}\u{0}{}\u{0}{}={}\u{0}{}\u{0}{}",
                        r.run_id,
                        r.scenario,
                        r.strategy,
                        r.sweep_key,
                        r.sweep_value,
                        r.seed,
                        r.trial
                    );
                    if let Some(first) = seen.insert(key, path.clone()) {
                        if first == path {
                            return Err(LabError::Input(format!(
                                "{}: trial {} of run {} ({}, {}) appears twice",
                                path.display(),
                                r.trial,
                                r.run_id,
                                r.scenario,
                                r.strategy
                            )));
                        }
                        return Err(LabError::Input(format!(
                            "{}: trial {} of run {} ({}, {}) was already read from {}: \
                             give each run once (a merged CSV or its shards, not both)",
                            path.display(),
                            r.trial,
                            r.run_id,
                            r.scenario,
                            r.strategy,
                            first.display()
                        )));
                    }
                }
                ds.sources.push(Source {
                    path,
                    rows: trials.len(),
                });
                ds.trials.extend(trials);
            }
        }
        if ds.trials.is_empty() {
            let files: Vec<String> = ds
                .sources
                .iter()
                .map(|s| s.path.display().to_string())
                .collect();
            return Err(LabError::Input(format!(
                "no trials in {}",
                files.join(", ")
            )));
        }
        Ok(ds)
    }

    /// A dataset of `rows` (tests, and callers that hold rows already).
    ///
    /// # Errors
    /// [`LabError::Input`] for a row with an unknown verdict.
    pub fn from_rows(rows: Vec<TrialRow>) -> Result<Dataset, LabError> {
        let trials = rows
            .into_iter()
            .map(|row| match parse_verdict(&row.verdict) {
                Some(verdict) => Ok(Trial { row, verdict }),
                None => Err(LabError::Input(format!(
                    "unknown verdict `{}`",
                    row.verdict
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset {
            sources: Vec::new(),
            trials,
        })
    }

    /// The distinct values of `field` over every trial, in order of first
    /// appearance.
    pub fn distinct(&self, field: impl Fn(&TrialRow) -> &str) -> Vec<String> {
        distinct(self.trials.iter().map(|t| field(&t.row)))
    }

    /// The scenarios, in order of first appearance, each with its trials.
    pub fn scenarios(&self) -> Vec<ScenarioData<'_>> {
        self.distinct(|r| &r.scenario)
            .into_iter()
            .map(|name| ScenarioData {
                trials: self
                    .trials
                    .iter()
                    .filter(|t| t.row.scenario == name)
                    .collect(),
                name,
            })
            .collect()
    }
}

/// Distinct strings in order of first appearance.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

/// The trials of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioData<'a> {
    /// Scenario name.
    pub name: String,
    /// Its trials, in the order read.
    pub trials: Vec<&'a Trial>,
}

impl ScenarioData<'_> {
    /// The distinct values of `field`, in order of first appearance.
    pub fn distinct(&self, field: impl Fn(&TrialRow) -> &str) -> Vec<String> {
        distinct(self.trials.iter().map(|t| field(&t.row)))
    }

    /// The strategies, in order of first appearance.
    pub fn strategies(&self) -> Vec<String> {
        self.distinct(|r| &r.strategy)
    }

    /// The swept parameters (non-empty `sweep_key`s), in order of first
    /// appearance.
    pub fn sweep_keys(&self) -> Vec<String> {
        self.distinct(|r| &r.sweep_key)
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// The verdicts a table or chart of this scenario shows: `pass`,
    /// `orphan`, `hang` and `panic` always, then every other verdict seen,
    /// in [`Verdict::ALL`] order.
    pub fn verdicts(&self) -> Vec<Verdict> {
        Verdict::ALL
            .into_iter()
            .filter(|v| {
                matches!(
                    v,
                    Verdict::Pass | Verdict::Orphan | Verdict::Hang | Verdict::Panic
                ) || self.trials.iter().any(|t| t.verdict == *v)
            })
            .collect()
    }

    /// One group per strategy, over every trial of the strategy (all swept
    /// values together), in strategy order.
    pub fn by_strategy(&self) -> Vec<Group> {
        self.strategies()
            .into_iter()
            .map(|s| {
                Group::of(
                    &self.name,
                    None,
                    self.trials.iter().copied().filter(|t| t.row.strategy == s),
                )
            })
            .collect()
    }

    /// One group per strategy and value of the swept parameter `key`, in
    /// strategy order, then by [`SweepValue`] order.
    pub fn by_sweep(&self, key: &str) -> Vec<Group> {
        let mut groups = Vec::new();
        for s in self.strategies() {
            let mine: Vec<&Trial> = self
                .trials
                .iter()
                .copied()
                .filter(|t| t.row.strategy == s && t.row.sweep_key == key)
                .collect();
            let mut values: Vec<SweepValue> =
                distinct(mine.iter().map(|t| t.row.sweep_value.as_str()))
                    .into_iter()
                    .map(|v| SweepValue::parse(key, &v))
                    .collect();
            values.sort_by(SweepValue::order);
            for v in values {
                let trials = mine.iter().copied().filter(|t| t.row.sweep_value == v.text);
                groups.push(Group::of(&self.name, Some(v.clone()), trials));
            }
        }
        groups
    }

    /// The groups of the report's table: per strategy for the trials without
    /// a sweep, and per strategy and swept value for each swept parameter.
    pub fn table_groups(&self) -> Vec<Group> {
        let mut groups = Vec::new();
        for s in self.strategies() {
            let plain = self
                .trials
                .iter()
                .copied()
                .filter(|t| t.row.strategy == s && t.row.sweep_key.is_empty());
            let g = Group::of(&self.name, None, plain);
            if g.trials > 0 {
                groups.push(g);
            }
        }
        for key in self.sweep_keys() {
            groups.extend(self.by_sweep(&key));
        }
        let order = self.strategies();
        let rank = |s: &str| order.iter().position(|o| o == s);
        // Stable: within a strategy, the unswept group, then sweep order.
        groups.sort_by_key(|g| rank(&g.strategy));
        groups
    }
}

/// The unit of a swept parameter's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepUnit {
    /// Durations (`5ms`, `1s`), as milliseconds.
    Millis,
    /// Plain numbers (`4`, `0.5`), or a number leading the text (`4x`).
    Number,
}

/// One value of a swept parameter, as written and as a number.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepValue {
    /// The parameter (`kill_delay`).
    pub key: String,
    /// The value as written in the CSV (`5ms`).
    pub text: String,
    /// The value as a number: a duration in ms, else the leading number;
    /// `None` when the text has no number.
    pub number: Option<(f64, SweepUnit)>,
}

impl SweepValue {
    /// Parse `text`: a plain number (`4`, `0.5`), a duration (`5ms`, `1.5s`,
    /// in ms), or text with a leading number (`4x`: 4).
    pub fn parse(key: &str, text: &str) -> SweepValue {
        let t = text.trim();
        let number = if let Ok(x) = t.parse::<f64>() {
            Some((x, SweepUnit::Number))
        } else if let Ok(d) = humantime::parse_duration(t) {
            Some((d.as_secs_f64() * 1000.0, SweepUnit::Millis))
        } else {
            // The longest leading prefix that is a number.
            (1..=t.len())
                .rev()
                .filter(|&i| t.is_char_boundary(i))
                .find_map(|i| t[..i].parse::<f64>().ok())
                .map(|x| (x, SweepUnit::Number))
        };
        SweepValue {
            key: key.into(),
            text: text.into(),
            number: number.filter(|(x, _)| x.is_finite()),
        }
    }

    /// The value as a number (see [`SweepValue::number`]).
    pub fn value(&self) -> Option<f64> {
        self.number.map(|(x, _)| x)
    }

    /// Order: values with a number by that number, then the rest by text.
    pub fn order(a: &SweepValue, b: &SweepValue) -> std::cmp::Ordering {
        match (a.value(), b.value()) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.text.cmp(&b.text)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.text.cmp(&b.text),
        }
    }
}

/// The unit shared by `values`: [`SweepUnit::Millis`] when every value is a
/// duration (a plain `0` counts as one), [`SweepUnit::Number`] when every
/// value has a number, `None` when some value has none.
pub fn sweep_unit(values: &[SweepValue]) -> Option<SweepUnit> {
    if values.iter().any(|v| v.number.is_none()) {
        return None;
    }
    let millis = values.iter().all(|v| match v.number {
        Some((_, SweepUnit::Millis)) => true,
        Some((x, SweepUnit::Number)) => x == 0.0,
        None => false,
    }) && values
        .iter()
        .any(|v| matches!(v.number, Some((_, SweepUnit::Millis))));
    Some(if millis {
        SweepUnit::Millis
    } else {
        SweepUnit::Number
    })
}

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
        trials: impl IntoIterator<Item = &'a Trial>,
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

/// `name` made safe for a file name: ASCII letters, digits, `.`, `-` and `_`
/// kept, anything else `_`.
pub fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// `items` joined with `, `, at most `max` of them and `+N more`.
pub fn list_some(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{}, +{} more", items[..max].join(", "), items.len() - max)
    }
}

#[cfg(test)]
pub(crate) mod tests;
