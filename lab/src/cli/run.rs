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
    /// The seed that turns the scenario into a plan (a kill's window, at = "2ms..20ms", is
    /// drawn once per plan, one moment for every trial, unless the kill has per_trial = true)
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
    /// The index of the first trial: the trials run are K, K+1, ... (with --trials 1, trial K
    /// of an earlier run alone: a kill with per_trial = true fires at the moment trial K drew;
    /// a window without it is drawn once per plan, the same in every trial)
    #[arg(long = "trial", value_name = "K", default_value_t = 0)]
    first_trial: u64,
    /// Replay the plan K times per strategy and print the reproduction
    /// rate (a gated scenario must reproduce K/K; at least 1)
    #[arg(long, value_name = "K", value_parser = super::parse_count)]
    repeat: Option<u64>,
    /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
    strategies: Vec<String>,
    #[command(flatten)]
    trial: TrialOptions,
    /// Leave the first hung tree alive, print its pids and how to attach, and clean it up
    /// when Enter is pressed
    #[arg(long)]
    keep_hung: bool,
    #[command(flatten)]
    report: RunReports,
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
            text: None,
            overrides: self.overrides,
            seed: self.seed,
            trials,
            first_trial: self.first_trial,
            strategies: parse_strategies(&self.strategies)?,
            deadline: self.trial.deadline,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(Some(trials)),
            out: self.report.out,
            exe: lab_exe()?,
            gdb: self.report.gdb,
            keep_hung: self.keep_hung,
            max_diagnoses: self.report.max_diagnoses,
            trace: false,
            command: "lab run",
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let report = self.report.clone();
        report.check()?;
        let start = std::time::SystemTime::now();
        let summary = crate::run::run(&self.options()?)?;
        report.write("lab run", &summary, start, summary.render())?;
        Ok(summary.exit())
    }
}

/// Where a run's results go and what reports it writes: `lab run` and `lab
/// exec` take these the same way.
#[derive(clap::Args, Clone)]
pub(super) struct RunReports {
    /// Where to write results/<run-id>/trials.csv
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Add all-thread backtraces from `gdb -batch` to each diagnosis of a hang or orphan
    #[arg(long)]
    pub gdb: bool,
    /// Also write the results as JUnit XML to FILE: one test case per strategy, a failure
    /// (counts, replay command, diagnosis) when it fails the run: verdicts its scenario does not
    /// expect, or (lab fuzz) a failing case or regression
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the results as CTRF JSON (ctrf.io) to FILE: one test per strategy, failed as
    /// the JUnit test case is
    #[arg(long, value_name = "FILE")]
    pub ctrf: Option<PathBuf>,
    /// Write the diagnosis files of at most N failing trials per verdict of each strategy (a
    /// rare hang among orphans still gets one); the rest are counted in the summary (the CSV
    /// keeps every trial)
    #[arg(long, value_name = "N", default_value_t = crate::record::DEFAULT_MAX_DIAGNOSES)]
    pub max_diagnoses: u64,
}

impl RunReports {
    /// Refuse report files that cannot be written, before any trial runs.
    ///
    /// # Errors
    /// [`LabError::Input`] for a `--junit` or `--ctrf` path that is a
    /// directory or a symlink, or whose directory does not exist.
    pub fn check(&self) -> Result<(), LabError> {
        crate::report::check_target("--junit", self.junit.as_deref())?;
        crate::report::check_target("--ctrf", self.ctrf.as_deref())
    }

    /// Print the summary (`text` or its JSON) and write the JUnit and CTRF
    /// files, named `name`, of a run that started at `start`.
    ///
    /// # Errors
    /// [`LabError::Io`] when a report file cannot be written.
    pub fn write(
        &self,
        name: &str,
        summary: &crate::run::RunSummary,
        start: std::time::SystemTime,
        text: String,
    ) -> Result<(), LabError> {
        print_report(self.format, summary, || text);
        let report = summary.test_report(name);
        let (junit, ctrf) = (self.junit.as_deref(), self.ctrf.as_deref());
        super::write_reports(junit, ctrf, &report, start)
    }
}
