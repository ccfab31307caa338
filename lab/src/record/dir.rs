//! The result directory of a run: its id ([`run_id`]) and the one place
//! that makes it ([`create_run_dir`]), which [`super::Recorder::new_run`]
//! records into. (A soak's directory is named by `lab soak --out` or made
//! from a [`run_id`] of its own, and resumed by [`super::Recorder::append`].)

use std::path::{Path, PathBuf};

use super::trust::{Missing, OwnDir};
use crate::error::LabError;

/// A run id: UTC time to the second, the scenario, the seed and the lab's PID
/// (`20261123T161926Z-nested-s7-4711`).
pub fn run_id(scenario: &str, seed: u64) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{stamp}-{scenario}-s{seed}-{}", std::process::id())
}

/// Make the directory of a new run under `out` (created if needed, and a
/// directory of the caller's: [`OwnDir`]), named by `run_id` and of the
/// run's own: a `mkdirat` under `out`'s handle that fails when the name
/// exists (a planted directory or symlink is never written into). Two
/// runs that would share a run id (the same second, scenario, seed and
/// PID: two labs that are PID 1 of their own PID namespaces) get `.1`,
/// `.2`, ... appended to `run_id`.
///
/// # Errors
/// [`LabError::Input`] when `out` is not the caller's ([`OwnDir::open`]);
/// [`LabError::Io`] when `out` or the directory cannot be created.
pub fn create_run_dir(out: &Path, run_id: &mut String) -> Result<PathBuf, LabError> {
    let own = OwnDir::open(out, Missing::Create)?;
    let base = run_id.clone();
    let mut n = 0u32;
    loop {
        let dir = out.join(&*run_id);
        match rustix::fs::mkdirat(
            own.fd(),
            run_id.as_str(),
            rustix::fs::Mode::from_raw_mode(0o755),
        ) {
            Ok(()) => return Ok(dir),
            Err(rustix::io::Errno::EXIST) if n < 1000 => {
                n += 1;
                *run_id = format!("{base}.{n}");
            }
            Err(e) => {
                return Err(LabError::io(
                    format!("cannot create {}", dir.display()),
                    e.into(),
                ))
            }
        }
    }
}
