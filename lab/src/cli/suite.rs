//! `lab suite`: members alone and in one process; and what `lab suite` and
//! `lab bisect` share (the order and the setup).

use super::{lab_exe, parse_strategies, print_report, Format, TrialOptions};
use crate::error::{Exit, LabError};
use crate::suite::{Order, Setup};

/// The order of a suite's members: as written, reversed, shuffled, or given.
#[derive(clap::Args)]
pub(super) struct SuiteOrder {
    /// Run the members in the reverse of the written order
    #[arg(long, conflicts_with_all = ["seed", "members"])]
    reverse: bool,
    /// Shuffle the members with this seed (the same order on every run)
    #[arg(long, conflicts_with = "members")]
    seed: Option<u64>,
    /// Run exactly these members, in this order (comma-separated names)
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    members: Vec<String>,
}

/// What `lab suite` and `lab bisect` share besides the order.
#[derive(clap::Args)]
pub(super) struct SuiteCommon {
    #[command(flatten)]
    trial: TrialOptions,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(super) format: Format,
}

impl SuiteCommon {
    /// The suite machinery's setup.
    ///
    /// # Errors
    /// [`LabError::Lab`] when the lab process cannot be prepared. (`--repeat`,
    /// `-j` and `--deadline` are range-checked by clap as they are parsed.)
    pub(super) fn setup(
        &self,
        suite: String,
        repeat: u64,
        order: SuiteOrder,
    ) -> Result<Setup, LabError> {
        let order = if !order.members.is_empty() {
            Order::Members(order.members)
        } else if let Some(seed) = order.seed {
            Order::Shuffled(seed)
        } else if order.reverse {
            Order::Reversed
        } else {
            Order::Written
        };
        Ok(Setup {
            suite,
            repeat,
            order,
            deadline: self.trial.deadline,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(None),
            exe: lab_exe()?,
        })
    }
}

/// `lab suite`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct SuiteCmd {
    /// A suite file (scenarios/suites/NAME.toml)
    suite: String,
    /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
    strategies: Vec<String>,
    /// Runs alone and runs of the whole suite, per member and strategy (at least 1)
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = super::parse_count)]
    repeat: u64,
    #[command(flatten)]
    order: SuiteOrder,
    #[command(flatten)]
    common: SuiteCommon,
    /// Also write the results as JUnit XML to FILE: one test case per member and strategy,
    /// a failure (runs alone and in the suite, replay and bisect commands) when its verdict
    /// depends on the order
    #[arg(long, value_name = "FILE")]
    junit: Option<std::path::PathBuf>,
    /// Also write the results as CTRF JSON (ctrf.io) to FILE: one test per member and
    /// strategy, failed when its verdict depends on the order
    #[arg(long, value_name = "FILE")]
    ctrf: Option<std::path::PathBuf>,
}

impl SuiteCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let strategies = parse_strategies(&self.strategies)?;
        crate::report::check_target("--junit", self.junit.as_deref())?;
        crate::report::check_target("--ctrf", self.ctrf.as_deref())?;
        let start = std::time::SystemTime::now();
        let setup = self.common.setup(self.suite, self.repeat, self.order)?;
        let report = crate::suite::run::run(&setup, &strategies)?;
        print_report(self.common.format, &report, || report.render());
        let tests = report.test_report();
        let (junit, ctrf) = (self.junit.as_deref(), self.ctrf.as_deref());
        super::write_reports(junit, ctrf, &tests, start)?;
        Ok(Exit::clean_if(report.order_dependent.is_empty()))
    }
}
