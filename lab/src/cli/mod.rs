//! The command line, in two stages (as ripgrep does): clap parses the raw
//! arguments into each command's `*Cmd` struct (one file per command), which
//! then validates them into the library's options and runs the command.
//! Every command returns `Result<Exit, LabError>`; [`Exit::of`] is the one
//! place where that becomes the process exit status.

#[macro_use]
mod out;

mod bench;
mod bisect;
mod check;
mod env;
mod examples;
mod exec;
mod fuzz;
mod janitor;
mod list;
mod merge;
pub mod options;
mod plan;
mod plot;
mod report;
mod run;
mod shell;
mod soak;
mod strategies;
mod style;
mod suite;
mod wrap;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Exit, LabError};
use crate::plan::Plan;
use crate::strategy::Strategy;
use options::{parse_count, parse_deadline, parse_jobs, parse_soak_duration, MAX_JOBS};

/// `lab`'s arguments.
#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Reproduce and soak-test process-lifecycle bugs: orphans, hangs and leaked fds in spawn trees",
    after_help = examples::help("lab")
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario's plan under each strategy and print an A/B summary; exit 1 when a
    /// strategy gives a verdict its scenario's [expect] does not list (unlisted: pass)
    #[command(after_help = examples::help("run"))]
    Run(run::RunCmd),
    /// Run a matrix of scenarios x strategies for N trials per cell or for a duration,
    /// streaming one CSV row per trial (resumable, shardable); exit 1 when a strategy gives
    /// a verdict its scenario's [expect] (or --gate) does not list
    #[command(after_help = examples::help("soak"))]
    Soak(soak::SoakCmd),
    /// Run your own program as the root of each trial, N times (killed at a moment each trial
    /// draws, if asked): pass, fail (exit status), orphan (descendants left alive, named), leak
    /// (stdio held open, with --capture) or hang; exit 1 unless every trial passed
    #[command(after_help = examples::help("exec"))]
    Exec(exec::ExecCmd),
    /// Run one program once, transparently (stdio, environment, signals), as the root of
    /// one trial; exit with its status unless it left processes behind, each named with
    /// its lineage (for cargo's runner, nextest's wrapper scripts, a CI step)
    #[command(after_help = examples::help("wrap"))]
    Wrap(wrap::WrapCmd),
    /// Generate scenarios (proptest, swarm testing), run each as a trial under each strategy
    /// against the property (no orphan, hang, leak, fail, error, early-death, innocent-kill),
    /// shrink the first case of each failure class (verdict x signatures) to the smallest
    /// that still fails the same way and keep it as a regression; exit 1 when a case failed
    #[command(after_help = examples::help("fuzz"))]
    Fuzz(fuzz::FuzzCmd),
    /// Trials per second of `nested` under canonical against the raw floor (the same
    /// 15-process tree by a bare fork/wait loop), measured in one run, and their ratio
    #[command(after_help = examples::help("bench"))]
    Bench(bench::BenchCmd),
    /// Join the CSVs of soak shards (or any result directories) into one
    #[command(after_help = examples::help("merge"))]
    Merge(merge::MergeCmd),
    /// Print a markdown summary of result CSVs: one table per scenario
    /// (each verdict's rate with its 95% Wilson interval, median and p99 time
    /// to verdict and trial duration)
    #[command(after_help = examples::help("report"))]
    Report(report::ReportCmd),
    /// Draw charts of result CSVs: verdict rates, rate against a swept
    /// parameter, time to verdict, duration CDF; one file per chart and
    /// scenario, and charts.md listing them
    #[command(after_help = examples::help("plot"))]
    Plot(plot::PlotCmd),
    /// Print the plan a scenario and seed resolve to, with its hash; exit 1
    /// when a strategy refuses the plan
    #[command(after_help = examples::help("plan"))]
    Plan(plan::PlanCmd),
    /// Validate scenario files, and check that no strategy refuses their plans
    #[command(after_help = examples::help("check"))]
    Check(check::CheckCmd),
    /// Run a suite's members, or a test runner's tests (--libtest, --pytest, ...), alone and
    /// together in one process, K times each, and call out the members whose verdict depends
    /// on the order (exit 1 if any)
    #[command(after_help = examples::help("suite"))]
    Suite(suite::SuiteCmd),
    /// Find the smallest set of members that, run before VICTIM in one process, make it
    /// fail (exit 0 when found, 1 when the victim is not order-dependent)
    #[command(after_help = examples::help("bisect"))]
    Bisect(bisect::BisectCmd),
    /// List the built-in scenarios
    #[command(after_help = examples::help("list"))]
    List(list::ListCmd),
    /// List the strategy presets
    #[command(after_help = examples::help("strategies"))]
    Strategies(strategies::StrategiesCmd),
    /// Print which kernel features this machine has and what they enable
    #[command(after_help = examples::help("env"))]
    Env(env::EnvCmd),
    /// List the cgroups of labs that are no longer running; --remove removes them
    #[command(after_help = examples::help("janitor"))]
    Janitor(janitor::JanitorCmd),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell)
    #[command(after_help = examples::help("completions"))]
    Completions(shell::CompletionsCmd),
    /// Print the manual page of lab (roff, for `man -l -`) or of one of its commands
    #[command(after_help = examples::help("man"))]
    Man(shell::ManCmd),
    #[command(name = "__supervisor", hide = true)]
    Supervisor {
        /// The lab's cgroup, which the last supervisor out removes if the
        /// lab dies.
        #[arg(long)]
        lab_cgroup: Option<PathBuf>,
    },
    #[command(name = "__node", hide = true)]
    Node {
        idx: u32,
        parent_pid: i32,
        #[arg(long)]
        lifeline: bool,
        #[arg(long)]
        notify: bool,
    },
}

