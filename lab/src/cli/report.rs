//! `lab report`: a markdown summary of result CSVs.

use std::path::PathBuf;

use crate::analysis::report::{render, ReportOptions};
use crate::analysis::Dataset;
use crate::error::{Exit, LabError};

/// `lab report`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct ReportCmd {
    /// Results directories: each holds a trials.csv (`lab run`'s
    /// results/<run-id>, `lab soak --out DIR`), or has them below it
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Write the markdown to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Link each scenario's SVG charts (from `lab plot --out DIR`) under
    /// this path, as written (relative to where the markdown is read)
    #[arg(long, value_name = "PATH")]
    charts: Option<String>,
}

impl ReportCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let ds = Dataset::load(&self.dirs)?;
        let md = render(
            &ds,
            &ReportOptions {
                charts: self.charts,
            },
        );
        match self.out {
            Some(path) => std::fs::write(&path, md)
                .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?,
            None => out!("{md}"),
        }
        Ok(Exit::Clean)
    }
}
