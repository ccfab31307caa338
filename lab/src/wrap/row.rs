//! One results row per wrap (`--report FILE`, `LAB_WRAP_REPORT`), in the
//! project's CSV format ([`TrialRow`]), appended to FILE so that a whole
//! `cargo test` or nextest run leaves one table (`lab report DIR` reads the
//! `trials.csv` of a directory: name the file so). Many wraps append to one
//! file at once ([`crate::record::csv::append_locked`]). The directory is
//! the caller's ([`OwnDir`]: the trust rules of every results directory). A
//! diagnosis is written beside it, under `diagnosis/`.

use std::path::{Path, PathBuf};

use super::Wrapped;
use crate::error::LabError;
use crate::record::row::{RunContext, TrialRow, TrialSource};
use crate::record::trust::{Missing, OwnDir};
use crate::strategy::Strategy;

/// Append the row of `w` to the CSV `file` (created with its header when
/// missing), and write its diagnosis, if any, beside it. Returns the
/// diagnosis's path.
///
/// # Errors
/// [`LabError::Input`] when the directory is not the caller's;
/// [`LabError::Io`] when the file cannot be opened or written.
pub fn append(file: &Path, w: &Wrapped) -> Result<Option<PathBuf>, LabError> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LabError::Input(format!("--report {}: give a file name", file.display())))?;
    let dir = OwnDir::open(parent, Missing::Create)?;
    let ctx = RunContext::new(&w.plan.scenario, w.plan.seed);
    let mut diagnosis = None;
    if let Some(d) = &w.outcome.diagnosis {
        let path =
            crate::record::files::write_diagnosis(dir.path(), &ctx.run_id, d).map_err(|e| {
                LabError::io(
                    format!("cannot write the diagnosis beside {}", file.display()),
                    e,
                )
            })?;
        diagnosis = Some(path);
    }
    let mut o = w.outcome.clone();
    o.verdict = w.judgement.verdict;
    o.reason.clone_from(&w.judgement.reason);
    let hash = w.plan.hash();
    let src = TrialSource::of(&w.plan, &hash, 0, None);
    let strategy = Strategy::parse("canonical")?;
    let shown = diagnosis
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let row = TrialRow::new(&ctx, &src, &strategy, &o, &shown, "");
    crate::record::csv::append_locked(&dir, name, &row)
        .map_err(|e| LabError::io(format!("cannot append to {}", file.display()), e))?;
    Ok(diagnosis)
}