/// Run the command `cli` names.
///
/// # Errors
/// What the command returns: [`LabError`]s of bad input (exit 2) or of a
/// lab that could not work (exit 3).
pub fn execute(cli: Cli) -> Result<Exit, LabError> {
    match cli.command {
        Command::Run(c) => c.execute(),
        Command::Soak(c) => c.execute(),
        Command::Exec(c) => c.execute(),
        Command::Wrap(c) => c.execute(),
        Command::Fuzz(c) => c.execute(),
        Command::Bench(c) => c.execute(),
        Command::Merge(c) => c.execute(),
        Command::Report(c) => c.execute(),
        Command::Plot(c) => c.execute(),
        Command::Plan(c) => c.execute(),
        Command::Check(c) => c.execute(),
        Command::Suite(c) => c.execute(),
        Command::Bisect(c) => c.execute(),
        Command::List(c) => c.execute(),
        Command::Strategies(c) => c.execute(),
        Command::Env(c) => c.execute(),
        Command::Janitor(c) => c.execute(),
        Command::Completions(c) => c.execute(),
        Command::Man(c) => c.execute(),
        Command::Supervisor { lab_cgroup } => Ok(match crate::supervisor::main(lab_cgroup) {
            0 => Exit::Clean,
            _ => Exit::Lab,
        }),
        Command::Node {
            idx,
            parent_pid,
            lifeline,
            notify,
        } => crate::node::boot::main(idx, parent_pid, lifeline, notify),
    }
}

/// Text or JSON output.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Print `value` as text or as pretty JSON with its `schema`
/// ([`crate::json::to_string_pretty`]: every command's JSON goes through
/// here).
fn print_report<T: serde::Serialize + ?Sized>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) {
    match format {
        Format::Text => out!("{}", style::for_stdout(&text())),
        Format::Json => match crate::json::to_string_pretty(value) {
            Ok(json) => outln!("{json}"),
            Err(e) => errln!("lab: cannot write the JSON output: {e}"),
        },
    }
}

/// Write the JUnit and CTRF files (`--junit`, `--ctrf`) of `report`, of a
/// command that started at `start`, where asked.
///
/// # Errors
/// [`LabError::Io`] when a report file cannot be written.
fn write_reports(
    junit: Option<&std::path::Path>,
    ctrf: Option<&std::path::Path>,
    report: &crate::report::TestReport,
    start: std::time::SystemTime,
) -> Result<(), LabError> {
    crate::report::junit::write(junit, report)?;
    crate::report::ctrf::write(ctrf, report, start, std::time::SystemTime::now())
}

/// How every trial runs: `lab run`, `lab soak`, `lab suite` and `lab bisect`
/// take these the same way.
#[derive(clap::Args)]
struct TrialOptions {
    /// Deadline of each trial's planned course, like 400ms or 2s, 1ms..=1h (default: the plan's own)
    #[arg(long, value_parser = parse_deadline)]
    deadline: Option<Duration>,
    /// Run without a cgroup (subreaper alone), even where one is available
    #[arg(long, env = "LAB_NO_CGROUP", value_parser = clap::builder::FalseyValueParser::new())]
    no_cgroup: bool,
    /// Parallel supervisors, 1..=1024 (default: the number of cores; never more than the trials)
    #[arg(short = 'j', long, value_parser = parse_jobs)]
    jobs: Option<usize>,
}

impl TrialOptions {
    /// Parallel supervisors: `-j` or the number of cores, at most `work`
    /// (the trials there are, when known) and at least 1.
    fn jobs(&self, work: Option<u64>) -> usize {
        let jobs = self.jobs.unwrap_or_else(default_jobs);
        work.map_or(jobs, |w| jobs.min(usize::try_from(w).unwrap_or(usize::MAX)))
            .max(1)
    }
}

/// Parallel supervisors when `-j` is not given: the number of cores (at
/// most [`MAX_JOBS`]).
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_JOBS))
}

/// Make this process fit to run trials ([`crate::session::prepare_lab_process`])
/// and find its own binary, from which supervisors are started.
///
/// # Errors
/// [`LabError::Lab`] when either fails.
fn lab_exe() -> Result<PathBuf, LabError> {
    crate::session::prepare_lab_process()?;
    std::env::current_exe().map_err(|e| LabError::io("cannot find the lab binary", e))
}

/// Parse `--strategy` values.
///
/// # Errors
/// [`LabError::Strategy`] for an unknown strategy.
fn parse_strategies(names: &[String]) -> Result<Vec<Strategy>, LabError> {
    names
        .iter()
        .map(|s| Strategy::parse(s).map_err(LabError::from))
        .collect()
}

/// Print `{prefix}refused at plan time under STRATEGY: REASON` on stderr for each of
/// `strategies` whose plan-time guard refuses `plan`; returns how many did.
fn print_refusals(prefix: &str, plan: &Plan, strategies: &[Strategy]) -> usize {
    strategies
        .iter()
        .filter_map(|st| crate::node::guard::refusal(plan, st).map(|r| (st, r)))
        .inspect(|(st, r)| errln!("{prefix}{}", check::refusal_line(st, &r.reason)))
        .count()
}
