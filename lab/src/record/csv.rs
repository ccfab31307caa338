//! A run's `trials.csv`: written one row at a time and flushed as trials
//! end ([`CsvSink`]), read back ([`read_rows`]), and repaired when a crash
//! cut its last row short ([`read_rows_torn`], [`drop_torn_row`]).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::row::{schemas_read, TrialRow, OLDEST_SCHEMA, SCHEMA};
use super::trust::OwnDir;

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
    // A regular file only (a FIFO or a device is refused, never waited on).
    let mut text = Vec::new();
    io::Read::read_to_end(&mut crate::input::open_regular(path)?.0, &mut text)?;
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

/// The header line of a `trials.csv` (the [`TrialRow`] columns, ending
/// with a line break).
pub fn header() -> Vec<u8> {
    let ctx = super::row::RunContext {
        run_id: String::new(),
        lab_version: String::new(),
        kernel: String::new(),
    };
    let src = super::row::TrialSource {
        scenario: "",
        scenario_hash: "",
        plan_hash: "",
        seed: 0,
        trial: 0,
        sweep: None,
    };
    let strategy = crate::strategy::Strategy::parse("canonical").expect("a built-in strategy");
    let outcome = crate::verdict::Outcome::error(String::new(), 0);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(TrialRow::new(&ctx, &src, &strategy, &outcome, "", ""))
        .expect("a row serializes");
    let bytes = w.into_inner().expect("a Vec takes every write");
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    bytes[..end].to_vec()
}

/// The name of a run's CSV in its directory.
pub const TRIALS_CSV: &str = "trials.csv";

/// A CSV file that is flushed after every row, so a crash loses at most the
/// trials in flight.
#[derive(Debug)]
pub struct CsvSink {
    path: PathBuf,
    writer: csv::Writer<File>,
}

impl CsvSink {
    /// Create `dir/trials.csv` as a new file that holds its header from the
    /// moment it exists ([`OwnDir::create_whole`]: never through a symlink,
    /// never over an existing file; a crash leaves the header or no file).
    ///
    /// # Errors
    /// Errors creating the file; `AlreadyExists` when something is at
    /// `dir/trials.csv` already.
    pub fn create(dir: &OwnDir) -> io::Result<CsvSink> {
        let file = dir.create_whole(TRIALS_CSV, &header(), false)?;
        Ok(CsvSink::over(dir, file))
    }

    fn over(dir: &OwnDir, file: File) -> CsvSink {
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        CsvSink {
            path: dir.path().join(TRIALS_CSV),
            writer,
        }
    }

