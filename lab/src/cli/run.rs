//! `lab run`: one plan, many trials under each strategy.

use std::path::PathBuf;

use super::{lab_exe, parse_strategies, print_report, Format, TrialOptions};
use crate::error::{Exit, LabError};
use crate::run::RunArgs;
use crate::scenario::overrides::Override;

/// `lab run`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct RunCmd {
    /// A built-in scenario name (`lab list`) or a path to a .toml file
    scenario: String,
    /// The seed that turns the scenario into a plan
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Set a scenario key before planning (repeatable): a dotted path into the file
    /// (tree.depth=3, nodes.root.threads=4, kill.0.at=5ms) or an alias (depth, threads,
    /// hold, kill_delay)
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse)]
    overrides: Vec<Override>,
    /// Trials per strategy (at least 1)
    #[arg(long, default_value_t = 100, conflicts_with = "repeat", value_parser = super::parse_count)]
    trials: u64,
    /// Replay the plan K times per strategy and print the reproduction
    /// rate (a gated scenario must reproduce K/K; at least 1)
    #[arg(long, value_name = "K", value_parser = super::parse_count)]
    repeat: Option<u64>,
    /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
    strategies: Vec<String>,
    #[command(flatten)]
    trial: TrialOptions,
    /// Where to write results/<run-id>/trials.csv
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Add all-thread backtraces from `gdb -batch` to each diagnosis of a hang or orphan
    #[arg(long)]
    gdb: bool,
    /// Leave the first hung tree alive, print its pids and how to attach, and clean it up
    /// when Enter is pressed
    #[arg(long)]
    keep_hung: bool,
    /// Also write the results as JUnit XML to FILE: one test case per strategy, a failure
    /// (verdict counts, replay command, diagnosis) when its verdicts were unexpected
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the results as CTRF JSON (ctrf.io) to FILE: one test per strategy, failed when its
    /// verdicts were unexpected
    #[arg(long, value_name = "FILE")]
    ctrf: Option<PathBuf>,
    /// Write the diagnosis files of at most N failing trials per strategy; the rest are
    /// counted in the summary (the CSV keeps every trial)
    #[arg(long, value_name = "N", default_value_t = crate::record::DEFAULT_MAX_DIAGNOSES)]
    max_diagnoses: u64,
}

impl RunCmd {
    /// The validated options.
    ///
    /// # Errors
    /// An unknown strategy; [`LabError::Lab`] when the lab process cannot
    /// be prepared. (Counts, `-j` and `--deadline` are range-checked by
    /// clap as they are parsed: exit status 2.)
    fn options(self) -> Result<RunArgs, LabError> {
        let trials = self.repeat.unwrap_or(self.trials);
        Ok(RunArgs {
            scenario: self.scenario,
            overrides: self.overrides,
            seed: self.seed,
            trials,
            strategies: parse_strategies(&self.strategies)?,
            deadline: self.trial.deadline,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(Some(trials)),
            out: self.out,
            exe: lab_exe()?,
            gdb: self.gdb,
            keep_hung: self.keep_hung,
            max_diagnoses: self.max_diagnoses,
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let format = self.format;
        let junit = self.junit.clone();
        let ctrf = self.ctrf.clone();
        crate::junit::check_target(junit.as_deref())?;
        crate::junit::check_report_target("--ctrf", ctrf.as_deref())?;
        let start = std::time::SystemTime::now();
        let summary = crate::run::run(&self.options()?)?;
        print_report(format, &summary, || summary.render());
        let cases = crate::junit::of_run(&summary);
        crate::junit::write(junit.as_deref(), "lab run", &cases)?;
        crate::ctrf::write(ctrf.as_deref(), &cases, start, std::time::SystemTime::now())?;
        Ok(summary.exit())
    }
}
