//! `lab fuzz`: generated scenarios against the property, failures shrunk
//! ([`crate::fuzz`]).

use std::path::PathBuf;

use super::run::RunReports;
use super::{lab_exe, parse_strategies, print_report, write_reports, TrialOptions};
use crate::error::{Exit, LabError};
use crate::fuzz::FuzzArgs;

/// The most shrink steps `--shrink-steps` takes.
const MAX_SHRINK_STEPS: u64 = 100_000;

/// `lab fuzz`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct FuzzCmd {
    /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string()])]
    strategies: Vec<String>,
    /// Cases generated and run per strategy, one trial each (at least 1)
    #[arg(long, default_value_t = 100, value_parser = super::parse_count)]
    cases: u64,
    /// The seed of the cases and of their plans: a seed explores the same cases every time
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trials of each shrink step and of each regression replay; a step fails when any of
    /// them fails (at least 1)
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = super::parse_count)]
    repeat: u64,
    /// Shrink steps (candidates run) at most per failure class (verdict x signatures: the
    /// first case of each is shrunk, keeping its class), 0..=100000
    #[arg(long, value_name = "M", default_value_t = 64, value_parser = parse_steps)]
    shrink_steps: u64,
    #[command(flatten)]
    trial: TrialOptions,
    /// The regressions directory: every .toml in it is replayed first under each strategy,
    /// and each minimal failing case is copied into it (commit it, as proptest-regressions)
    #[arg(long, value_name = "DIR", default_value = "fuzz-regressions")]
    regressions: PathBuf,
    #[command(flatten)]
    report: RunReports,
}

/// `--shrink-steps`: 0..=100000.
fn parse_steps(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_SHRINK_STEPS => Ok(n),
        _ => Err(format!("a number of steps 0..={MAX_SHRINK_STEPS}")),
    }
}

impl FuzzCmd {
    /// The validated options.
    ///
    /// # Errors
    /// An unknown strategy; [`LabError::Lab`] when the lab process cannot
    /// be prepared.
    fn options(&self) -> Result<FuzzArgs, LabError> {
        Ok(FuzzArgs {
            strategies: parse_strategies(&self.strategies)?,
            cases: self.cases,
            seed: self.seed,
            repeat: self.repeat,
            shrink_steps: self.shrink_steps,
            deadline: self.trial.deadline,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(Some(self.cases.max(self.repeat))),
            out: self.report.out.clone(),
            regressions: self.regressions.clone(),
            exe: lab_exe()?,
            max_diagnoses: self.report.max_diagnoses,
            gdb: self.report.gdb,
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        self.report.check()?;
        let start = std::time::SystemTime::now();
        let summary = crate::fuzz::run(&self.options()?)?;
        print_report(self.report.format, &summary, || summary.render());
        let (junit, ctrf) = (self.report.junit.as_deref(), self.report.ctrf.as_deref());
        write_reports(junit, ctrf, &summary.test_report(), start)?;
        Ok(summary.exit())
    }
}
