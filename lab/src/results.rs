//! Result files: one CSV row per trial, streamed and flushed as trials end,
//! under `results/<run-id>/trials.csv`.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::forensics::Diagnosis;
use crate::strategy::Strategy;
use crate::verdict::{Outcome, ProgramOutput};

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
    /// This row as a [`SCHEMA`] row: a schema 4 row had no
    /// `pid_namespace` column and ran with none.
    pub fn upgraded(mut self) -> TrialRow {
        if self.schema < 5 {
            self.pid_namespace = "none".into();
            self.schema = SCHEMA;
        }
        self
    }

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
/// `_`); returns the JSON's path. Each file is written whole to a fresh
/// temporary file beside it and renamed over the name ([`replace_file`]),
/// so a symlink planted there is replaced, never followed.
///
/// # Errors
/// Errors creating the directory or writing the files.
pub fn write_diagnosis(dir: &Path, stem: &str, d: &Diagnosis) -> io::Result<PathBuf> {
    let dir = lab_subdir(dir, "diagnosis")?;
    let path = dir.join(format!("{}.json", clean_stem(stem)));
    let json = serde_json::to_string_pretty(d).map_err(io::Error::other)?;
    replace_file(&path, json.as_bytes())?;
    replace_file(&path.with_extension("txt"), d.render().as_bytes())?;
    Ok(path)
}

/// Write a program's output under `dir/output/`: `STEM.stdout` and
/// `STEM.stderr` (each the last 1 MiB it wrote; `stem` cleaned as for a
/// diagnosis), never through a symlink. Returns the stdout file's path.
///
/// # Errors
/// Errors creating the directory or writing the files; `AlreadyExists`
/// when `dir/output` is not a directory of the lab's.
pub fn write_output(dir: &Path, stem: &str, out: &ProgramOutput) -> io::Result<PathBuf> {
    let dir = lab_subdir(dir, "output")?;
    let path = dir.join(format!("{}.stdout", clean_stem(stem)));
    replace_file(&path, out.stdout.as_bytes())?;
    replace_file(&path.with_extension("stderr"), out.stderr.as_bytes())?;
    Ok(path)
}

/// Write a trial's timeline (Chrome trace-event JSON text) to
/// `dir/trace/STEM.json`, never through a symlink; returns its path.
///
/// # Errors
/// As [`write_output`].
pub fn write_trace(dir: &Path, stem: &str, json: &str) -> io::Result<PathBuf> {
    let path = lab_subdir(dir, "trace")?.join(format!("{}.json", clean_stem(stem)));
    replace_file(&path, json.as_bytes())?;
    Ok(path)
}

/// Open `path` for a node's log: write-only, created (mode 0644 less the
/// umask) or truncated, close-on-exec, never through a symlink
/// (`O_NOFOLLOW`).
///
/// # Errors
/// Errors of `open`; `ELOOP` when `path` is a symlink.
pub fn open_log(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `dir/name`, created if needed, refused when it is not a directory (a
/// symlink planted there, say).
fn lab_subdir(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = dir.join(name);
    fs::create_dir_all(&dir)?;
    if !fs::symlink_metadata(&dir)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is not a directory of the lab's (a symlink?)",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// A file stem with characters other than letters, digits, `-` and `.`
/// made `_`.
fn clean_stem(stem: &str) -> String {
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every row of the CSV at `path`.
///
/// # Errors
/// Read errors; `InvalidData` for a row that does not parse or a schema
/// outside [`OLDEST_SCHEMA`]..=[`SCHEMA`] (naming the file, the line and
/// the schema found). Older rows come back as [`SCHEMA`] rows (see
/// [`OLDEST_SCHEMA`]).
pub fn read_rows(path: &Path) -> io::Result<Vec<TrialRow>> {
    let (rows, torn) = read_rows_torn(path)?;
    match torn {
        None => Ok(rows.into_iter().map(TrialRow::upgraded).collect()),
        Some(t) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: row {}: {} (a row cut short by a crash)",
                path.display(),
                rows.len() + 1,
                t.error
            ),
        )),
    }
}

/// A last row cut short (the writer died mid-row): where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornRow {
    /// Its first byte's offset in the file: truncate the file there to
    /// drop it.
    pub offset: u64,
    /// Why it does not read as a row.
    pub error: String,
}

