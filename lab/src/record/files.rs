//! The files written beside a run's `trials.csv` (diagnoses, program
//! output, traces, node logs): a whole file is written to a temporary file
//! and renamed over its name ([`replace_file`]), a subdirectory that is not
//! the lab's (a planted symlink) is refused: nothing is ever written
//! through a symlink. New files in a directory of the caller's are made by
//! [`super::trust::OwnDir`].

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::forensics::Diagnosis;
use crate::verdict::ProgramOutput;

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
