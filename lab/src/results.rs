//! Result files: one CSV row per trial, streamed and flushed as trials end,
//! under `results/<run-id>/trials.csv`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Version of the CSV header; bumped on any change of columns.
pub const SCHEMA: u32 = 3;

/// One CSV row: one trial.
#[derive(Debug, Serialize)]
pub struct TrialRow<'a> {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The run this trial belongs to.
    pub run_id: &'a str,
    /// Scenario name.
    pub scenario: &'a str,
    /// Hash of the scenario file.
    pub scenario_hash: &'a str,
    /// Hash of the plan.
    pub plan_hash: &'a str,
    /// The plan's seed.
    pub seed: u64,
    /// Trial index within the run and strategy.
    pub trial: u64,
    /// Strategy name.
    pub strategy: &'a str,
    /// Create axis.
    pub create: &'a str,
    /// Parent-death axis.
    pub death: &'a str,
    /// Observe axis.
    pub observe: &'a str,
    /// Whether the canonical path's guards were on.
    pub guards: bool,
    /// Verdict.
    pub verdict: &'a str,
    /// Orphans counted.
    pub orphans: u32,
    /// Hung processes counted.
    pub hung: u32,
    /// Time to verdict (µs).
    pub time_to_verdict_us: u64,
    /// Trial duration, cleanup included (µs).
    pub duration_us: u64,
    /// Latency of a slow cascade (µs), if one was seen.
    pub slow_cascade_us: Option<u64>,
    /// Cascade window used (µs).
    pub window_us: u64,
    /// What ended the tree.
    pub kill_rung: &'a str,
    /// Nodes that reported `created`.
    pub nodes_spawned: u32,
    /// `cgroup` or `subreaper`.
    pub cgroup_mode: &'a str,
    /// The lab's version.
    pub lab_version: &'a str,
    /// Kernel release.
    pub kernel: &'a str,
    /// Node paths of survivors or blocked processes, space-separated.
    pub survivors: String,
    /// Why, for every verdict but pass.
    pub reason: &'a str,
    /// The teardown rung in effect when each node died, `path=RUNG`,
    /// space-separated.
    pub node_rungs: String,
    /// Kill targets the `/proc` oracle read as alive right after the kill
    /// although their pidfd reported the exit (legacy observe axis only).
    pub false_orphans: u32,
    /// Signatures named in the trial, space-separated (`writer-elsewhere
    /// duplicated-stdio`).
    pub signatures: String,
    /// For a `panic`: the guard's site in the lab's source (`file:line`);
    /// its reason is in `reason`.
    pub panic_site: &'a str,
    /// The trial's diagnosis (JSON; the readable text sits beside it with
    /// the extension `.txt`), for hang and orphan verdicts.
    pub diagnosis: &'a str,
    /// The command that replays this trial.
    pub replay: &'a str,
}

/// A CSV file that is flushed after every row, so a crash loses at most the
/// trials in flight.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl CsvSink {
    /// Create `dir/trials.csv` (and `dir`).
    ///
    /// # Errors
    /// Errors creating the directory or the file.
    pub fn create(dir: &Path) -> io::Result<CsvSink> {
        fs::create_dir_all(dir)?;
        let path = dir.join("trials.csv");
        let writer = csv::Writer::from_writer(File::create(&path)?);
        Ok(CsvSink { path, writer })
    }

    /// Append one row and flush it.
    ///
    /// # Errors
    /// Write errors.
    pub fn write(&mut self, row: &TrialRow<'_>) -> io::Result<()> {
        self.writer.serialize(row).map_err(io::Error::other)?;
        self.writer.flush()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The kernel release (`uname -r`).
pub fn kernel() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// A run id: UTC time to the second, the scenario, the seed and the lab's PID
/// (`20261123T161926Z-nested-s7-4711`).
pub fn run_id(scenario: &str, seed: u64) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{stamp}-{scenario}-s{seed}-{}", std::process::id())
}
