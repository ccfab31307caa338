//! The record: the result directory of a run and what a finished trial
//! leaves in it, written in one place for `lab run`, `lab soak` and
//! whatever else runs trials (`results/<run-id>/trials.csv` and the files
//! beside it). A [`Recorder`] writes a trial's diagnosis (`DIR/diagnosis/STEM.json` and `.txt`, for hangs and
//! orphans), its CSV row (`DIR/trials.csv`, flushed at once) and counts it
//! in its [`Tally`]; [`RunCommand`] builds the command that replays it.
//!
//! A program run as the root (`lab exec`) that did not pass leaves its
//! stdout and stderr (`DIR/output/STEM.stdout` and `.stderr`, the last
//! 1 MiB of each) and its timeline (`DIR/trace/STEM.json`, Chrome
//! trace-event JSON that Perfetto opens), bounded per cell like diagnoses.
//!
//! Diagnoses are bounded: at most [`Recorder::limit_diagnoses`] (by default
//! [`DEFAULT_MAX_DIAGNOSES`]) per scenario x strategy cell (a swept value
//! is a cell of its own). Beyond that a trial's diagnosis files are not
//! written, its row keeps an empty diagnosis path, and its cell counts the
//! diagnosis as unwritten ([`Counts::diagnoses_unwritten`]). The recorder is
//! the one place that decides ([`Recorder::record`]).
//!
//! - [`dir`]: the run id and the one place that makes a run's directory;
//! - [`row`]: the row schema ([`TrialRow`], [`RunContext`],
//!   [`TrialSource`]);
//! - [`csv`]: `trials.csv` written row by row, read back, and a row torn by
//!   a crash dropped;
//! - [`files`]: the diagnosis, output, trace and log files, and the safety
//!   of every file the lab writes (never through a symlink);
//! - [`tally`]: [`Counts`] of one group and the [`Tally`] of every group;
//! - [`trust`]: which directories are the caller's, opened without
//!   following another user's symlink ([`trust::OwnDir`]);
//! - [`replay`]: the `lab run` replay command;
//! - [`ab`]: the A/B table and the plain-words sentence of a failing
//!   strategy.

pub mod ab;
pub mod csv;
pub mod dir;
pub mod files;
pub mod replay;
pub mod row;
pub mod tally;
pub mod trust;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::LabError;
use crate::strategy::Strategy;
use crate::verdict::{Outcome, Verdict};

use self::csv::CsvSink;
pub use replay::RunCommand;
pub use row::{RunContext, TrialRow, TrialSource};
pub use tally::{Counts, GroupSummary, Tally};

/// Diagnoses written per scenario x strategy cell when `--max-diagnoses`
/// is not given.
pub const DEFAULT_MAX_DIAGNOSES: u64 = 20;

/// One finished trial, as the recorder needs it.
#[derive(Clone, Copy, Debug)]
pub struct Finished<'a> {
    /// Where it came from: scenario, plan, seed, index, swept value.
    pub source: TrialSource<'a>,
    /// Its strategy.
    pub strategy: &'a Strategy,
    /// How it ended (its diagnosis, if any, is written).
    pub outcome: &'a Outcome,
    /// The name of its diagnosis files, without extension (characters other
    /// than letters, digits, `-` and `.` become `_`).
    pub stem: &'a str,
    /// The command that replays it.
    pub replay: &'a str,
}

/// What [`Recorder::record`] wrote.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The CSV row.
    pub row: TrialRow,
    /// The diagnosis' JSON, when the trial had one and it was written.
    pub diagnosis: Option<PathBuf>,
    /// Whether the trial had a diagnosis that was not written: its cell
    /// had its `--max-diagnoses` already.
    pub unwritten: bool,
}

/// The verdicts of each cell (`scenario/strategy/sweep value`) that have
/// had their `--max-diagnoses`, shared between the recorder, which fills
/// it, and the code that builds trial requests on the pool's threads, which
/// asks for a brief diagnosis of those verdicts
/// (`TrialRequest::brief_verdicts` of `trial::protocol`): a diagnosis that will not be written
/// costs only what finds its signatures, and a verdict still under its
/// bound (a rare hang in a cell of orphans) is diagnosed in full.
#[derive(Clone, Debug, Default)]
pub struct DiagnosedCells {
    /// `cell/verdict` keys.
    full: Arc<Mutex<HashSet<String>>>,
    /// `--max-diagnoses 0`: every verdict of every cell is full from the
    /// start.
    none: bool,
}