/// Every whole row of the CSV at `path`, and the last row when it was cut
/// short: a last record that does not parse as a row (too few fields, a
/// field cut short) or that the file does not end after with a line break.
/// A bad row anywhere else is an error.
///
/// # Errors
/// Read errors; `InvalidData` for a row before the last that does not
/// parse, or a schema outside [`OLDEST_SCHEMA`]..=[`SCHEMA`] (naming the
/// file, the line and the schema found). Rows come back with the schema
/// they were written with (a resumed soak refuses older ones: its CSV's
/// header has other columns).
pub fn read_rows_torn(path: &Path) -> io::Result<(Vec<TrialRow>, Option<TornRow>)> {
    let text = fs::read(path)?;
    let ends_whole = text.last().is_none_or(|&b| b == b'\n');
    let mut reader = csv::Reader::from_reader(text.as_slice());
    let headers = reader.byte_headers().map_err(io::Error::other)?.clone();
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let offset = reader.position().byte();
        let read = reader
            .read_byte_record(&mut record)
            .map_err(|e| e.to_string())
            .and_then(|more| {
                if !more {
                    return Ok(None);
                }
                record
                    .deserialize::<TrialRow>(Some(&headers))
                    .map(Some)
                    .map_err(|e| e.to_string())
            });
        let last = reader.is_done() || reader.position().byte() >= text.len() as u64;
        let bad = |e: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: row {}: {e}", path.display(), rows.len() + 1),
            )
        };
        match read {
            Ok(None) => return Ok((rows, None)),
            Ok(Some(_)) if last && !ends_whole => {
                let error = "the file ends inside it, with no line break".to_string();
                return Ok((rows, Some(TornRow { offset, error })));
            }
            Err(error) if last => return Ok((rows, Some(TornRow { offset, error }))),
            Err(e) => return Err(bad(e)),
            Ok(Some(row)) => {
                if !(OLDEST_SCHEMA..=SCHEMA).contains(&row.schema) {
                    return Err(bad(format!(
                        "schema {} (this lab reads {})",
                        row.schema,
                        schemas_read()
                    )));
                }
                rows.push(row);
            }
        }
    }
}

/// Open `path` for writing as a new file of the caller's own:
/// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, mode 0644 (less the umask). It
/// never opens what is already there, a planted symlink included.
///
/// # Errors
/// `AlreadyExists` when anything is at `path` (a symlink included);
/// the kernel's other errors.
pub fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Write `bytes` to `path` whole: into a fresh temporary file in the same
/// directory (`O_EXCL`, random name), then renamed over `path`. A reader
/// sees the old file or the new one, and a symlink at `path` is replaced,
/// never followed. Mode 0644, less the umask.
///
/// # Errors
/// Errors creating, writing or renaming the file.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".lab-")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A CSV file that is flushed after every row, so a crash loses at most the
/// trials in flight.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl CsvSink {
    /// Create `dir/trials.csv` (and `dir`) as a new file ([`create_new`]:
    /// never through a symlink, never over an existing file).
    ///
    /// # Errors
    /// Errors creating the directory or the file; `AlreadyExists` when
    /// something is at `dir/trials.csv` already.
    pub fn create(dir: &Path) -> io::Result<CsvSink> {
        fs::create_dir_all(dir)?;
        let path = dir.join("trials.csv");
        let writer = csv::Writer::from_writer(create_new(&path)?);
        Ok(CsvSink { path, writer })
    }

    /// Open `dir/trials.csv` to append rows to it (`O_NOFOLLOW`: a symlink
    /// there is refused), creating it (and `dir`, with the header) when it
    /// does not exist yet. A resumed soak first drops a last row cut short
    /// by a crash ([`read_rows_torn`], [`drop_torn_row`]); should one remain
    /// (a file ending without a line break), it is completed with a line
    /// break first, so it stays one bad row rather than spoiling the next.
    ///
    /// # Errors
    /// Errors creating or opening the file (`ELOOP` for a symlink).
    pub fn append(dir: &Path) -> io::Result<CsvSink> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("trials.csv");
        let mut file = match fs::OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return CsvSink::create(dir),
            f => f?,
        };
        let len = file.metadata()?.len();
        let text_ends_whole = len == 0 || {
            let mut last = [0u8; 1];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1)?;
            last[0] == b'\n'
        };
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

