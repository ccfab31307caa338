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
//! - `diagnosis/`: the diagnosis of every hang and orphan;
//! - `soak.lock`: the `flock` of the one soak that writes here (its PID
//!   inside), held while it runs: a second soak or `--resume` of the same
//!   directory is refused (exit 2) and names the holder.
//!
//! The directory is the caller's ([`OwnDir`]: no other user can write it,
//! no symlink of another user's leads to it), and so is every file a resume
//! reads; a resume runs no scenario whose content hash differs from the one
//! the soak recorded (in `soak.json` and in every row). A write error (a
//! full disk) stops the soak as a Ctrl-C does: the partial summary and the
//! resume command are printed, and it exits 3.

pub mod expectation;
pub mod journal;
pub mod lock;
pub mod matrix;
pub mod merge;
pub mod summary;
mod trials;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::expect::{Comparison, Gate};
use crate::output::progress::{Bar, Progress};
use crate::record::csv::{drop_torn_row, read_rows_torn, TRIALS_CSV};
use crate::record::row::SCHEMA;
use crate::record::trust::{Missing, OwnDir};
use crate::record::{GroupSummary, Recorder, RunContext, TrialRow};
use crate::scenario::overrides::{Override, Sweep};
use crate::session::{check_privileges, Session};
use crate::strategy::Strategy;
use journal::Journal;
use matrix::{nth_item, Cell, Item, Shard};
use trials::Trials;

pub use expectation::Expectation;
pub use summary::SoakSummary;

/// What a soak is asked to run; stored as `soak.json` and read back by
/// `--resume`.
#[serde_with::serde_as]
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
    #[serde_as(as = "serde_with::PickFirst<(serde_with::DisplayFromStr, _)>")]
    pub seed: u64,
    /// Only the trials of this shard.
    pub shard: Option<Shard>,
    /// Scenario keys set before planning, as written (`KEY=VALUE`), in
    /// every scenario of the soak.
    #[serde(default)]
    pub set: Vec<String>,
    /// The sweep, as written (`kill_delay=1ms..20ms/5`).
    pub sweep: Option<String>,
    /// Deadline override (ms); `None`: each plan's own.
    pub deadline_ms: Option<u64>,
    /// Run without a cgroup.
    pub no_cgroup: bool,
    /// Gated strategies, `STRATEGY[:VERDICT,...]`: every trial must have one
    /// of the verdicts (default `pass`).
    pub gates: Vec<String>,
    /// The content hash of each cell's scenario (its `--set` and swept
    /// values applied), in the order of the cells, when the soak started
    /// (filled by [`run`]): a resume runs no cell whose scenario changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenario_hashes: Vec<String>,
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
    /// Diagnoses written per scenario x strategy cell at most
    /// (`--max-diagnoses`; an earlier invocation's count against it).
    pub max_diagnoses: u64,
}

/// The soak's parsed parts.
struct Matrix {
    cells: Vec<Cell>,
    strategies: Vec<Strategy>,
    gates: Vec<Gate>,
}

/// The identity of a trial in the CSV: scenario, swept value, strategy,
/// index.
type Done = HashSet<(String, String, String, u64)>;

