//! `lab merge`: the CSVs of soak shards joined into one.

use std::path::PathBuf;

use super::{print_report, Format};
use crate::error::{Exit, LabError};

/// `lab merge`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct MergeCmd {
    /// Result directories (each with a trials.csv)
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write trials.csv and summary.json
    #[arg(long)]
    out: PathBuf,
    /// Output format (JSON: what summary.json holds)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl MergeCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let merged = crate::soak::merge::merge(&self.dirs, &self.out)?;
        print_report(self.format, &merged, || {
            format!(
                "merged {} rows ({} duplicates dropped) into {}\n",
                merged.rows,
                merged.duplicates,
                merged.csv.display()
            )
        });
        Ok(Exit::Clean)
    }
}
