//! Analysis of result CSVs: `lab report` (markdown tables, [`report`]) and
//! `lab plot` (charts, [`plot`]).
//!
//! A results DIR holds a `trials.csv` (written by `lab run` under
//! `results/<run-id>/`, or by `lab soak --out DIR`); a DIR without one is
//! searched below for every `trials.csv` (so `lab report results/baseline`
//! reads every run under it). The rows of several DIRs are merged (shards,
//! runs of different scenarios) and grouped by scenario, strategy and, for a
//! soak that swept a parameter, the swept value.

mod group;
pub mod markdown;
pub mod plot;
pub mod png;
pub mod report;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::record::csv::read_rows;
use crate::record::row::{schemas_read, TrialRow, OLDEST_SCHEMA, SCHEMA};
use crate::record::trust;
use crate::verdict::Verdict;

pub use crate::scenario::sweep::{sweep_unit, SweepUnit, SweepValue};
pub use group::Group;

pub use crate::record::csv::TRIALS_CSV;

/// One CSV that was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvSource {
    /// The file's path, as found from the DIR given.
    pub path: PathBuf,
    /// Rows read from it.
    pub rows: usize,
}

/// One trial: its CSV row and its verdict, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The row as read.
    pub row: TrialRow,
    /// `row.verdict`, parsed.
    pub verdict: Verdict,
}

/// The merged rows of one or more results DIRs.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// The CSVs read, in order.
    pub sources: Vec<CsvSource>,
    /// Every trial, in the order read.
    pub trials: Vec<Row>,
}

/// A verdict by its name (`pass`, `early-death`, ...).
pub fn parse_verdict(name: &str) -> Option<Verdict> {
    Verdict::ALL.into_iter().find(|v| v.name() == name)
}

/// The `trials.csv` files of `dir`: `dir/trials.csv` if there is one, else
/// every `trials.csv` below `dir` (sorted by path); `dir` itself when it is
/// a file.
///
/// Only what no other user can change is read: `dir` must be a directory
/// of the caller's ([`trust::check_dir`]; a file, in one), and each
/// directory walked and CSV found the caller's or root's and not writable
/// by others ([`trust::check_path`]).
///
/// # Errors
/// [`LabError::Input`] naming `dir` when it does not exist, cannot be
/// listed, holds no `trials.csv`, or is not the caller's (with what to
/// do).
pub fn find_csvs(dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    let meta =
        std::fs::metadata(dir).map_err(|e| LabError::Input(format!("{}: {e}", dir.display())))?;
    if meta.is_file() {
        trust::check_file(dir)?;
        return Ok(vec![dir.to_path_buf()]);
    }
    if !meta.is_dir() {
        let mode = std::os::unix::fs::MetadataExt::mode(&meta);
        let kind = crate::input::type_name(rustix::fs::FileType::from_raw_mode(mode));
        return Err(LabError::Input(format!(
            "{}: is {kind}; give a results directory or a {TRIALS_CSV}",
            dir.display()
        )));
    }
    trust::check_dir(dir)?;
    let direct = dir.join(TRIALS_CSV);
    if direct.exists() {
        trust::check_path(&direct)?;
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
                trust::check_path(&path)?;
                let csv = path.join(TRIALS_CSV);
                if csv.is_file() {
                    trust::check_path(&csv)?;
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
pub fn read_trials(path: &Path) -> Result<Vec<Row>, LabError> {
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
            Some(verdict) => Ok(Row { row, verdict }),
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
/// schema outside [`OLDEST_SCHEMA`]..=[`SCHEMA`], with a message that says
/// so (rather than the column a row of an older schema lacks).
fn check_schema(path: &Path) -> Result<(), LabError> {
    let input = |e: &dyn std::fmt::Display| LabError::Input(format!("{}: {e}", path.display()));
    let (file, _) = crate::input::open_regular(path).map_err(|e| input(&e))?;
    let mut reader = csv::Reader::from_reader(file);
    let headers = reader.headers().map_err(|e| input(&e))?.clone();
    if headers.is_empty() {
        return Ok(()); // an empty file: no rows
    }
    let Some(col) = headers.iter().position(|h| h == "schema") else {
        return Err(input(&format!(
            "not a trials CSV of the lab (no `schema` column; this lab reads {})",
            schemas_read()
        )));
    };
    if let Some(record) = reader.records().next() {
        let record = record.map_err(|e| input(&e))?;
        let found = record.get(col).unwrap_or("");
        let known = found
            .trim()
            .parse::<u32>()
            .is_ok_and(|n| (OLDEST_SCHEMA..=SCHEMA).contains(&n));
        if !known {
            return Err(input(&format!(
                "schema {found} (this lab reads {})",
                schemas_read()
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
                ds.sources.push(CsvSource {
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
                Some(verdict) => Ok(Row { row, verdict }),
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
    pub trials: Vec<&'a Row>,
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
            let mine: Vec<&Row> = self
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