    /// Open `dir/trials.csv` to append rows to it (`O_NOFOLLOW`: a symlink
    /// there is refused), creating it with its header ([`CsvSink::create`])
    /// when it does not exist yet, and giving it its header when it has
    /// none (a file left empty, or cut inside its header, by a crash). A
    /// resumed soak first drops a last row cut short by a crash
    /// ([`read_rows_torn`], [`drop_torn_row`]); should one remain (a file
    /// ending without a line break), it is completed with a line break
    /// first, so it stays one bad row rather than spoiling the next.
    ///
    /// # Errors
    /// Errors creating or opening the file (`ELOOP` for a symlink).
    pub fn append(dir: &OwnDir) -> io::Result<CsvSink> {
        let file = match dir.open_file(TRIALS_CSV, true) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return CsvSink::create(dir),
            f => f?,
        };
        let file = complete_lines(dir, TRIALS_CSV, file, &header())?;
        Ok(CsvSink::over(dir, file))
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

/// `file` (the file `name` of `dir`, open for appending) made ready for
/// more lines: a file without a whole first line (empty, or cut inside its
/// header) is replaced by one holding `header` alone; one whose last line
/// has no line break gets one.
///
/// # Errors
/// Errors reading, writing or replacing the file.
fn complete_lines(dir: &OwnDir, name: &str, mut file: File, header: &[u8]) -> io::Result<File> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut first = vec![0u8; header.len().min(len as usize)];
    file.read_exact_at(&mut first, 0)?;
    if !first.contains(&b'\n') && (len as usize) <= header.len() {
        return dir.create_whole(name, header, true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        io::Write::write_all(&mut file, b"\n")?;
    }
    Ok(file)
}

/// Append `row` to `dir/name` in one `write`, under an exclusive `flock`
/// that every writer of the file takes: for many processes that add a row
/// each to one file at once (`lab wrap --report`). A missing file is
/// created whole with its header (whoever wins the race), an existing one
/// gets its lines completed first ([`complete_lines`]); never through a
/// symlink.
///
/// # Errors
/// Errors creating, opening, locking or writing the file (`ELOOP` for a
/// symlink).
pub fn append_locked(dir: &OwnDir, name: &str, row: &TrialRow) -> io::Result<()> {
    use std::io::Write;
    let file = match dir.open_file(name, true) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match dir.create_whole(name, &header(), false) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                f => drop(f?),
            }
            dir.open_file(name, true)?
        }
        f => f?,
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    let mut file = complete_lines(dir, name, file, &header())?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(row).map_err(io::Error::other)?;
    let bytes = w
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    file.write_all(&bytes)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::files::{replace_file, write_diagnosis};
    use crate::record::row::{RunContext, TrialSource};
    use crate::strategy::Strategy;
    use crate::verdict::{Outcome, Verdict};

    fn own(dir: &Path) -> OwnDir {
        OwnDir::open(dir, crate::record::trust::Missing::Create).unwrap()
    }

    #[test]
    fn a_csv_has_its_header_from_the_start_and_one_without_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = own(dir.path());
        let path = dir.path().join(TRIALS_CSV);
        drop(CsvSink::create(&d).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), header());
        assert!(std::str::from_utf8(&header())
            .unwrap()
            .starts_with("schema,run_id,"));
        // Empty (a crash before the header), or cut inside the header.
        for cut in [0, 1, header().len() - 1] {
            std::fs::write(&path, &header()[..cut]).unwrap();
            drop(CsvSink::append(&d).unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), header(), "cut at {cut}");
        }
        let (_dir, path, rows) = three_rows();
        let mut sink = CsvSink::append(&own(path.parent().unwrap())).unwrap();
        sink.write(&rows[0]).unwrap();
        assert_eq!(read_rows(&path).unwrap().len(), 4);
    }

    #[test]
    fn a_row_round_trips_through_the_csv() {
        let dir = std::env::temp_dir().join(format!("lab-results-{}", std::process::id()));
        let mut sink = CsvSink::create(&own(&dir)).unwrap();
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

    #[test]
    fn a_row_carries_its_kill_moments_and_an_older_row_reads_without_them() {
        let (_dir, path, rows) = three_rows();
        let ctx = RunContext::new("nested", 7);
        let strategy = Strategy::parse("canonical").unwrap();
        let mut o = Outcome::error(String::new(), 1);
        o.verdict = Verdict::Pass;
        (o.kill_planned_us, o.kill_sent_us) = (Some(1500), Some(1512));
        let src = TrialSource {
            scenario: "nested",
            scenario_hash: "abc",
            plan_hash: "def",
            seed: 7,
            trial: 3,
            sweep: None,
        };
        let row = TrialRow::new(&ctx, &src, &strategy, &o, "", "");
        let mut sink = CsvSink::append(&own(path.parent().unwrap())).unwrap();
        sink.write(&row).unwrap();
        let back = read_rows(&path).unwrap();
        assert_eq!(back[3], row);
        assert_eq!(
            (back[0].kill_planned_us, back[0].kill_sent_us),
            (None, None)
        );
        // A schema 5 file: no kill moment columns; its rows read as schema
        // 6 rows with both empty.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().clone();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| {
                !header[i].starts_with("kill_planned") && !header[i].starts_with("kill_sent")
            })
            .collect();
        w.write_record(keep.iter().map(|&i| &header[i])).unwrap();
        for rec in r.records().take(3) {
            let rec = rec.unwrap();
            let mut fields: Vec<String> = keep.iter().map(|&i| rec[i].to_string()).collect();
            fields[0] = "5".into();
            w.write_record(&fields).unwrap();
        }
        std::fs::write(&path, w.into_inner().unwrap()).unwrap();
        let old = read_rows(&path).unwrap();
        assert_eq!(
            old, rows,
            "schema 5 rows read as schema 6 rows without kill moments"
        );
        assert!(old
            .iter()
            .all(|r| r.schema == SCHEMA && r.kill_sent_us.is_none()));
    }

    /// Three rows in a fresh CSV under a temporary directory.
    fn three_rows() -> (tempfile::TempDir, PathBuf, Vec<TrialRow>) {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = CsvSink::create(&own(dir.path())).unwrap();
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
        let e = CsvSink::create(&own(&out)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let e = CsvSink::append(&own(&out)).unwrap_err();
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
