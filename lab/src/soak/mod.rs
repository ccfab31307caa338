//! `lab soak`: a matrix of scenarios × strategies (× the values of a swept
//! key) for N trials per cell or for a duration, in parallel, streamed to
//! `DIR/trials.csv` as trials end, resumable, shardable, and gated.
//!
//! The soak's directory holds:
//! - `soak.json`: what was asked (scenarios, strategies, trials or
//!   duration, seed, shard, sweep, deadline, gates): `--resume DIR` reads it;
//! - `started.csv`: each trial's cell, strategy, index and seed, flushed
//!   *before* the trial starts, so the trials in flight at a crash are known;
//! - `trials.csv`: one row per finished trial, flushed as it ends (a crash
//!   loses at most the trials in flight); `--resume` runs every trial of the
//!   matrix that has no row there, and none twice;
//! - `summary.json`: the counts, rates and percentiles of every row;
//! - `diagnosis/`: the diagnosis of every hang and orphan.

pub mod matrix;
pub mod merge;
pub mod tally;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::plan::Plan;
use crate::results::{self, CsvSink, RunContext, TrialRow, TrialSource};
use crate::scenario::overrides::Sweep;
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::{Outcome, Verdict};
use crate::{cgroup, runner};
use matrix::{nth_item, trial_seed, Cell, Item, Shard};
use tally::{GroupSummary, Tally};

/// How the soak shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A bar when stdout is a terminal, nothing otherwise.
    Auto,
    /// Always a bar (on stderr).
    Bar,
    /// One line per finished trial on stderr (for scripts and tests).
    Lines,
    /// Nothing.
    None,
}

/// What a soak is asked to run; stored as `soak.json` and read back by
/// `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoakSpec {
    /// Scenarios, as named (built-in names or paths).
    pub scenarios: Vec<String>,
    /// Strategies, as named.
    pub strategies: Vec<String>,
    /// Trials per cell and strategy; `None`: run for `duration_s`.
    pub trials: Option<u64>,
    /// How long to run (s), when `trials` is `None`.
    pub duration_s: Option<u64>,
    /// The soak's seed; trial `t` runs the plan of `trial_seed(seed, t)`.
    pub seed: u64,
    /// Only the trials of this shard.
    pub shard: Option<Shard>,
    /// The sweep, as written (`kill_delay=1ms..20ms/5`).
    pub sweep: Option<String>,
    /// Deadline override (ms); `None`: each plan's own.
    pub deadline_ms: Option<u64>,
    /// Run without a cgroup.
    pub no_cgroup: bool,
    /// Gated strategies, `STRATEGY[:VERDICT,...]`: every trial must have one
    /// of the verdicts (default `pass`).
    pub gates: Vec<String>,
}

/// What `lab soak` is asked to do.
#[derive(Clone, Debug)]
pub struct SoakArgs {
    /// The soak.
    pub spec: SoakSpec,
    /// Its directory.
    pub dir: PathBuf,
    /// Continue the soak in `dir` (its `soak.json` says what to run).
    pub resume: bool,
    /// Parallel supervisors.
    pub jobs: usize,
    /// How to show progress.
    pub progress: Progress,
    /// The `lab` binary (supervisors are started from it).
    pub exe: PathBuf,
}

/// The verdict of `--gate`.
#[derive(Clone, Debug, Serialize)]
pub struct Gate {
    /// The gates, as written (`canonical`, `canonical:pass,panic`).
    pub strategies: Vec<String>,
    /// Trials of the gated strategies with a verdict their gate does not
    /// allow.
    pub failures: u64,
    /// How to replay the first of them.
    pub replay: Vec<String>,
}

