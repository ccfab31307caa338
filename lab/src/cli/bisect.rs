//! `lab bisect`: the members that make a victim fail.

use super::print_report;
use super::suite::{SourceArgs, SuiteCommon, SuiteOrder};
use crate::error::{Exit, LabError};
use crate::strategy::Strategy;
use crate::suite::bisect::BisectArgs;

/// `lab bisect`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct BisectCmd {
    #[command(flatten)]
    source: SourceArgs,
    /// The member (or test) that passes alone and fails in the suite
    #[arg(long)]
    victim: String,
    /// The strategy of every trial: a preset or create=..,death=..,observe=.. (a runner's
    /// test process starts the canonical way whatever it is)
    #[arg(long, default_value = "legacy")]
    strategy: String,
    /// Runs of each step; a step stops at the first wave of runs in which the victim fails
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = super::parse_count)]
    repeat: u64,
    /// Look for the reverse dependency: the members a victim that fails alone needs before
    /// it to pass
    #[arg(long)]
    opposite: bool,
    #[command(flatten)]
    order: SuiteOrder,
    #[command(flatten)]
    common: SuiteCommon,
}

impl BisectCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let source = self.source.spec()?;
        // A runner's test process starts the canonical way, whatever the
        // strategy.
        let strategy = match source {
            crate::suite::SourceSpec::Runner(_) => "canonical",
            crate::suite::SourceSpec::File(_) => &self.strategy,
        };
        let args = BisectArgs {
            victim: self.victim,
            strategy: Strategy::parse(strategy)?,
            opposite: self.opposite,
        };
        let setup = self.common.setup(source, self.repeat, self.order)?;
        let report = crate::suite::bisect::bisect(&setup, &args)?;
        print_report(self.common.format, &report, || report.render());
        Ok(report.exit())
    }
}
