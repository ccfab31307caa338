//! Result files: one CSV row per trial, streamed and flushed as trials end,
//! under `results/<run-id>/trials.csv`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::forensics::Diagnosis;
use crate::strategy::Strategy;
use crate::verdict::Outcome;

/// Version of the CSV header; bumped on any change of columns (documented in
/// `docs/results-format.md`).
pub const SCHEMA: u32 = 5;

/// The oldest schema the readers accept: a schema 4 row (no
/// `pid_namespace` column) is read as a schema 5 row with `pid_namespace`
/// `none`, which is what every trial before schema 5 ran with.
pub const OLDEST_SCHEMA: u32 = 4;

/// What a reader says it reads, for its refusals: `schemas 4 to 5`.
pub fn schemas_read() -> String {
    format!("schemas {OLDEST_SCHEMA} to {SCHEMA}")
}

/// One CSV row: one trial. Written by `lab run` and `lab soak`, read back by
/// `lab merge`, `lab report` and `lab plot`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The run this trial belongs to.
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file.
    pub scenario_hash: String,
    /// Hash of the plan.
    pub plan_hash: String,
    /// The plan's seed.
    pub seed: u64,
    /// Trial index within the run, scenario and strategy.
    pub trial: u64,
    /// Strategy name.
    pub strategy: String,
    /// Create axis.
    pub create: String,
    /// Parent-death axis.
    pub death: String,
    /// Observe axis.
    pub observe: String,
    /// Whether the canonical path's guards were on.
    pub guards: bool,
    /// The swept scenario parameter (`kill_delay`, ...); empty when none.
    pub sweep_key: String,
    /// Its value in this trial, as written in the scenario (`5ms`).
    pub sweep_value: String,
    /// Verdict.
    pub verdict: String,
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
    pub kill_rung: String,
    /// Nodes that reported `created`.
    pub nodes_spawned: u32,
    /// `cgroup` or `subreaper`.
    pub cgroup_mode: String,
    /// The supervisor's PID namespace: `pid` (init of its own), `pid+user`
    /// (the same, in a user namespace of its own) or `none` (the lab's: a
    /// signal by a stale PID could reach the host's processes).
    #[serde(default)]
    pub pid_namespace: String,
    /// The lab's version.
    pub lab_version: String,
    /// Kernel release.
    pub kernel: String,
    /// Node paths of survivors or blocked processes, space-separated.
    pub survivors: String,
    /// Why, for every verdict but pass (a panic's reason included).
    pub reason: String,
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
    pub panic_site: String,
    /// The trial's diagnosis (JSON; the readable text sits beside it with
    /// the extension `.txt`), for hang and orphan verdicts.
    pub diagnosis: String,
    /// The command that replays this trial.
    pub replay: String,
}

/// What the rows of one run share.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The run id.
    pub run_id: String,
    /// The lab's version.
    pub lab_version: String,
    /// Kernel release.
    pub kernel: String,
}

impl RunContext {
    /// The context of a new run of `scenario` (names the run id) with `seed`.
    pub fn new(scenario: &str, seed: u64) -> RunContext {
        RunContext {
            run_id: run_id(scenario, seed),
            lab_version: env!("CARGO_PKG_VERSION").to_string(),
            kernel: kernel(),
        }
    }
}

/// Where one trial came from: its scenario, plan and place in the run.
#[derive(Clone, Copy, Debug)]
pub struct TrialSource<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Hash of the scenario file.
    pub scenario_hash: &'a str,
    /// Hash of the plan.
    pub plan_hash: &'a str,
    /// The plan's seed.
    pub seed: u64,
    /// Trial index.
    pub trial: u64,
    /// The swept parameter and its value, if any.
    pub sweep: Option<(&'a str, &'a str)>,
}

impl TrialRow {
    /// The row of trial `src` under `strategy` that ended with `o`; its
    /// diagnosis was written at `diagnosis` (empty: none).
    pub fn new(
        ctx: &RunContext,
        src: &TrialSource<'_>,
        strategy: &Strategy,
        o: &Outcome,
        diagnosis: &str,
        replay: &str,
    ) -> TrialRow {
        let (sweep_key, sweep_value) = src.sweep.unwrap_or(("", ""));
        TrialRow {
            schema: SCHEMA,
            run_id: ctx.run_id.clone(),
            scenario: src.scenario.into(),
            scenario_hash: src.scenario_hash.into(),
            plan_hash: src.plan_hash.into(),
            seed: src.seed,
            trial: src.trial,
            strategy: strategy.name.clone(),
            create: strategy.create.name().into(),
            death: strategy.death.name().into(),
            observe: strategy.observe.name().into(),
            guards: strategy.guards,
            sweep_key: sweep_key.into(),
            sweep_value: sweep_value.into(),
            verdict: o.verdict.name().into(),
            orphans: o.orphans,
            hung: o.hung,
            time_to_verdict_us: o.time_to_verdict_us,
            duration_us: o.duration_us,
            slow_cascade_us: o.slow_cascade_us,
            window_us: o.window_us,
            kill_rung: o.kill_rung.to_string(),
            nodes_spawned: o.nodes_spawned,
            cgroup_mode: if o.cgroup { "cgroup" } else { "subreaper" }.into(),
            pid_namespace: if o.pid_namespace.is_empty() {
                "none".into()
            } else {
                o.pid_namespace.clone()
            },
            lab_version: ctx.lab_version.clone(),
            kernel: ctx.kernel.clone(),
            survivors: o.survivors.join(" "),
            reason: o.reason.clone().unwrap_or_default(),
            node_rungs: crate::verdict::words(&o.node_rungs),
            false_orphans: o.false_orphans,
            signatures: crate::verdict::words(&o.signatures),
            panic_site: o.panic_site.clone().unwrap_or_default(),
            diagnosis: diagnosis.into(),
            replay: replay.into(),
        }
    }
}

