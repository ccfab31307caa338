//! `lab report`: a markdown summary of result CSVs.

use std::path::PathBuf;

use super::{print_report, Format};
use crate::analysis::report::{render, to_json, ReportOptions};
use crate::analysis::Dataset;
use crate::error::{Exit, LabError};

/// `lab report`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct ReportCmd {
    /// Results directories: each holds a trials.csv (`lab run`'s
    /// results/<run-id>, `lab soak --out DIR`), or has them below it
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Write the report (markdown, or JSON with --format json) to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Link each scenario's SVG charts (from `lab plot --out DIR`) under
    /// this path, as written (relative to where the markdown is read)
    #[arg(long, value_name = "PATH")]
    charts: Option<String>,
    /// Output format: the markdown report, or its figures as JSON
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl ReportCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let ds = Dataset::load(&self.dirs)?;
        let md = || {
            render(
                &ds,
                &ReportOptions {
                    charts: self.charts.clone(),
                },
            )
        };
        let Some(path) = &self.out else {
            print_report(self.format, &to_json(&ds), md);
            return Ok(Exit::Clean);
        };
        let text = match self.format {
            Format::Text => md(),
            Format::Json => crate::json::to_string_pretty(&to_json(&ds))
                .map_err(|e| LabError::Lab(format!("cannot write the JSON report: {e}")))?,
        };
        // Whole, renamed over the name: never written through a symlink.
        crate::record::files::replace_file(path, text.as_bytes())
            .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?;
        Ok(Exit::Clean)
    }
}
