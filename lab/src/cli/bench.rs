//! `lab bench`: throughput against the raw floor.

use super::{default_jobs, lab_exe, print_report, Format};
use crate::error::{Exit, LabError};

/// `lab bench`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct BenchCmd {
    /// Trees and trials to measure, each
    #[arg(long, default_value_t = 500, value_parser = super::parse_count)]
    trials: u64,
    /// Parallel workers, 1..=1024 (default: the number of cores)
    #[arg(short = 'j', long, value_parser = super::parse_jobs)]
    jobs: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Instead: the wall time `lab wrap` adds to PROGRAM, run bare, under `unshare --fork`
    /// (the least a wrapper can be) and under `lab wrap -q` in turn, --trials times each;
    /// give it last (every word after it is the program's)
    #[arg(long, value_name = "PROGRAM [ARGS]", num_args = 1.., allow_hyphen_values = true)]
    wrap: Option<Vec<String>>,
}

impl BenchCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        if let Some(command) = &self.wrap {
            let t = crate::wrap::bench::measure(&lab_exe()?, command, self.trials)?;
            print_report(self.format, &t, || t.render());
            return Ok(Exit::Clean);
        }
        let jobs = self.jobs.unwrap_or_else(default_jobs);
        let tmp = std::env::temp_dir();
        let t = crate::bench::throughput(lab_exe()?, self.trials, jobs, &tmp)?;
        print_report(self.format, &t, || t.render());
        Ok(Exit::Clean)
    }
}