/// Write the diagnosis `d` as `dir/diagnosis/STEM.json` and `STEM.txt`
/// (characters other than letters, digits, `-` and `.` in `stem` become
/// `_`); returns the JSON's path.
///
/// # Errors
/// Errors creating the directory or writing the files.
pub fn write_diagnosis(dir: &Path, stem: &str, d: &Diagnosis) -> io::Result<PathBuf> {
    let dir = dir.join("diagnosis");
    fs::create_dir_all(&dir)?;
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{stem}.json"));
    let json = serde_json::to_string_pretty(d).map_err(io::Error::other)?;
    fs::write(&path, json)?;
    fs::write(path.with_extension("txt"), d.render())?;
    Ok(path)
}

/// Every row of the CSV at `path`.
///
/// # Errors
/// Read errors; `InvalidData` for a row that does not parse or a schema
/// outside [`OLDEST_SCHEMA`]..=[`SCHEMA`] (naming the file, the line and
/// the schema found). Older rows come back as [`SCHEMA`] rows (see
/// [`OLDEST_SCHEMA`]).
pub fn read_rows(path: &Path) -> io::Result<Vec<TrialRow>> {
    let mut reader = csv::Reader::from_path(path).map_err(io::Error::other)?;
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize::<TrialRow>().enumerate() {
        let row = row.map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: row {}: {e}", path.display(), i + 1),
            )
        })?;
        let mut row = row;
        if !(OLDEST_SCHEMA..=SCHEMA).contains(&row.schema) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: row {}: schema {} (this lab reads {})",
                    path.display(),
                    i + 1,
                    row.schema,
                    schemas_read()
                ),
            ));
        }
        if row.schema < 5 {
            row.pid_namespace = "none".into();
            row.schema = SCHEMA;
        }
        rows.push(row);
    }
    Ok(rows)
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

    /// Open `dir/trials.csv` to append rows to it, creating it (and `dir`,
    /// with the header) when it does not exist yet. A last line cut short by
    /// a crash is completed with a line break first, so it stays one bad row
    /// rather than spoiling the next.
    ///
    /// # Errors
    /// Errors creating or opening the file.
    pub fn append(dir: &Path) -> io::Result<CsvSink> {
        let path = dir.join("trials.csv");
        if !path.exists() {
            return CsvSink::create(dir);
        }
        let text_ends_whole = fs::read(&path)?.last().is_none_or(|&b| b == b'\n');
        let mut file = fs::OpenOptions::new().append(true).open(&path)?;
        if !text_ends_whole {
            io::Write::write_all(&mut file, b"\n")?;
        }
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        Ok(CsvSink { path, writer })
    }

    /// Append one row and flush it.
    ///
    /// # Errors
    /// Write errors.
    pub fn write(&mut self, row: &TrialRow) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    #[test]
    fn a_row_round_trips_through_the_csv() {
        let dir = std::env::temp_dir().join(format!("lab-results-{}", std::process::id()));
        let mut sink = CsvSink::create(&dir).unwrap();
        let ctx = RunContext::new("nested", 7);
        let strategy = Strategy::parse("canonical").unwrap();
        let mut o = Outcome::error("a reason, with \"quotes\"\nand a newline".into(), 1234);
        o.verdict = Verdict::Hang;
        o.slow_cascade_us = Some(5);
        o.signatures = vec![
            "full-pipe".parse().unwrap(),
            "writer-elsewhere".parse().unwrap(),
        ];
        let src = TrialSource {
            scenario: "nested",
            scenario_hash: "abc",
            plan_hash: "def",
            seed: 7,
            trial: 3,
            sweep: Some(("kill_delay", "5ms")),
        };
        let row = TrialRow::new(&ctx, &src, &strategy, &o, "d/x.json", "lab run nested");
        sink.write(&row).unwrap();
        let mut second = row.clone();
        second.trial = 4;
        second.slow_cascade_us = None;
        sink.write(&second).unwrap();
        let back = read_rows(sink.path()).unwrap();
        assert_eq!(back, vec![row, second]);
        assert_eq!(back[0].signatures, "full-pipe writer-elsewhere");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