impl DiagnosedCells {
    /// The verdicts of the cell of `scenario`, `strategy` and `sweep_value`
    /// (empty when nothing is swept) that have had their diagnoses.
    pub fn brief_verdicts(
        &self,
        scenario: &str,
        strategy: &str,
        sweep_value: &str,
    ) -> Vec<Verdict> {
        if self.none {
            return Verdict::ALL.to_vec();
        }
        let cell = cell_key(scenario, strategy, sweep_value);
        let Ok(full) = self.full.lock() else {
            return Vec::new();
        };
        Verdict::ALL
            .into_iter()
            .filter(|v| full.contains(&verdict_key(&cell, v.name())))
            .collect()
    }

    fn insert(&self, key: String) {
        if let Ok(mut s) = self.full.lock() {
            s.insert(key);
        }
    }
}

/// The name of a cell: `scenario/strategy/sweep value`.
fn cell_key(scenario: &str, strategy: &str, sweep_value: &str) -> String {
    format!("{scenario}/{strategy}/{sweep_value}")
}

/// The name of one verdict of a cell: `cell/verdict`.
fn verdict_key(cell: &str, verdict: &str) -> String {
    format!("{cell}/{verdict}")
}

/// Writes what finished trials leave under one directory and counts them.
/// A write error does not stop the recording: the first one is kept for
/// [`Recorder::check`].
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    ctx: RunContext,
    csv: CsvSink,
    tally: Tally,
    max_diagnoses: u64,
    /// Output files written per cell (`scenario/strategy/sweep value`),
    /// bounded like diagnoses.
    outputs: std::collections::HashMap<String, u64>,
    /// Diagnoses written per verdict of each cell (`cell/verdict`), those
    /// of rows counted from an earlier invocation included.
    written: std::collections::HashMap<String, u64>,
    /// The verdicts of each cell whose diagnoses are all written.
    diagnosed: DiagnosedCells,
    error: Option<LabError>,
}

impl Recorder {
    /// Record into a new `dir/trials.csv` (and `dir`, a directory of the
    /// caller's: [`trust::OwnDir`]), created with its header, never over
    /// anything ([`CsvSink::create`]).
    ///
    /// # Errors
    /// [`LabError::Input`] when something (a symlink included) is already
    /// at `dir/trials.csv`, or `dir` is not the caller's; [`LabError::Io`]
    /// when the directory or the file cannot be created.
    pub fn create(dir: &Path, ctx: RunContext) -> Result<Recorder, LabError> {
        let own = trust::OwnDir::open(dir, trust::Missing::Create)?;
        let csv = CsvSink::create(&own).map_err(|e| cannot_write(dir, e))?;
        Ok(Recorder::with(dir, ctx, csv))
    }

    /// Record at the end of `dir/trials.csv` (in `dir`, open as
    /// [`trust::OwnDir`]), created or given its header when it has none
    /// ([`CsvSink::append`]): a resumed soak. Never through a symlink.
    ///
    /// # Errors
    /// [`LabError::Input`] when `dir/trials.csv` is a symlink;
    /// [`LabError::Io`] when the file cannot be opened or created.
    pub fn append(dir: &trust::OwnDir, ctx: RunContext) -> Result<Recorder, LabError> {
        let csv = CsvSink::append(dir).map_err(|e| cannot_write(dir.path(), e))?;
        let dir = dir.path();
        Ok(Recorder::with(dir, ctx, csv))
    }

    /// Record a new run of `scenario` with `seed` under `out`: its run id,
    /// its directory `out/<run-id>` ([`dir::create_run_dir`]) and its new
    /// `trials.csv` ([`Recorder::create`]).
    ///
    /// # Errors
    /// [`LabError::Io`] when the directory or the file cannot be created.
    pub fn new_run(out: &Path, scenario: &str, seed: u64) -> Result<Recorder, LabError> {
        let mut ctx = RunContext::new(scenario, seed);
        let run_dir = dir::create_run_dir(out, &mut ctx.run_id)?;
        Recorder::create(&run_dir, ctx)
    }

    fn with(dir: &Path, ctx: RunContext, csv: CsvSink) -> Recorder {
        Recorder {
            dir: dir.to_path_buf(),
            ctx,
            csv,
            tally: Tally::default(),
            max_diagnoses: DEFAULT_MAX_DIAGNOSES,
            outputs: std::collections::HashMap::new(),
            written: std::collections::HashMap::new(),
            diagnosed: DiagnosedCells::default(),
            error: None,
        }
    }