/// Run (or resume) the soak of `args`.
///
/// # Errors
/// [`LabError::Input`] for a bad scenario, strategy or sweep, a directory
/// that already holds another soak (without `--resume`) or none (with it);
/// [`LabError::Io`] when results cannot be written or supervisors cannot
/// be started.
pub fn run(args: &SoakArgs) -> Result<SoakSummary, LabError> {
    let missing = if args.resume {
        Missing::Refuse
    } else {
        Missing::Create
    };
    // A new soak's matrix first: a bad scenario leaves no directory behind.
    let new = (!args.resume).then(|| matrix_of(&args.spec)).transpose()?;
    crate::session::check_proc(&args.exe)?;
    let dir = OwnDir::open(&args.dir, missing)?;
    let mut spec = spec_of(args, &dir)?;
    let m = match new {
        Some(m) => m,
        None => matrix_of(&spec)?,
    };
    // One writer per directory, for the whole soak (dropped at the end).
    let _lock = lock::DirLock::acquire(&args.dir)?;
    let hashes: Vec<String> = m
        .cells
        .iter()
        .map(|c| c.scenario.source_hash.clone())
        .collect();
    if args.resume {
        check_recorded_hashes(args, &spec, &m, &hashes)?;
    } else {
        spec.scenario_hashes = hashes;
        write_spec(args, &dir, &spec)?;
    }
    let (mut rec, done) = open_recorder(args, &dir, &spec, &m)?;
    let session = Session::open(&args.exe, args.jobs, spec.no_cgroup);
    let begin = Instant::now();
    let total = spec.trials.map(|n| {
        let mine = (0..n)
            .filter(|&t| spec.shard.is_none_or(|s| s.has(t)))
            .count() as u64;
        mine * (m.cells.len() * m.strategies.len()) as u64
    });
    // From the header on, Ctrl-C stops the soak and prints what it has.
    crate::session::stop_on_interrupt();
    header(&spec, &m, args, total, done.len() as u64, session.jobs());
    let pidns = session.pid_namespace();
    if let Some(warning) = pidns.warning() {
        crate::output::write_err(format_args!("{warning}\n"));
    }
    let bar = Bar::new(
        args.progress,
        total.map(|t| t.saturating_sub(done.len() as u64)),
    );
    let trials = Trials {
        args,
        spec: &spec,
        m: &m,
        done: &done,
        started: Mutex::new(Journal::open(&dir)?),
        failed: std::sync::atomic::AtomicBool::new(false),
        deadline: spec.duration_s.map(|s| begin + Duration::from_secs(s)),
        cgroup_parent: session.cgroup_parent(),
        log_dir: std::path::absolute(rec.dir().join("log"))
            .unwrap_or_else(|_| rec.dir().join("log")),
        diagnosed: rec.diagnosed_cells(),
        cursor: Mutex::new(0),
        in_flight: Mutex::new(HashMap::new()),
    };
    let (wall, trials_run) = trials.run(&session, &mut rec, &bar);
    let journal_error = trials.started.into_inner().ok().and_then(|mut j| {
        j.error().map(|e| {
            let path = args.dir.join(journal::STARTED_CSV);
            LabError::io(format!("cannot write {}", path.display()), e)
        })
    });
    bar.finish();
    let cgroup = session.has_cgroup();
    drop(session);
    let wall = wall?;
    let stopped = rec.check().err().or(journal_error);
    let mut summary = summarize(args, spec, &m, &rec, trials_run, wall, cgroup);
    summary.pid_namespace = pidns.label().into();
    if let Some(e) = stopped {
        // Stopped by a write error: what was written stands, and the
        // summary (partial) is shown with the resume command; its file is
        // written if it can be.
        summary.resume = Some(resume_command(&args.dir));
        summary.stopped = Some(e.chain());
        let _ = summary::write_summary(&dir, &summary);
        return Ok(summary);
    }
    summary::write_summary(&dir, &summary)?;
    Ok(summary)
}

/// Refuse to resume when a scenario of the soak changed since it started:
/// the hash of each cell's scenario now (`hashes`, in the order of the
/// cells) against the one `soak.json` recorded (a `soak.json` of a lab that
/// recorded none is checked against its rows alone, by [`open_recorder`]).
///
/// # Errors
/// [`LabError::Input`] naming the scenario and what to do.
fn check_recorded_hashes(
    args: &SoakArgs,
    spec: &SoakSpec,
    m: &Matrix,
    hashes: &[String],
) -> Result<(), LabError> {
    if spec.scenario_hashes.is_empty() || spec.scenario_hashes == hashes {
        return Ok(());
    }
    // The first cell that differs (or the first beyond the shorter list:
    // the cells themselves changed).
    let recorded = &spec.scenario_hashes;
    let changed = recorded
        .iter()
        .zip(hashes)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(hashes.len()));
    let name = m
        .cells
        .get(changed)
        .or(m.cells.last())
        .map_or("a scenario", |c| c.name.as_str());
    Err(changed_scenario(args, name, "soak.json"))
}

/// The refusal of a resume of `args.dir` whose scenario `name` is not what
/// `record` (`soak.json`, `trials.csv`) says the soak ran.
fn changed_scenario(args: &SoakArgs, name: &str, record: &str) -> LabError {
    LabError::Input(format!(
        "cannot resume {}: the scenario {name} is not the one the soak ran (its content hash \
         differs from the one in {record}), so nothing was run; restore the scenario, or start \
         a new soak with --out",
        args.dir.display()
    ))
}

