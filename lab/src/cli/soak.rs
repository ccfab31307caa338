//! `lab soak`: scenarios x strategies for N trials or a duration.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::{lab_exe, print_report, Format, TrialOptions};
use crate::error::{Exit, LabError};
use crate::output::progress::Progress;
use crate::scenario::BUILTIN;
use crate::soak::{SoakArgs, SoakSpec};

/// `--progress`.
#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Auto,
    Bar,
    Lines,
    None,
}

/// `lab soak`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct SoakCmd {
    /// Scenario (repeatable): a built-in name or a path to a .toml file
    #[arg(long = "scenario", required_unless_present_any = ["all", "resume"])]
    scenarios: Vec<String>,
    /// Every shipped scenario
    #[arg(long, conflicts_with = "scenarios")]
    all: bool,
    /// Strategy (repeatable): a preset or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
    strategies: Vec<String>,
    /// Trials per scenario (and swept value) and strategy (at least 1)
    #[arg(long, required_unless_present_any = ["duration", "resume"], conflicts_with = "duration",
          value_parser = super::parse_count)]
    trials: Option<u64>,
    /// Run for this long instead (whole seconds, like 90s, 30m or 8h; 1s..=30days)
    #[arg(long, value_parser = super::parse_soak_duration)]
    duration: Option<Duration>,
    /// The soak's seed: trial t runs the plan of a seed derived from it and t
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sweep one scenario key: KEY=A..B/STEPS (kill_delay=1ms..20ms/5, threads=1..8/8,
    /// hold=0.1..0.9/5, depth=1..4/4, or a dotted path), or a list KEY=V1,V2,...
    /// (kill_delay=0ms,1ms,5ms; kill.0.at=spawn+0ms,spawn+1ms)
    #[arg(long)]
    sweep: Option<String>,
    /// Set a scenario key before planning, in every scenario (repeatable), as `lab run --set`
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::scenario::overrides::Override::parse)]
    overrides: Vec<crate::scenario::overrides::Override>,
    /// Run only the trials of shard I of N (trial indices t with t % N == I-1)
    #[arg(long, value_name = "I/N")]
    shard: Option<crate::soak::matrix::Shard>,
    /// Exit 1 unless every trial of this strategy passes (repeatable): the nightly gate.
    /// STRATEGY:VERDICT,... allows other verdicts too (canonical:pass,panic where a
    /// guard's panic is the intended result). Overrides the scenarios' [expect] entries
    /// for this strategy; the other strategies are judged by their [expect] entries
    #[arg(long = "gate", value_name = "STRATEGY[:VERDICTS]")]
    gates: Vec<String>,
    #[command(flatten)]
    trial: TrialOptions,
    /// The soak's directory (default results/soak-<time>)
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the soak in DIR where it stopped (its soak.json says what to run)
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Progress on stderr: a bar when stderr is a terminal (auto), a bar, one line per trial, or none
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the results as JUnit XML to FILE: one test case per scenario x strategy
    /// cell, a failure (verdict counts, replay command, diagnosis) when its verdicts were
    /// unexpected
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the results as CTRF JSON (ctrf.io) to FILE: one test per scenario x strategy cell, failed when its
    /// verdicts were unexpected
    #[arg(long, value_name = "FILE")]
    ctrf: Option<PathBuf>,
    /// Write the diagnosis files of at most N failing trials per verdict of each scenario x
    /// strategy cell (a rare hang among orphans still gets one); the rest are counted in the
    /// summary (the CSV keeps every trial)
    #[arg(long, value_name = "N", default_value_t = crate::record::DEFAULT_MAX_DIAGNOSES)]
    max_diagnoses: u64,
}

impl SoakCmd {
    /// The validated options.
    ///
    /// # Errors
    /// [`LabError::Lab`] when the lab process cannot be prepared. (Counts,
    /// durations and `-j` are range-checked by clap as they are parsed.)
    fn options(self) -> Result<SoakArgs, LabError> {
        let scenarios = if self.all {
            BUILTIN.iter().map(|(n, _)| n.to_string()).collect()
        } else {
            self.scenarios
        };
        let spec = SoakSpec {
            scenarios,
            strategies: self.strategies,
            trials: self.trials,
            duration_s: self.duration.map(|d| d.as_secs()),
            seed: self.seed,
            shard: self.shard,
            set: self
                .overrides
                .iter()
                .map(|o| format!("{}={}", o.key, o.value))
                .collect(),
            sweep: self.sweep,
            // At most an hour (`--deadline` is range-checked as it is parsed).
            deadline_ms: self.trial.deadline.map(|d| d.as_millis() as u64),
            no_cgroup: self.trial.no_cgroup,
            gates: self.gates,
            scenario_hashes: Vec::new(),
        };
        // At most one worker per trial of the matrix, when it is known.
        let work = spec.trials.map(|t| {
            let cells = spec.scenarios.len().max(1) as u64;
            let strategies = spec.strategies.len().max(1) as u64;
            t.saturating_mul(cells).saturating_mul(strategies)
        });
        let stamp = crate::record::dir::run_id("soak", self.seed);
        Ok(SoakArgs {
            dir: self
                .resume
                .clone()
                .or(self.out)
                .unwrap_or_else(|| PathBuf::from("results").join(stamp)),
            resume: self.resume.is_some(),
            spec,
            jobs: self.trial.jobs(work),
            progress: match self.progress {
                ProgressArg::Auto => Progress::Auto,
                ProgressArg::Bar => Progress::Bar,
                ProgressArg::Lines => Progress::Lines,
                ProgressArg::None => Progress::None,
            },
            exe: lab_exe()?,
            max_diagnoses: self.max_diagnoses,
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let format = self.format;
        let junit = self.junit.clone();
        let ctrf = self.ctrf.clone();
        crate::report::check_target("--junit", junit.as_deref())?;
        crate::report::check_target("--ctrf", ctrf.as_deref())?;
        let start = std::time::SystemTime::now();
        let summary = crate::soak::run(&self.options()?)?;
        print_report(format, &summary, || summary.render());
        let report = summary.test_report();
        super::write_reports(junit.as_deref(), ctrf.as_deref(), &report, start)?;
        Ok(summary.exit())
    }
}
