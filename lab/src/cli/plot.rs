//! `lab plot`: charts of result CSVs.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::analysis::plot::{plot, ChartFormat};
use crate::analysis::Dataset;
use crate::error::{Exit, LabError};

/// `--format` of the charts.
#[derive(Clone, Copy, ValueEnum)]
enum ChartFormatArg {
    Svg,
    Png,
}

/// `lab plot`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct PlotCmd {
    /// Results directories, as for `lab report`
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Directory to write the charts and charts.md into
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Chart file format
    #[arg(long, value_enum, default_value_t = ChartFormatArg::Svg)]
    format: ChartFormatArg,
}

impl PlotCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let ds = Dataset::load(&self.dirs)?;
        let format = match self.format {
            ChartFormatArg::Svg => ChartFormat::Svg,
            ChartFormatArg::Png => ChartFormat::Png,
        };
        for path in plot(&ds, &self.out, format)? {
            outln!("{}", path.display());
        }
        Ok(Exit::Clean)
    }
}