/// The result of a soak (what `summary.json` holds and `--format json`
/// prints).
#[derive(Clone, Debug, Serialize)]
pub struct SoakSummary {
    /// What was run.
    pub spec: SoakSpec,
    /// The soak's directory.
    pub dir: PathBuf,
    /// Its CSV.
    pub csv: PathBuf,
    /// Trials run by this invocation.
    pub trials_run: u64,
    /// Trials in the CSV (earlier invocations included).
    pub trials_total: u64,
    /// Wall time of this invocation (s).
    pub wall_s: f64,
    /// Trials per second of this invocation.
    pub trials_per_s: f64,
    /// One entry per scenario, swept value and strategy.
    pub groups: Vec<GroupSummary>,
    /// The gate, when `--gate` was given.
    pub gate: Option<Gate>,
    /// Whether trials ran in cgroups of their own.
    pub cgroup: bool,
    /// The lab's peak resident memory (KiB, `VmHWM`) at the end.
    pub lab_peak_rss_kib: u64,
    /// The lab's open fds at the end.
    pub lab_fds: u64,
    /// Kernel release.
    pub kernel: String,
    /// Lab version.
    pub lab_version: String,
}

impl SoakSummary {
    /// Whether the gated strategies passed every trial (exit status 0).
    pub fn gate_passed(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| g.failures == 0)
    }

    /// The summary as text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "lab soak {}  seed {}{}  {} trials this run ({:.1}/s), {} in {}\n",
            self.spec.scenarios.join(" "),
            self.spec.seed,
            self.spec
                .shard
                .map_or(String::new(), |sh| format!("  shard {sh}")),
            self.trials_run,
            self.trials_per_s,
            self.trials_total,
            self.csv.display()
        );
        s.push_str(&tally::render(&self.groups));
        if let Some(g) = &self.gate {
            s.push_str(&format!(
                "\ngate {}: {}\n",
                g.strategies.join(", "),
                if g.failures == 0 {
                    "every trial passed".to_string()
                } else {
                    format!("{} trials did not pass; replay:", g.failures)
                }
            ));
            for r in &g.replay {
                s.push_str(&format!("  {r}\n"));
            }
        }
        s.push_str(&format!(
            "\nlab process: peak RSS {} KiB, {} fds open\n",
            self.lab_peak_rss_kib, self.lab_fds
        ));
        s
    }
}

/// The soak's parsed parts.
struct Matrix {
    cells: Vec<Cell>,
    strategies: Vec<Strategy>,
}