/// Write the soak's `soak.json` as a new file: what `--resume` reads.
///
/// # Errors
/// [`LabError::Input`] when another soak started in the directory;
/// [`LabError::Io`] when it cannot be written.
fn write_spec(args: &SoakArgs, dir: &OwnDir, spec: &SoakSpec) -> Result<(), LabError> {
    let json = serde_json::to_string_pretty(spec).expect("a spec serializes");
    let path = args.dir.join(SOAK_JSON);
    // Whole or not at all, never over anything.
    dir.create_whole(SOAK_JSON, json.as_bytes(), false)
        .map(drop)
        .map_err(|e| match e.kind() {
            // Another soak started here between the check and the lock.
            std::io::ErrorKind::AlreadyExists => LabError::Input(format!(
                "{} already holds a soak ({} exists); continue it with --resume {}, \
                 or pick another --out",
                args.dir.display(),
                path.display(),
                args.dir.display()
            )),
            _ => LabError::io(format!("cannot write {}", path.display()), e),
        })
}

/// What earlier invocations finished in `dir/trials.csv` (none when it does
/// not exist): counted, and never run again. A last row cut short by a
/// crash is dropped, and its trial runs again.
///
/// # Errors
/// [`LabError::Input`] when the file is not the lab's, does not read, or
/// holds rows of an older schema; [`LabError::Io`] when a torn row cannot
/// be dropped.
fn read_earlier(dir: &Path) -> Result<Vec<TrialRow>, LabError> {
    let csv_path = dir.join(TRIALS_CSV);
    match fs::symlink_metadata(&csv_path) {
        Ok(m) if !m.is_file() => Err(LabError::Input(format!(
            "{} is not a file of the lab's (a symlink?): nothing was run",
            csv_path.display()
        ))),
        Ok(_) => {
            let (rows, torn) = read_rows_torn(&csv_path)
                .map_err(|e| LabError::Input(format!("cannot resume: {e}")))?;
            if let Some(old) = rows.iter().find(|r| r.schema != SCHEMA) {
                return Err(LabError::Input(format!(
                    "cannot resume: {} holds rows of schema {} (an older lab's; this one writes \
                     schema {}): resume it with that lab, or start a new soak with --out",
                    csv_path.display(),
                    old.schema,
                    SCHEMA
                )));
            }
            if let Some(torn) = torn {
                drop_torn_row(&csv_path, &torn).map_err(|e| {
                    LabError::io(
                        format!("cannot drop the torn row of {}", csv_path.display()),
                        e,
                    )
                })?;
                // A closed stderr must not end the soak: the note is dropped.
                let _ = writeln!(
                    std::io::stderr(),
                    "soak: {}: dropped its last row, cut short by a crash ({}); that trial runs again",
                    csv_path.display(),
                    torn.error
                );
            }
            Ok(rows)
        }
        Err(_) => Ok(Vec::new()),
    }
}

/// The recorder of the soak, appending to `args.dir/trials.csv`, with the
/// rows of earlier invocations counted, and those trials, which are not
/// run again. Each earlier row must be of a cell of `m` whose scenario has
/// the hash the row recorded: a changed scenario is never run.
///
/// # Errors
/// As [`read_earlier`] and [`Recorder::append`]; [`LabError::Input`] for a
/// row of a cell the soak does not have or whose scenario changed.
fn open_recorder(
    args: &SoakArgs,
    dir: &OwnDir,
    spec: &SoakSpec,
    m: &Matrix,
) -> Result<(Recorder, Done), LabError> {
    let earlier = read_earlier(&args.dir)?;
    for row in &earlier {
        let cell = m
            .cells
            .iter()
            .find(|c| c.scenario.name == row.scenario && sweep_value(c) == row.sweep_value);
        if cell.is_none_or(|c| c.scenario.source_hash != row.scenario_hash) {
            return Err(changed_scenario(args, &row.scenario, "trials.csv"));
        }
    }
    let mut rec = Recorder::append(dir, RunContext::new("soak", spec.seed))?;
    rec.limit_diagnoses(args.max_diagnoses);
    let mut done = Done::new();
    for row in &earlier {
        let key = (row.scenario.clone(), row.sweep_value.clone());
        done.insert((key.0, key.1, row.strategy.clone(), row.trial));
        rec.count(row);
    }
    Ok((rec, done))
}