    /// Write at most `n` diagnoses per verdict of each scenario x strategy
    /// cell (rows counted from an earlier invocation included): a rare
    /// verdict is diagnosed even where a common one has had its `n`. The
    /// default is [`DEFAULT_MAX_DIAGNOSES`].
    pub fn limit_diagnoses(&mut self, n: u64) -> &mut Recorder {
        self.max_diagnoses = n;
        self.diagnosed.none = n == 0;
        self
    }

    /// The verdicts of each cell that have had their diagnoses, kept up to
    /// date as trials are recorded (a handle on the recorder's own set).
    pub fn diagnosed_cells(&self) -> DiagnosedCells {
        self.diagnosed.clone()
    }

    /// The directory it records into (the run's, or the soak's).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The most diagnoses written per cell.
    pub fn max_diagnoses(&self) -> u64 {
        self.max_diagnoses
    }

    /// Write what trial `t` leaves: its diagnosis (if it has one and its
    /// verdict has not had its `--max-diagnoses` in its cell yet), its CSV
    /// row (naming the diagnosis' path, empty when none was written, and
    /// the replay command), and count the row.
    pub fn record(&mut self, t: &Finished<'_>) -> Recorded {
        let mut row = TrialRow::new(&self.ctx, &t.source, t.strategy, t.outcome, "", t.replay);
        let cell = cell_key(&row.scenario, &row.strategy, &row.sweep_value);
        let key = verdict_key(&cell, &row.verdict);
        let written = self.written.get(&key).copied().unwrap_or(0);
        let room = written < self.max_diagnoses;
        let unwritten = t.outcome.diagnosis.is_some() && !room;
        let diagnosis = match &t.outcome.diagnosis {
            Some(_) if !room => None,
            Some(d) => match files::write_diagnosis(&self.dir, t.stem, d) {
                Ok(path) => Some(path),
                Err(e) => {
                    let what = format!("cannot write a diagnosis under {}", self.dir.display());
                    self.failed(LabError::io(what, e));
                    None
                }
            },
            None => None,
        };
        if let Some(p) = &diagnosis {
            row.diagnosis = p.display().to_string();
        }
        self.count_diagnosis(key, diagnosis.is_some());
        if t.outcome.output.is_some() || t.outcome.trace.is_some() {
            let n = self.outputs.entry(cell).or_insert(0);
            if *n < self.max_diagnoses {
                *n += 1;
                let written = t
                    .outcome
                    .output
                    .as_ref()
                    .map_or(Ok(()), |out| {
                        files::write_output(&self.dir, t.stem, out).map(drop)
                    })
                    .and_then(|()| {
                        t.outcome.trace.as_ref().map_or(Ok(()), |trace| {
                            files::write_trace(&self.dir, t.stem, trace).map(drop)
                        })
                    });
                if let Err(e) = written {
                    let what = format!(
                        "cannot write a program's output under {}",
                        self.dir.display()
                    );
                    self.failed(LabError::io(what, e));
                }
            }
        }
        if let Err(e) = self.csv.write(&row) {
            let what = format!("cannot write {}", self.csv.path().display());
            self.failed(LabError::io(what, e));
        }
        self.tally.add(&row);
        if unwritten {
            self.tally.add_unwritten(&row);
        }
        Recorded {
            row,
            diagnosis,
            unwritten,
        }
    }

    /// Count a row written earlier (by an invocation that is resumed). Its
    /// diagnosis, if written, counts against its cell's
    /// `--max-diagnoses`; a hang or orphan without one (the lab diagnoses
    /// every hang and orphan) counts as unwritten.
    pub fn count(&mut self, row: &TrialRow) {
        self.tally.add(row);
        let diagnosed = [Verdict::Hang.name(), Verdict::Orphan.name()];
        if row.diagnosis.is_empty() && diagnosed.contains(&row.verdict.as_str()) {
            self.tally.add_unwritten(row);
        }
        let cell = cell_key(&row.scenario, &row.strategy, &row.sweep_value);
        self.count_diagnosis(verdict_key(&cell, &row.verdict), !row.diagnosis.is_empty());
    }

    /// Count a diagnosis of the verdict `key` (`cell/verdict`) when one was
    /// `written`, and mark the verdict full once it has its
    /// `--max-diagnoses`.
    fn count_diagnosis(&mut self, key: String, written: bool) {
        let n = self.written.entry(key.clone()).or_insert(0);
        *n += u64::from(written);
        if *n >= self.max_diagnoses {
            self.diagnosed.insert(key);
        }
    }

    /// The counts so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The counts so far, leaving the tally empty (a new group of trials
    /// starts).
    pub fn take_tally(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }

    /// The CSV written.
    pub fn csv_path(&self) -> &Path {
        self.csv.path()
    }

    /// What the rows share: run id, lab version, kernel.
    pub fn context(&self) -> &RunContext {
        &self.ctx
    }

    /// Whether a write has failed since the last [`Recorder::check`] (a
    /// soak stops starting trials then).
    pub fn failing(&self) -> bool {
        self.error.is_some()
    }

    /// The first write error since the last check, if any.
    ///
    /// # Errors
    /// [`LabError::Io`] naming what could not be written.
    pub fn check(&mut self) -> Result<(), LabError> {
        self.error.take().map_or(Ok(()), Err)
    }

    fn failed(&mut self, e: LabError) {
        self.error.get_or_insert(e);
    }
}

/// Why results under `dir` cannot be written. Something already at the
/// name of a file the lab makes for itself (a planted file or symlink: it is
/// never written through) is bad input, exit 2.
fn cannot_write(dir: &Path, e: std::io::Error) -> LabError {
    if e.kind() == std::io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ELOOP) {
        return LabError::Input(format!(
            "cannot write results under {}: {}/trials.csv is already there, or is a symlink; \
             the lab writes only files of its own making: pick another directory",
            dir.display(),
            dir.display()
        ));
    }
    LabError::io(format!("cannot write results under {}", dir.display()), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnoses_beyond_the_limit_per_verdict_are_counted_not_written_and_earlier_ones_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), RunContext::new("nested", 7)).unwrap();
        rec.limit_diagnoses(2);
        let legacy = Strategy::parse("legacy").unwrap();
        let canonical = Strategy::parse("canonical").unwrap();
        let mut orphan = Outcome::error("left orphans".into(), 10);
        orphan.verdict = Verdict::Orphan;
        orphan.diagnosis = Some(crate::forensics::Diagnosis::default());
        let source = |trial| TrialSource {
            scenario: "nested",
            scenario_hash: "h",
            plan_hash: "p",
            seed: 7,
            trial,
            sweep: None,
        };
        // An earlier invocation wrote one diagnosis of legacy's and left a
        // hang's unwritten.
        let earlier = TrialRow::new(
            rec.context(),
            &source(0),
            &legacy,
            &orphan,
            "d/x.json",
            "lab run nested",
        );
        rec.count(&earlier);
        let mut hang = orphan.clone();
        hang.verdict = Verdict::Hang;
        rec.count(&TrialRow::new(
            rec.context(),
            &source(1),
            &legacy,
            &hang,
            "",
            "lab run nested",
        ));
        let cells = rec.diagnosed_cells();
        let mut wrote = Vec::new();
        for (trial, strategy, outcome) in [
            (2, &legacy, &orphan),
            (3, &legacy, &orphan),
            (4, &legacy, &orphan),
            (5, &legacy, &hang),
            (0, &canonical, &orphan),
        ] {
            let stem = format!("{}.{trial}", strategy.name);
            let r = rec.record(&Finished {
                source: source(trial),
                strategy,
                outcome,
                stem: &stem,
                replay: "lab run nested",
            });
            assert_eq!(r.diagnosis.is_some(), !r.row.diagnosis.is_empty());
            assert_eq!(r.unwritten, r.diagnosis.is_none());
            wrote.push(r.diagnosis.is_some());
        }
        rec.check().unwrap();
        // legacy's orphans: one earlier, one now (trial 2), then none; its
        // hang has a bound of its own (the earlier hang wrote none), and
        // canonical is a cell of its own.
        assert_eq!(wrote, [true, false, false, true, true]);
        // What the requests of the next trials ask to be brief.
        assert_eq!(
            cells.brief_verdicts("nested", "legacy", ""),
            [Verdict::Orphan]
        );
        assert_eq!(cells.brief_verdicts("nested", "canonical", ""), []);
        rec.limit_diagnoses(0);
        assert_eq!(
            rec.diagnosed_cells().brief_verdicts("x", "y", ""),
            Verdict::ALL
        );
        let groups = rec.tally().summaries();
        let unwritten: Vec<(&str, u64)> = groups
            .iter()
            .map(|g| (g.strategy.as_str(), g.diagnoses_unwritten))
            .collect();
        assert_eq!(unwritten, [("canonical", 0), ("legacy", 3)]);
        let files = std::fs::read_dir(dir.path().join("diagnosis"))
            .unwrap()
            .count();
        assert_eq!(files, 6, "three diagnoses, each .json and .txt");
        let rows = self::csv::read_rows(rec.csv_path()).unwrap();
        assert_eq!(rows.len(), 5);
    }
}
