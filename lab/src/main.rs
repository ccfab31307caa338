//! `lab`: the command line. Parses arguments, calls the library, and maps
//! the result to an exit status: 0 every trial passed, 1 some trial did not,
//! 2 bad input, 3 the lab itself could not work. `lab suite` exits 1 when a
//! member is order-dependent; `lab bisect` exits 0 when it found the
//! members that make the victim fail and 1 when the victim is not
//! order-dependent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use lab::error::LabError;
use lab::node::guard::refusal;
use lab::plan::Plan;
use lab::run::{self, RunArgs};
use lab::scenario::overrides::Override;
use lab::scenario::{Scenario, BUILTIN};
use lab::strategy::{Strategy, PRESETS};
use lab::suite::bisect::BisectArgs;
use lab::suite::{Order, Setup};

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
enum ProgressArg {
    Auto,
    Bar,
    Lines,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChartFormatArg {
    Svg,
    Png,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
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
        /// Set a scenario key before planning (repeatable): a dotted path into the file
        /// (tree.depth=3, nodes.root.threads=4, kill.0.at=5ms) or an alias (depth, threads,
        /// hold, kill_delay)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse)]
        overrides: Vec<Override>,
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
    },
    /// Run a matrix of scenarios x strategies for N trials per cell or for a duration,
    /// streaming one CSV row per trial (resumable, shardable, gated)
    Soak {
        /// Scenario (repeatable): a built-in name or a path to a .toml file
        #[arg(long = "scenario", required_unless_present_any = ["all", "resume"])]
        scenarios: Vec<String>,
        /// Every shipped scenario
        #[arg(long, conflicts_with = "scenarios")]
        all: bool,
        /// Strategy (repeatable): a preset or create=..,death=..,observe=..
        #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
        strategies: Vec<String>,
        /// Trials per scenario (and swept value) and strategy
        #[arg(long, required_unless_present_any = ["duration", "resume"], conflicts_with = "duration")]
        trials: Option<u64>,
        /// Run for this long instead (like 30m or 8h)
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// The soak's seed: trial t runs the plan of a seed derived from it and t
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Sweep one scenario key: KEY=A..B/STEPS (kill_delay=1ms..20ms/5, threads=1..8/8,
        /// hold=0.1..0.9/5, depth=1..4/4, or a dotted path)
        #[arg(long)]
        sweep: Option<String>,
        /// Run only the trials of shard I of N (trial indices t with t % N == I-1)
        #[arg(long, value_name = "I/N")]
        shard: Option<lab::soak::matrix::Shard>,
        /// Exit 1 unless every trial of this strategy passes (repeatable): the nightly gate.
        /// STRATEGY:VERDICT,... allows other verdicts too (canonical:pass,panic where a
        /// guard's panic is the intended result)
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
        /// Progress: a bar when stdout is a terminal (auto), always, one line per trial, or none
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
        /// Output format of the summary
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Trials per second of `nested` under canonical against the raw floor (the same
    /// 15-process tree by a bare fork/wait loop), measured in one run, and their ratio
    Bench {
        /// Trees and trials to measure, each
        #[arg(long, default_value_t = 500)]
        trials: u64,
        /// Parallel workers (default: the number of cores)
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Join the CSVs of soak shards (or any result directories) into one
    Merge {
        /// Result directories (each with a trials.csv)
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write trials.csv and summary.json
        #[arg(long)]
        out: PathBuf,
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
    /// Run a suite's members alone and together in one process, K times each, and call
    /// out the members whose verdict depends on the order (exit 1 if any)
    Suite {
        /// A suite file (scenarios/suites/NAME.toml)
        suite: String,
        /// Strategy (repeatable): a preset (`lab strategies`) or create=..,death=..,observe=..
        #[arg(long = "strategy", default_values_t = ["canonical".to_string(), "legacy".to_string()])]
        strategies: Vec<String>,
        /// Runs alone and runs of the whole suite, per member and strategy
        #[arg(long, value_name = "K", default_value_t = 5)]
        repeat: u64,
        #[command(flatten)]
        order: SuiteOrder,
        #[command(flatten)]
        common: SuiteCommon,
    },
    /// Find the smallest set of members that, run before VICTIM in one process, make it
    /// fail (exit 0 when found, 1 when the victim is not order-dependent)
    Bisect {
        /// A suite file (scenarios/suites/NAME.toml)
        suite: String,
        /// The member that passes alone and fails in the suite
        #[arg(long)]
        victim: String,
        /// The strategy of every trial: a preset or create=..,death=..,observe=..
        #[arg(long, default_value = "legacy")]
        strategy: String,
        /// Runs of each step; a step stops at the first wave of runs in which the victim fails
        #[arg(long, value_name = "K", default_value_t = 5)]
        repeat: u64,
        /// Look for the reverse dependency: the members a victim that fails alone needs before
        /// it to pass
        #[arg(long)]
        opposite: bool,
        #[command(flatten)]
        order: SuiteOrder,
        #[command(flatten)]
        common: SuiteCommon,
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

/// The order of a suite's members: as written, reversed, shuffled, or given.
#[derive(clap::Args)]
struct SuiteOrder {
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

/// How every trial runs: `lab run`, `lab soak`, `lab suite` and `lab bisect`
/// take these the same way.
#[derive(clap::Args)]
struct TrialOptions {
    /// Deadline of each trial's planned course, like 400ms or 2s (default: the plan's own)
    #[arg(long, value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
    /// Run without a cgroup (subreaper alone), even where one is available
    #[arg(long, env = "LAB_NO_CGROUP", value_parser = clap::builder::FalseyValueParser::new())]
    no_cgroup: bool,
    /// Parallel supervisors (default: the number of cores)
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
}

impl TrialOptions {
    /// The deadline, refused when zero.
    ///
    /// # Errors
    /// [`LabError::Input`] for `--deadline 0s`.
    fn deadline(&self) -> Result<Option<Duration>, LabError> {
        if self.deadline.is_some_and(|d| d.is_zero()) {
            return Err(LabError::Input(
                "--deadline must be longer than zero".into(),
            ));
        }
        Ok(self.deadline)
    }

    fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(default_jobs)
    }
}

/// Parallel supervisors when `-j` is not given: the number of cores.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Make this process fit to run trials ([`run::prepare_lab_process`]) and
/// find its own binary, from which supervisors are started.
///
/// # Errors
/// [`LabError::Lab`] when either fails.
fn lab_exe() -> Result<PathBuf, LabError> {
    run::prepare_lab_process()?;
    std::env::current_exe().map_err(|e| LabError::Lab(format!("cannot find the lab binary: {e}")))
}

/// What `lab suite` and `lab bisect` share besides the order.
#[derive(clap::Args)]
struct SuiteCommon {
    #[command(flatten)]
    trial: TrialOptions,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The suite machinery's setup from the command line.
///
/// # Errors
/// [`LabError::Input`] for `--repeat 0` or a zero deadline; [`LabError::Lab`]
/// when the lab process cannot be prepared.
fn suite_setup(
    suite: String,
    repeat: u64,
    order: SuiteOrder,
    common: &SuiteCommon,
) -> Result<Setup, LabError> {
    if repeat == 0 {
        return Err(LabError::Input("--repeat must be at least 1".into()));
    }
    let deadline = common.trial.deadline()?;
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
        deadline,
        no_cgroup: common.trial.no_cgroup,
        jobs: common.trial.jobs(),
        exe: lab_exe()?,
    })
}

/// Print `value` as text or pretty JSON.
fn print_report<T: serde::Serialize>(format: Format, value: &T, text: impl FnOnce() -> String) {
    match format {
        Format::Text => print!("{}", text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(value).expect("json")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match execute(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab: {}", e.chain());
            e.exit() as i32
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
            let features = lifeline::probe::probe_kernel(cgroup.as_deref());
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
        Command::Suite {
            suite,
            strategies,
            repeat,
            order,
            common,
        } => {
            let strategies = parse_strategies(&strategies)?;
            let setup = suite_setup(suite, repeat, order, &common)?;
            let report = lab::suite::run::run(&setup, &strategies)?;
            print_report(common.format, &report, || report.render());
            Ok(if report.order_dependent.is_empty() {
                0
            } else {
                1
            })
        }
        Command::Bisect {
            suite,
            victim,
            strategy,
            repeat,
            opposite,
            order,
            common,
        } => {
            let strategy = Strategy::parse(&strategy).map_err(LabError::Input)?;
            let setup = suite_setup(suite, repeat, order, &common)?;
            let args = BisectArgs {
                victim,
                strategy,
                opposite,
            };
            let report = lab::suite::bisect::bisect(&setup, &args)?;
            print_report(common.format, &report, || report.render());
            Ok(if report.found { 0 } else { 1 })
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
            let have = if lifeline::probe::autokill_supported() {
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
        Command::Soak {
            scenarios,
            all,
            strategies,
            trials,
            duration,
            seed,
            sweep,
            shard,
            gates,
            trial,
            out,
            resume,
            progress,
            format,
        } => {
            let scenarios = if all {
                BUILTIN.iter().map(|(n, _)| n.to_string()).collect()
            } else {
                scenarios
            };
            let spec = lab::soak::SoakSpec {
                scenarios,
                strategies,
                trials,
                duration_s: duration.map(|d| d.as_secs().max(1)),
                seed,
                shard,
                sweep,
                deadline_ms: trial.deadline()?.map(|d| d.as_millis() as u64),
                no_cgroup: trial.no_cgroup,
                gates,
            };
            let stamp = lab::results::run_id("soak", seed);
            let args = lab::soak::SoakArgs {
                dir: resume
                    .clone()
                    .or(out)
                    .unwrap_or_else(|| PathBuf::from("results").join(stamp)),
                resume: resume.is_some(),
                spec,
                jobs: trial.jobs(),
                progress: match progress {
                    ProgressArg::Auto => lab::soak::Progress::Auto,
                    ProgressArg::Bar => lab::soak::Progress::Bar,
                    ProgressArg::Lines => lab::soak::Progress::Lines,
                    ProgressArg::None => lab::soak::Progress::None,
                },
                exe: lab_exe()?,
            };
            let summary = lab::soak::run(&args)?;
            print_report(format, &summary, || summary.render());
            Ok(if summary.gate_passed() { 0 } else { 1 })
        }
        Command::Bench {
            trials,
            jobs,
            format,
        } => {
            let out = std::env::temp_dir().join(format!("lab-bench-{}", std::process::id()));
            let jobs = jobs.unwrap_or_else(default_jobs);
            let t = lab::bench::throughput(lab_exe()?, trials, jobs, out)?;
            print_report(format, &t, || t.render());
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
        Command::Merge { dirs, out } => {
            let merged = lab::soak::merge::merge(&dirs, &out)?;
            println!(
                "merged {} rows ({} duplicates dropped) into {}",
                merged.rows,
                merged.duplicates,
                merged.csv.display()
            );
            Ok(0)
        }
        Command::Run {
            scenario,
            seed,
            overrides,
            trials,
            repeat,
            strategies,
            trial,
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
            let args = RunArgs {
                scenario,
                overrides,
                seed,
                trials,
                strategies: parse_strategies(&strategies)?,
                deadline: trial.deadline()?,
                no_cgroup: trial.no_cgroup,
                jobs: trial.jobs(),
                out,
                exe: lab_exe()?,
                gdb,
                keep_hung,
            };
            let summary = run::run(&args)?;
            print_report(format, &summary, || summary.render());
            Ok(if summary.all_passed() { 0 } else { 1 })
        }
    }
}