/// The summary of the soak `spec` over `m` whose rows `rec` wrote:
/// `trials_run` of them by this invocation in `wall`, with a cgroup or not.
fn summarize(
    args: &SoakArgs,
    spec: SoakSpec,
    m: &Matrix,
    rec: &Recorder,
    trials_run: u64,
    wall: Duration,
    cgroup: bool,
) -> SoakSummary {
    let groups = rec.tally().summaries();
    let gate = (!spec.gates.is_empty()).then(|| Expectation::of(&spec.gates, &m.gates, &groups));
    let expectations = check_groups(m, &groups);
    let (rss, fds) = summary::own_usage();
    let ctx = rec.context();
    SoakSummary {
        csv: rec.csv_path().to_path_buf(),
        dir: args.dir.clone(),
        trials_run,
        trials_total: rec.tally().trials(),
        wall_s: wall.as_secs_f64(),
        trials_per_s: if wall.as_secs_f64() > 0.0 {
            trials_run as f64 / wall.as_secs_f64()
        } else {
            0.0
        },
        groups,
        abouts: abouts(m),
        gate,
        expectations,
        cgroup,
        pid_namespace: String::new(),
        lab_peak_rss_kib: rss,
        lab_fds: fds,
        kernel: ctx.kernel.clone(),
        lab_version: ctx.lab_version.clone(),
        max_diagnoses: rec.max_diagnoses(),
        resume: crate::session::interrupted().then(|| resume_command(&args.dir)),
        interrupted_by: crate::session::interruption(),
        stopped: None,
        spec,
    }
}

/// The `about` of each scenario of `m`, once each, its whitespace folded.
fn abouts(m: &Matrix) -> Vec<summary::About> {
    m.cells.iter().fold(Vec::new(), |mut all, c| {
        if !all
            .iter()
            .any(|a: &summary::About| a.scenario == c.scenario.name)
        {
            let about = c.scenario.about.split_whitespace().collect::<Vec<_>>();
            all.push(summary::About {
                scenario: c.scenario.name.clone(),
                about: about.join(" "),
            });
        }
        all
    })
}

/// Say on stderr, as the soak starts, what it runs: scenarios, seed,
/// strategies, trials (or duration), what earlier invocations did, `-j` and
/// the directory.
fn header(
    spec: &SoakSpec,
    m: &Matrix,
    args: &SoakArgs,
    total: Option<u64>,
    done: u64,
    jobs: usize,
) {
    use crate::text::plural;
    let amount = match (spec.trials, spec.duration_s) {
        (Some(n), _) => format!(
            "{} per cell, {} in all",
            plural(n, "trial"),
            plural(total.unwrap_or(0), "trial")
        ),
        (None, Some(s)) => format!("for {}", humantime::format_duration(Duration::from_secs(s))),
        (None, None) => String::new(),
    };
    let earlier = if done > 0 {
        format!(" ({done} done earlier)")
    } else {
        String::new()
    };
    let shard = spec
        .shard
        .map_or(String::new(), |sh| format!("  shard {sh}"));
    crate::output::write_err(format_args!(
        "lab soak {}  seed {}{shard}  strategies {}  {amount}{earlier}  {}  -j {jobs}  in {}\n",
        spec.scenarios.join(" "),
        spec.seed,
        spec.strategies.join(", "),
        plural(m.cells.len() as u64, "cell"),
        args.dir.display()
    ));
    if m.cells.iter().any(|c| windowed_kill(&c.scenario)) {
        crate::output::write_err(format_args!(
            "kill moments: each trial runs the plan of its own seed (the soak's seed and the \
             trial's index), so a kill window is drawn anew for every trial (each CSV row has \
             its kill_planned_us and kill_sent_us)\n"
        ));
    }
}

/// Whether `scenario` has a kill whose moment is drawn in a window (an
/// `at` with `lo < hi`).
fn windowed_kill(scenario: &crate::scenario::Scenario) -> bool {
    scenario
        .kills
        .iter()
        .any(|k| k.at.window_us().is_some_and(|(lo, hi)| lo < hi))
}

/// The command that continues the soak in `dir`: `lab soak --resume DIR`
/// (the directory quoted for a POSIX shell when it needs it).
fn resume_command(dir: &std::path::Path) -> String {
    let d = dir.display().to_string();
    let plain = !d.is_empty()
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@%".contains(c));
    if plain {
        format!("lab soak --resume {d}")
    } else {
        format!("lab soak --resume '{}'", d.replace('\'', "'\\''"))
    }
}

