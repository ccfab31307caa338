//! `lab`: the command line. Parses arguments, calls the library, and maps
//! the result to an exit status: 0 every trial passed, 1 some trial did not,
//! 2 bad input, 3 the lab itself could not work.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lab::error::LabError;
use lab::plan::Plan;
use lab::run::{self, RunArgs};
use lab::scenario::{Scenario, BUILTIN};
use lab::strategy::{Strategy, PRESETS};
use lab::trial::refusal;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Reproduce and soak-test process-lifecycle bugs: orphans, hangs and leaked fds in spawn trees"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChartFormatArg {
    Svg,
    Png,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario's plan under each strategy and print an A/B summary
    Run {
        /// A built-in scenario name (`lab list`) or a path to a .toml file
        scenario: String,
        /// The seed that turns the scenario into a plan
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Trials per strategy
        #[arg(long, default_value_t = 100, conflicts_with = "repeat")]
        trials: u64,
        /// Replay the plan K times per strategy and print the reproduction
        /// rate (a gated scenario must reproduce K/K)
        #[arg(long, value_name = "K")]
        repeat: Option<u64>,
        /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
        #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
        strategies: Vec<String>,
        /// Deadline of a trial's planned course, like 400ms or 2s (default: from the plan)
        #[arg(long, value_parser = humantime::parse_duration)]
        deadline: Option<Duration>,
        /// Run without a cgroup (subreaper alone), even where one is available
        #[arg(long, env = "LAB_NO_CGROUP", value_parser = clap::builder::FalseyValueParser::new())]
        no_cgroup: bool,
        /// Parallel supervisors (default: the number of cores)
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
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
    },
    /// Print the plan a scenario and seed resolve to, with its hash; exit 1
    /// when a strategy refuses the plan
    Plan {
        /// A built-in scenario name or a path to a .toml file
        scenario: String,
        /// The seed
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Strategy (repeatable) whose plan-time refusal to check: a preset or create=..,death=..,observe=..
        #[arg(long = "strategy", default_values_t = ["canonical".to_string()])]
        strategies: Vec<String>,
    },
    /// Validate scenario files, and check that no strategy refuses their plans
    Check {
        /// Files (or built-in names)
        #[arg(required = true)]
        files: Vec<String>,
        /// The seed that turns each scenario into the plan checked
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Strategy (repeatable) whose plan-time refusal to check: a preset or create=..,death=..,observe=..
        #[arg(long = "strategy", default_values_t = ["canonical".to_string()])]
        strategies: Vec<String>,
    },
    /// Print a markdown summary of result CSVs: one table per scenario
    /// (each verdict's rate with its 95% Wilson interval, median and p99 time
    /// to verdict and trial duration)
    Report {
        /// Results directories: each holds a trials.csv (`lab run`'s
        /// results/<run-id>, `lab soak --out DIR`), or has them below it
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Write the markdown to FILE instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Link each scenario's SVG charts (from `lab plot --out DIR`) under
        /// this path, as written (relative to where the markdown is read)
        #[arg(long, value_name = "PATH")]
        charts: Option<String>,
    },
    /// Draw charts of result CSVs: verdict rates, rate against a swept
    /// parameter, time to verdict, duration CDF; one file per chart and
    /// scenario, and charts.md listing them
    Plot {
        /// Results directories, as for `lab report`
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Directory to write the charts and charts.md into
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Chart file format
        #[arg(long, value_enum, default_value_t = ChartFormatArg::Svg)]
        format: ChartFormatArg,
    },
    /// List the built-in scenarios
    List,
    /// List the strategy presets
    Strategies,
    /// Print which kernel features this machine has and what they enable
    Env {
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    #[command(name = "__supervisor", hide = true)]
    Supervisor,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match execute(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

/// Parse `--strategy` values.
///
/// # Errors
/// [`LabError::Input`] for an unknown strategy.
fn parse_strategies(names: &[String]) -> Result<Vec<Strategy>, LabError> {
    names
        .iter()
        .map(|s| Strategy::parse(s).map_err(LabError::Input))
        .collect()
}

/// Print `{prefix}refused under STRATEGY: REASON` on stderr for each of
/// `strategies` whose plan-time guard refuses `plan`; returns how many did.
fn print_refusals(prefix: &str, plan: &Plan, strategies: &[Strategy]) -> usize {
    strategies
        .iter()
        .filter_map(|st| refusal(plan, st).map(|r| (st, r)))
        .inspect(|(st, r)| eprintln!("{prefix}refused under {st}: {}", r.reason))
        .count()
}

fn execute(command: Command) -> Result<i32, LabError> {
    match command {
        Command::Supervisor => Ok(lab::supervisor::main()),
        Command::Node {
            idx,
            parent_pid,
            lifeline,
            notify,
        } => lab::node::boot::main(idx, parent_pid, lifeline, notify),
        Command::Env { format } => {
            let cgroup = lab::cgroup::create_lab_cgroup();
            let features = lab::sys::probe::probe_kernel(cgroup.as_deref());
            match format {
                Format::Text => print!("{}", lab::env::render(&features, cgroup.as_deref())),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&lab::env::to_json(&features, cgroup.as_deref()))
                        .expect("json")
                ),
            }
            if let Some(dir) = &cgroup {
                lab::cgroup::remove_lab_cgroup(dir);
            }
            Ok(0)
        }
        Command::Report { dirs, out, charts } => {
            let ds = lab::analysis::Dataset::load(&dirs)?;
            let md = lab::analysis::report::render(
                &ds,
                &lab::analysis::report::ReportOptions { charts },
            );
            match out {
                Some(path) => std::fs::write(&path, md)
                    .map_err(|e| LabError::Lab(format!("cannot write {}: {e}", path.display())))?,
                None => print!("{md}"),
            }
            Ok(0)
        }
        Command::Plot { dirs, out, format } => {
            use lab::analysis::plot::{self, ChartFormat};
            let ds = lab::analysis::Dataset::load(&dirs)?;
            let format = match format {
                ChartFormatArg::Svg => ChartFormat::Svg,
                ChartFormatArg::Png => ChartFormat::Png,
            };
            for path in plot::plot(&ds, &out, format)? {
                println!("{}", path.display());
            }
            Ok(0)
        }
        Command::List => {
            for (name, text) in BUILTIN {
                let s = Scenario::parse(&format!("scenarios/{name}.toml"), text)?;
                let first = s.about.lines().next().unwrap_or("");
                println!("{name:<20} {} nodes  {first}", s.node_count());
            }
            Ok(0)
        }
        Command::Strategies => {
            for &(name, c, d, o, about) in PRESETS {
                let guards = if Strategy::canonical_axes(c, d, o) {
                    "on"
                } else {
                    "off"
                };
                println!(
                    "{name:<18} create={} death={} observe={} guards={guards}  {about}",
                    c.name(),
                    d.name(),
                    o.name()
                );
            }
            let have = if lab::sys::probe::autokill_supported() {
                "available here"
            } else {
                "not on this kernel"
            };
            println!(
                "{:<18} ({have})  {}",
                lab::strategy::AUTOKILL,
                lab::strategy::AUTOKILL_ABOUT
            );
            println!(
                "{:<18} create=..,death=..,observe=..[,guards=on|off]  any axes; guards default to on exactly with canonical's axes",
                "(axes)"
            );
            Ok(0)
        }
        Command::Check {
            files,
            seed,
            strategies,
        } => {
            let strategies = parse_strategies(&strategies)?;
            let (mut bad, mut refused) = (0, 0);
            for f in &files {
                match Scenario::load(f) {
                    Ok(s) => {
                        println!(
                            "{f}: ok ({}, {} nodes, {} kills)",
                            s.name,
                            s.node_count(),
                            s.kills.len()
                        );
                        refused +=
                            print_refusals(&format!("{f}: "), &Plan::new(&s, seed), &strategies);
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        bad += 1;
                    }
                }
            }
            Ok(if bad > 0 {
                2
            } else if refused > 0 {
                1
            } else {
                0
            })
        }
        Command::Plan {
            scenario,
            seed,
            format,
            strategies,
        } => {
            let strategies = parse_strategies(&strategies)?;
            let plan = Plan::new(&Scenario::load(&scenario)?, seed);
            match format {
                Format::Text => print!("{}", plan.render()),
                Format::Json => {
                    let mut v = serde_json::to_value(&plan).expect("a plan serializes");
                    v["plan_hash"] = plan.hash().into();
                    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
                }
            }
            Ok(if print_refusals("", &plan, &strategies) > 0 {
                1
            } else {
                0
            })
        }
        Command::Run {
            scenario,
            seed,
            trials,
            repeat,
            strategies,
            deadline,
            no_cgroup,
            jobs,
            out,
            format,
            gdb,
            keep_hung,
        } => {
            let trials = repeat.unwrap_or(trials);
            if trials == 0 {
                return Err(LabError::Input(
                    "--trials and --repeat must be at least 1".into(),
                ));
            }
            let strategies = strategies
                .iter()
                .map(|s| Strategy::parse(s).map_err(LabError::Input))
                .collect::<Result<Vec<_>, _>>()?;
            run::prepare_lab_process()?;
            let exe = std::env::current_exe()
                .map_err(|e| LabError::Lab(format!("cannot find the lab binary: {e}")))?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let args = RunArgs {
                scenario,
                seed,
                trials,
                strategies,
                deadline,
                no_cgroup,
                jobs,
                out,
                exe,
                gdb,
                keep_hung,
            };
            let summary = run::run(&args)?;
            match format {
                Format::Text => print!("{}", summary.render()),
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&summary).expect("json"))
                }
            }
            Ok(if summary.all_passed() { 0 } else { 1 })
        }
    }
}
