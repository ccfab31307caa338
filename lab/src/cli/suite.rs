//! `lab suite`: tests alone and in one process; and what `lab suite` and
//! `lab bisect` share (the source of the tests, the order and the setup).

use super::{lab_exe, parse_strategies, print_report, Format, TrialOptions};
use crate::error::{Exit, LabError};
use crate::suite::runner::RunnerKind;
use crate::suite::{Order, Setup, SourceSpec};

/// Where the tests come from: a suite file, or a test runner.
#[derive(clap::Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
pub(super) struct SourceArgs {
    /// A suite file (scenarios/suites/NAME.toml)
    #[arg(group = "source")]
    suite: Option<String>,
    /// A Rust test binary (cargo test --no-run prints their paths): its tests, listed with
    /// `BIN --list --format terse`, run as `BIN --exact NAME... --test-threads=1`
    #[arg(long, value_name = "BIN", group = "source")]
    libtest: Option<String>,
    /// pytest: the tests `python3 -m pytest --collect-only -q ARGS` collects (ARGS after `--`),
    /// each list run in the order given
    #[arg(long, group = "source")]
    pytest: bool,
    /// The Rust test binary `cargo test --no-run ARGS` builds (ARGS after `--`: -p CRATE,
    /// --test NAME, --lib), as --libtest
    #[arg(long, group = "source")]
    cargo_test: bool,
    /// Any runner: the command that prints one test name a line (split on whitespace, no
    /// shell); with --run-cmd
    #[arg(long, value_name = "CMD", group = "source", requires = "run_cmd")]
    list_cmd: Option<String>,
    /// The command that runs a list of tests in one process, in the order given: one of its
    /// words is {names}, which becomes the names, one argument each (no shell)
    #[arg(long, value_name = "CMD", requires = "list_cmd")]
    run_cmd: Option<String>,
    /// With --libtest or --cargo-test: run ignored tests too
    #[arg(long)]
    include_ignored: bool,
    /// With --pytest: what selects the tests (paths, -k EXPR, ...); with --cargo-test: cargo's
    /// arguments
    #[arg(last = true, value_name = "ARGS", id = "runner_args")]
    runner_args: Vec<String>,
}

impl SourceArgs {
    /// The source named.
    ///
    /// # Errors
    /// [`LabError::Input`] for a `--run-cmd` without `{names}`, or an empty
    /// command.
    pub(super) fn spec(self) -> Result<SourceSpec, LabError> {
        if let Some(bin) = self.libtest {
            return Ok(SourceSpec::Runner(RunnerKind::Libtest {
                bin,
                include_ignored: self.include_ignored,
            }));
        }
        if self.cargo_test {
            return Ok(SourceSpec::Runner(RunnerKind::Libtest {
                bin: crate::suite::libtest::cargo_build(&self.runner_args)?,
                include_ignored: self.include_ignored,
            }));
        }
        if self.pytest {
            return Ok(SourceSpec::Runner(RunnerKind::Pytest {
                args: self.runner_args,
            }));
        }
        if let (Some(list), Some(run)) = (self.list_cmd, self.run_cmd) {
            let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
            let (list, run) = (words(&list), words(&run));
            if list.is_empty() {
                return Err(LabError::Input(
                    "--list-cmd is empty; give a command".into(),
                ));
            }
            if !run.iter().any(|w| w == "{names}") {
                return Err(LabError::Input(
                    "--run-cmd has no {names} word; write where the test names go, as in \
                     --run-cmd './run-tests {names}'"
                        .into(),
                ));
            }
            return Ok(SourceSpec::Runner(RunnerKind::Generic { list, run }));
        }
        Ok(SourceSpec::File(self.suite.unwrap_or_default()))
    }
}

/// The order of a suite's members: as written, reversed, shuffled, or given.
#[derive(clap::Args)]
pub(super) struct SuiteOrder {
    /// Run the members in the reverse of the written order
    #[arg(long, conflicts_with_all = ["seed", "members", "only"])]
    reverse: bool,
    /// Shuffle the members with this seed (the same order on every run)
    #[arg(long, conflicts_with_all = ["members", "only"])]
    seed: Option<u64>,
    /// Run exactly these members, in this order (comma-separated names)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAME,...",
        conflicts_with = "only"
    )]
    members: Vec<String>,
    /// A runner's tests: run exactly these (repeatable; a name may hold any character)
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
}

/// What `lab suite` and `lab bisect` share besides the source and order.
#[derive(clap::Args)]
#[command(mut_arg("deadline", |a| a.help(
    "Deadline of each trial (a member's planned course, or one run of a test runner's process), \
     like 400ms or 2s, 1ms..=1h (default: a suite file's member, the plan's own; a test runner, \
     60 s per run of the test process, and 60 s for its listing)"
)))]
pub(super) struct SuiteCommon {
    #[command(flatten)]
    trial: TrialOptions,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(super) format: Format,
    /// Where a test runner's runs are recorded: DIR/<run-id>/trials.csv, a row per run of
    /// its test process, with the diagnoses and output beside it
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: std::path::PathBuf,
}

impl SuiteCommon {
    /// The suite machinery's setup.
    ///
    /// # Errors
    /// [`LabError::Lab`] when the lab process cannot be prepared. (`--repeat`,
    /// `-j` and `--deadline` are range-checked by clap as they are parsed.)
    pub(super) fn setup(
        &self,
        source: SourceSpec,
        repeat: u64,
        order: SuiteOrder,
    ) -> Result<Setup, LabError> {
        let order = if !order.members.is_empty() {
            Order::Members(order.members)
        } else if !order.only.is_empty() {
            Order::Members(order.only)
        } else if let Some(seed) = order.seed {
            Order::Shuffled(seed)
        } else if order.reverse {
            Order::Reversed
        } else {
            Order::Written
        };
        Ok(Setup {
            source,
            repeat,
            order,
            deadline: self.trial.deadline,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(None),
            exe: lab_exe()?,
            out: Some(self.out.clone()),
        })
    }
}

/// `lab suite`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct SuiteCmd {
    #[command(flatten)]
    source: SourceArgs,
    /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..;
    /// a runner's test process starts the canonical way whatever it is
    #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
    strategies: Vec<String>,
    /// Runs alone and runs of the whole suite, per member and strategy (at least 1)
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = super::parse_count)]
    repeat: u64,
    /// Exit 0 only when no test is order-dependent or broken and nothing was left behind in
    /// K runs, and print the bound that proves (exit 1 otherwise)
    #[arg(long)]
    expect_clean: bool,
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
        let source = self.source.spec()?;
        // A runner's test process starts the canonical way: one strategy.
        let names = match source {
            SourceSpec::Runner(_) => vec!["canonical".to_string()],
            SourceSpec::File(_) => self.strategies,
        };
        let strategies = parse_strategies(&names)?;
        crate::report::check_target("--junit", self.junit.as_deref())?;
        crate::report::check_target("--ctrf", self.ctrf.as_deref())?;
        let start = std::time::SystemTime::now();
        let setup = self.common.setup(source, self.repeat, self.order)?;
        let report = crate::suite::run::run(&setup, &strategies)?;
        print_report(self.common.format, &report, || report.render());
        let tests = report.test_report();
        let (junit, ctrf) = (self.junit.as_deref(), self.ctrf.as_deref());
        super::write_reports(junit, ctrf, &tests, start)?;
        Ok(report.exit(self.expect_clean))
    }
}