/// The name of the soak's spec in its directory.
const SOAK_JSON: &str = "soak.json";

/// The soak to run: `args.spec`, or with `--resume` the one stored in the
/// directory's `soak.json` (the files a resume reads checked first: the
/// caller's, and no one else's to write).
fn spec_of(args: &SoakArgs, dir: &OwnDir) -> Result<SoakSpec, LabError> {
    let spec_path = args.dir.join(SOAK_JSON);
    if args.resume {
        for name in [SOAK_JSON, TRIALS_CSV, journal::STARTED_CSV] {
            dir.check_file(name)?;
        }
        let text = crate::input::read_text(&spec_path, crate::input::MIB).map_err(|e| {
            LabError::Input(format!(
                "{} holds no soak to resume ({}: {e})",
                args.dir.display(),
                spec_path.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::Input(format!("{}: {e}", spec_path.display())))
    } else if dir.check_file(SOAK_JSON)? {
        Err(LabError::Input(format!(
            "{} already holds a soak; continue it with --resume {}, or pick another --out",
            args.dir.display(),
            args.dir.display()
        )))
    } else {
        Ok(args.spec.clone())
    }
}

/// The next item of the round-by-round order that is not `done`; `None`
/// once the soak has run its trials or its duration.
fn next_item(
    spec: &SoakSpec,
    m: &Matrix,
    done: &Done,
    cursor: &Mutex<u64>,
    deadline: Option<Instant>,
) -> Option<Item> {
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
            return Some(item);
        }
    }
}

/// Parse the strategies, the sweep and the cells of `spec`, and check the
/// expectations and each scenario's privileges.
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
    let gates = Expectation::validate(&spec.gates, &strategies, &spec.strategies)?;
    let sweep = spec
        .sweep
        .as_deref()
        .map(Sweep::parse)
        .transpose()
        .map_err(LabError::from)?;
    let set = spec
        .set
        .iter()
        .map(|s| Override::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(LabError::from)?;
    let cells = matrix::cells(&spec.scenarios, &set, sweep.as_ref())?;
    for c in &cells {
        check_privileges(&c.scenario)?;
    }
    Ok(Matrix {
        cells,
        strategies,
        gates,
    })
}

/// Judge every group (scenario, swept value, strategy) against its
/// expectation: a `--gate` of its strategy, else its scenario's `[expect]`
/// entry; a group with neither is not judged.
fn check_groups(m: &Matrix, groups: &[GroupSummary]) -> Vec<GroupComparison> {
    groups
        .iter()
        .filter_map(|g| {
            let strategy = m.strategies.iter().find(|s| s.name == g.strategy)?;
            let expect = m
                .cells
                .iter()
                .find(|c| c.scenario.name == g.scenario)
                .and_then(|c| c.scenario.expect.as_ref());
            let comparison = crate::expect::compare(strategy, expect, &m.gates, None, |v| {
                g.rates[v.name()].count
            });
            let replay = g
                .failing
                .iter()
                .filter(|f| {
                    comparison
                        .unexpected
                        .iter()
                        .any(|u| u.verdict.name() == f.verdict)
                })
                .take(REPLAYS_PER_GROUP)
                .map(|f| format!("{}   # {}", f.replay, f.verdict))
                .collect();
            Some(GroupComparison {
                scenario: g.scenario.clone(),
                sweep_key: g.sweep_key.clone(),
                sweep_value: g.sweep_value.clone(),
                comparison,
                replay,
            })
        })
        .collect()
}

/// Whether one group of a soak met its expectation.
#[derive(Clone, Debug, Serialize)]
pub struct GroupComparison {
    /// The scenario.
    pub scenario: String,
    /// The swept key, empty without a sweep.
    pub sweep_key: String,
    /// The swept value, empty without a sweep.
    pub sweep_value: String,
    /// The strategy and whether it met its expectation.
    #[serde(flatten)]
    pub comparison: Comparison,
    /// How to replay the first trials (at most 3) with an unexpected
    /// verdict other than `pass`, each followed by `# VERDICT`.
    pub replay: Vec<String>,
}

/// Replay commands an unexpected group lists.
const REPLAYS_PER_GROUP: usize = 3;

/// The swept value of `cell`, empty when the soak does not sweep.
fn sweep_value(cell: &Cell) -> String {
    cell.sweep
        .as_ref()
        .map_or(String::new(), |o| o.value.clone())
}
