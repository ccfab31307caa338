//! `lab fuzz`: generated scenarios against the property, failures shrunk
//! ([`crate::fuzz`]).

use std::path::PathBuf;

use super::{lab_exe, parse_strategies, print_report, Format, TrialOptions};
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
    /// Shrink steps (candidates run) at most per failing case, 0..=100000
    #[arg(long, value_name = "M", default_value_t = 64, value_parser = parse_steps)]
    shrink_steps: u64,
    #[command(flatten)]
    trial: TrialOptions,
    /// Where to write <run-id>/ (trials.csv, summary.json, fuzz/ with the cases)
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// The regressions directory: every .toml in it is replayed first under each strategy,
    /// and each minimal failing case is copied into it (commit it, as proptest-regressions)
    #[arg(long, value_name = "DIR", default_value = "fuzz-regressions")]
    regressions: PathBuf,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the results as JUnit XML to FILE: one test case per strategy, failing
    /// with its counts, the minimal case's file and its replay command
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the results as CTRF JSON (ctrf.io) to FILE: one test per strategy
    #[arg(long, value_name = "FILE")]
    ctrf: Option<PathBuf>,
    /// Write the diagnosis files of at most N failing trials per strategy (the CSV keeps
    /// every trial)
    #[arg(long, value_name = "N", default_value_t = crate::record::DEFAULT_MAX_DIAGNOSES)]
    max_diagnoses: u64,
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
            out: self.out.clone(),
            regressions: self.regressions.clone(),
            exe: lab_exe()?,
            max_diagnoses: self.max_diagnoses,
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        crate::junit::check_target(self.junit.as_deref())?;
        crate::junit::check_report_target("--ctrf", self.ctrf.as_deref())?;
        let start = std::time::SystemTime::now();
        let summary = crate::fuzz::run(&self.options()?)?;
        print_report(self.format, &summary, || summary.render());
        let cases = summary.cases();
        crate::junit::write(self.junit.as_deref(), "lab fuzz", &cases)?;
        crate::ctrf::write(
            self.ctrf.as_deref(),
            &cases,
            start,
            std::time::SystemTime::now(),
        )?;
        Ok(summary.exit())
    }
}