/// Run (or resume) the soak of `args`.
///
/// # Errors
/// [`LabError::Input`] for a bad scenario, strategy or sweep, a directory
/// that already holds another soak (without `--resume`) or none (with it);
/// [`LabError::Lab`] when results cannot be written or supervisors cannot
/// be started.
pub fn run(args: &SoakArgs) -> Result<SoakSummary, LabError> {
    let spec_path = args.dir.join("soak.json");
    let spec = if args.resume {
        let text = fs::read_to_string(&spec_path).map_err(|e| {
            LabError::Input(format!(
                "{} holds no soak to resume ({}: {e})",
                args.dir.display(),
                spec_path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::Input(format!("{}: {e}", spec_path.display())))?
    } else {
        if spec_path.exists() {
            return Err(LabError::Input(format!(
                "{} already holds a soak; continue it with --resume {}, or pick another --out",
                args.dir.display(),
                args.dir.display()
            )));
        }
        args.spec.clone()
    };
    let m = matrix_of(&spec)?;
    let lab_err = |what: &str, e: std::io::Error| LabError::Lab(format!("{what}: {e}"));
    fs::create_dir_all(&args.dir).map_err(|e| lab_err(&args.dir.display().to_string(), e))?;
    if !args.resume {
        let json = serde_json::to_string_pretty(&spec).expect("a spec serializes");
        fs::write(&spec_path, json).map_err(|e| lab_err(&spec_path.display().to_string(), e))?;
    }
    // What earlier invocations finished: counted, and never run again.
    let mut tally = Tally::default();
    let mut done: HashSet<(String, String, String, u64)> = HashSet::new();
    let csv_path = args.dir.join("trials.csv");
    if csv_path.exists() {
        for row in results::read_rows(&csv_path)
            .map_err(|e| LabError::Input(format!("cannot resume: {e}")))?
        {
            done.insert((
                row.scenario.clone(),
                row.sweep_value.clone(),
                row.strategy.clone(),
                row.trial,
            ));
            tally.add(&row);
        }
    }
    let mut csv =
        CsvSink::append(&args.dir).map_err(|e| lab_err(&csv_path.display().to_string(), e))?;
    let started_path = args.dir.join("started.csv");
    let new_journal = !started_path.exists();
    let mut started = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&started_path)
        .map_err(|e| lab_err(&started_path.display().to_string(), e))?;
    if new_journal {
        let _ = writeln!(started, "scenario,sweep_value,strategy,trial,seed");
    }
    let started = Mutex::new(started);
    let (lab_cgroup, _) = cgroup::trial_parent(spec.no_cgroup);
    let ctx = RunContext::new("soak", spec.seed);
    let begin = Instant::now();
    let deadline = spec.duration_s.map(|s| begin + Duration::from_secs(s));
    let total = spec.trials.map(|n| {
        let mine = (0..n)
            .filter(|&t| spec.shard.is_none_or(|s| s.has(t)))
            .count() as u64;
        mine * (m.cells.len() * m.strategies.len()) as u64
    });
    let bar = progress_bar(
        args.progress,
        total.map(|t| t.saturating_sub(done.len() as u64)),
    );
    // The next position in the round-by-round order, and the items in flight
    // by pool index (with their seed and plan hash).
    let cursor = Mutex::new(0u64);
    let in_flight: Mutex<HashMap<u64, (Item, u64, String)>> = Mutex::new(HashMap::new());
    let request = |i: u64| -> Option<TrialRequest> {
        let item = {
            let mut k = cursor.lock().expect("cursor");
            loop {
                let item = nth_item(*k, m.cells.len(), m.strategies.len(), spec.shard);
                if spec.trials.is_some_and(|n| item.trial >= n)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return None;
                }
                *k += 1;
                let cell = &m.cells[item.cell];
                let key = (
                    cell.scenario.name.clone(),
                    sweep_value(cell),
                    m.strategies[item.strategy].name.clone(),
                    item.trial,
                );
                if !done.contains(&key) {
                    break item;
                }
            }
        };
        let cell = &m.cells[item.cell];
        let strategy = &m.strategies[item.strategy];
        let seed = trial_seed(spec.seed, item.trial);
        let plan = Plan::new(&cell.scenario, seed);
        if let Ok(mut j) = started.lock() {
            let _ = writeln!(
                j,
                "{},{},{},{},{seed}",
                cell.scenario.name,
                sweep_value(cell),
                strategy.name,
                item.trial
            );
            let _ = j.flush();
        }
        in_flight
            .lock()
            .expect("in flight")
            .insert(i, (item, seed, plan.hash()));
        Some(TrialRequest {
            deadline_us: spec.deadline_ms.map_or(plan.deadline_us, |ms| ms * 1000),
            plan,
            strategy: strategy.clone(),
            trial: item.trial,
            cgroup_parent: lab_cgroup.clone(),
            gdb: false,
            keep_hung: false,
        })
    };
    let mut write_error = None;
    let mut trials_run = 0u64;
    let wall = runner::run_pool(&args.exe, args.jobs, &request, &|_| {}, |i, o: Outcome| {
        let Some((item, seed, plan_hash)) = in_flight.lock().expect("in flight").remove(&i) else {
            return;
        };
        let cell = &m.cells[item.cell];
        let strategy = &m.strategies[item.strategy];
        let stem = format!(
            "{}.{}.{}.{}",
            cell.scenario.name,
            sweep_value(cell),
            strategy.name,
            item.trial
        );
        let diagnosis = match &o.diagnosis {
            Some(d) => match results::write_diagnosis(&args.dir, &stem, d) {
                Ok(p) => p.display().to_string(),
                Err(e) => {
                    write_error = Some(e);
                    String::new()
                }
            },
            None => String::new(),
        };
        let sweep = cell
            .sweep
            .as_ref()
            .map(|o| (o.key.as_str(), o.value.as_str()));
        let src = TrialSource {
            scenario: &cell.scenario.name,
            scenario_hash: &cell.scenario.source_hash,
            plan_hash: &plan_hash,
            seed,
            trial: item.trial,
            sweep,
        };
        let replay = replay_command(cell, strategy, seed, &spec);
        let row = TrialRow::new(&ctx, &src, strategy, &o, &diagnosis, &replay);
        if let Err(e) = csv.write(&row) {
            write_error = Some(e);
        }
        tally.add(&row);
        trials_run += 1;
        match args.progress {
            Progress::Lines => eprintln!(
                "soak: {} {} {} trial {}: {}",
                cell.scenario.name,
                sweep_value(cell),
                strategy.name,
                item.trial,
                row.verdict
            ),
            _ => {
                bar.inc(1);
                bar.set_message(live_counts(&tally));
            }
        }
    });
    bar.finish_and_clear();
    if let Some(dir) = &lab_cgroup {
        cgroup::remove_lab_cgroup(dir);
    }
    runner::sweep_orphans();
    let wall = wall?;
    if let Some(e) = write_error {
        return Err(LabError::Lab(format!(
            "cannot write under {}: {e}",
            args.dir.display()
        )));
    }
    let groups = tally.summaries();
    let gate = (!spec.gates.is_empty()).then(|| gate_of(&spec.gates, &groups));
    let (rss, fds) = own_usage();
    let summary = SoakSummary {
        csv: csv.path().to_path_buf(),
        dir: args.dir.clone(),
        trials_run,
        trials_total: tally.trials(),
        wall_s: wall.as_secs_f64(),
        trials_per_s: if wall.as_secs_f64() > 0.0 {
            trials_run as f64 / wall.as_secs_f64()
        } else {
            0.0
        },
        groups,
        gate,
        cgroup: lab_cgroup.is_some(),
        lab_peak_rss_kib: rss,
        lab_fds: fds,
        kernel: ctx.kernel.clone(),
        lab_version: ctx.lab_version.clone(),
        spec,
    };
    write_summary(&args.dir, &summary)?;
    Ok(summary)
}

/// Parse the strategies, the sweep and the cells of `spec`.
fn matrix_of(spec: &SoakSpec) -> Result<Matrix, LabError> {
    if spec.scenarios.is_empty() {
        return Err(LabError::Input(
            "no scenario: give --scenario NAME (repeatable) or --all".into(),
        ));
    }
    if spec.trials.is_none() == spec.duration_s.is_none() {
        return Err(LabError::Input(
            "give either --trials N (per scenario and strategy) or --duration (like 8h)".into(),
        ));
    }
    let strategies = spec
        .strategies
        .iter()
        .map(|s| Strategy::parse(s).map_err(LabError::from))
        .collect::<Result<Vec<_>, _>>()?;
    for g in &spec.gates {
        let (name, allowed) = gate_parts(g);
        if !strategies.iter().any(|s| s.name == name) {
            return Err(LabError::Input(format!(
                "--gate {g}: `{name}` is not one of the soak's strategies ({})",
                spec.strategies.join(", ")
            )));
        }
        if let Some(bad) = allowed
            .iter()
            .find(|v| !Verdict::ALL.iter().any(|x| x.name() == **v))
        {
            return Err(LabError::Input(format!(
                "--gate {g}: `{bad}` is not a verdict ({})",
                Verdict::ALL.map(|v| v.name()).join(", ")
            )));
        }
    }
    let sweep = spec
        .sweep
        .as_deref()
        .map(Sweep::parse)
        .transpose()
        .map_err(LabError::from)?;
    let cells = matrix::cells(&spec.scenarios, sweep.as_ref())?;
    for c in &cells {
        crate::run::check_privileges(&c.scenario)?;
    }
    Ok(Matrix { cells, strategies })
}

fn sweep_value(cell: &Cell) -> String {
    cell.sweep
        .as_ref()
        .map_or(String::new(), |o| o.value.clone())
}

/// `lab run` of one trial of the soak: its scenario, seed, swept value and
/// strategy.
fn replay_command(cell: &Cell, strategy: &Strategy, seed: u64, spec: &SoakSpec) -> String {
    let mut cmd = format!("lab run {} --seed {seed}", cell.name);
    if let Some(o) = &cell.sweep {
        cmd.push_str(&format!(" --set {}={}", o.key, o.value));
    }
    cmd.push_str(&format!(" --strategy {} --trials 1", strategy.name));
    if let Some(ms) = spec.deadline_ms {
        cmd.push_str(&format!(" --deadline {ms}ms"));
    }
    if spec.no_cgroup {
        cmd.push_str(" --no-cgroup");
    }
    cmd
}

/// `STRATEGY[:VERDICT,...]`: the strategy and the verdicts its trials may
/// have (default `pass`).
fn gate_parts(gate: &str) -> (&str, Vec<&str>) {
    match gate.split_once(':') {
        Some((name, verdicts)) => (name, verdicts.split(',').map(str::trim).collect()),
        None => (gate, vec![Verdict::Pass.name()]),
    }
}

/// How many trials of the gated strategies had a verdict their gate does
/// not allow, and the replay commands of the first of them.
fn gate_of(gates: &[String], groups: &[GroupSummary]) -> Gate {
    let mut failures = 0;
    let mut replay = Vec::new();
    for gate in gates {
        let (name, allowed) = gate_parts(gate);
        for g in groups.iter().filter(|g| g.strategy == name) {
            let fine: u64 = allowed.iter().map(|v| g.rates[*v].count).sum();
            failures += g.trials - fine;
            replay.extend(
                g.failing
                    .iter()
                    .filter(|f| !allowed.contains(&f.verdict.as_str()))
                    .map(|f| format!("{}   # {}", f.replay, f.verdict)),
            );
        }
    }
    replay.truncate(20);
    Gate {
        strategies: gates.to_vec(),
        failures,
        replay,
    }
}

fn progress_bar(progress: Progress, total: Option<u64>) -> ProgressBar {
    let show = match progress {
        Progress::Bar => true,
        Progress::Auto => std::io::stdout().is_terminal(),
        Progress::Lines | Progress::None => false,
    };
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{elapsed_precise} [{bar:30}] {pos}/{len} trials  {per_sec}  {msg}"
    } else {
        "{elapsed_precise} {spinner} {pos} trials  {per_sec}  {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `canonical: pass 120 | legacy: orphan 118 hang 2`.
fn live_counts(tally: &Tally) -> String {
    let mut per: Vec<(String, Vec<String>)> = Vec::new();
    for ((strategy, verdict), n) in tally.by_strategy() {
        match per.iter_mut().find(|(s, _)| *s == strategy) {
            Some((_, v)) => v.push(format!("{verdict} {n}")),
            None => per.push((strategy, vec![format!("{verdict} {n}")])),
        }
    }
    per.iter()
        .map(|(s, v)| format!("{s}: {}", v.join(" ")))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The lab's own peak RSS (KiB, `VmHWM` of `/proc/self/status`) and open fds.
fn own_usage() -> (u64, u64) {
    let rss = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fds = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (rss, fds)
}

fn write_summary(dir: &Path, summary: &SoakSummary) -> Result<(), LabError> {
    let path = dir.join("summary.json");
    let json = serde_json::to_string_pretty(summary).expect("a summary serializes");
    File::create(&path)
        .and_then(|mut f| f.write_all(json.as_bytes()))
        .map_err(|e| LabError::Lab(format!("cannot write {}: {e}", path.display())))
}