/// Drop the torn last row `torn` of the CSV at `path` (found by
/// [`read_rows_torn`]): truncate the file where it starts, so the file
/// ends with its last whole row and the trial of the torn one runs again.
/// The file is opened with `O_NOFOLLOW`.
///
/// # Errors
/// Errors opening or truncating the file.
pub fn drop_torn_row(path: &Path, torn: &TornRow) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?
        .set_len(torn.offset)
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

    /// Three rows in a fresh CSV under a temporary directory.
    fn three_rows() -> (tempfile::TempDir, PathBuf, Vec<TrialRow>) {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = CsvSink::create(dir.path()).unwrap();
        let ctx = RunContext::new("nested", 7);
        let strategy = Strategy::parse("canonical").unwrap();
        let mut o = Outcome::error("a reason,\nover two lines".into(), 1234);
        o.verdict = Verdict::Pass;
        let mut rows = Vec::new();
        for trial in 0..3 {
            let src = TrialSource {
                scenario: "nested",
                scenario_hash: "abc",
                plan_hash: "def",
                seed: 7,
                trial,
                sweep: None,
            };
            let row = TrialRow::new(&ctx, &src, &strategy, &o, "", "lab run nested --seed 7");
            sink.write(&row).unwrap();
            rows.push(row);
        }
        let path = sink.path().to_path_buf();
        (dir, path, rows)
    }

    #[test]
    fn a_last_row_cut_anywhere_is_torn_and_dropped_and_a_whole_file_is_not() {
        let (_dir, path, rows) = three_rows();
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(read_rows_torn(&path).unwrap(), (rows.clone(), None));
        let third = whole.len() - {
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            w.serialize(&rows[2]).unwrap();
            w.into_inner().unwrap().len()
        };
        // Every cut inside the third row (mid-field, mid-quote, right after
        // the line break inside the quoted reason, just before its own line
        // break) leaves two whole rows and a torn one where it starts.
        for cut in third + 1..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (read, torn) = read_rows_torn(&path).unwrap();
            assert_eq!(read, rows[..2], "cut at {cut} of {}: {torn:?}", whole.len());
            let torn = torn.unwrap_or_else(|| panic!("cut at {cut}: not torn"));
            assert_eq!(torn.offset, third as u64, "cut at {cut}");
            assert!(read_rows(&path).is_err());
            drop_torn_row(&path, &torn).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), &whole[..third]);
            assert_eq!(read_rows(&path).unwrap(), rows[..2]);
        }
    }

    #[test]
    fn a_bad_row_before_the_last_is_an_error_not_a_torn_row() {
        let (_dir, path, _) = three_rows();
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.replacen(",nested,", ",nested,extra,", 1);
        std::fs::write(&path, bad).unwrap();
        let e = read_rows_torn(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("row 1"), "{e}");
    }

    #[test]
    fn the_lab_never_writes_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "mine").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&target, out.join("trials.csv")).unwrap();
        let e = CsvSink::create(&out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let e = CsvSink::append(&out).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        std::os::unix::fs::symlink(&target, out.join("summary.json")).unwrap();
        replace_file(&out.join("summary.json"), b"{}").unwrap();
        assert!(!std::fs::symlink_metadata(out.join("summary.json"))
            .unwrap()
            .is_symlink());
        std::os::unix::fs::symlink(dir.path(), out.join("diagnosis")).unwrap();
        let d = crate::forensics::Diagnosis::default();
        assert!(write_diagnosis(&out, "x", &d).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    }
}
