//! `lab run`: one plan, many trials under each strategy, an A/B summary, and
//! one CSV row per trial.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cgroup;
use crate::error::LabError;
use crate::forensics::Diagnosis;
use crate::plan::Plan;
use crate::results::{self, CsvSink, RunContext, TrialRow, TrialSource};
use crate::runner::{self, run_trials};
use crate::scenario::overrides::Override;
use crate::scenario::Scenario;
use crate::soak::tally::Tally;
use crate::stats::Rate;
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::{Outcome, Verdict};

/// What `lab run` is asked to do.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// The scenario as the user named it (a built-in name or a path).
    pub scenario: String,
    /// Values set in the scenario before it is planned (`--set KEY=VALUE`).
    pub overrides: Vec<Override>,
    /// The seed of the plan.
    pub seed: u64,
    /// Trials per strategy.
    pub trials: u64,
    /// Strategies, in order.
    pub strategies: Vec<Strategy>,
    /// Deadline override; `None`: the plan's.
    pub deadline: Option<Duration>,
    /// Do not use a cgroup even where one is available.
    pub no_cgroup: bool,
    /// Parallel supervisors.
    pub jobs: usize,
    /// Directory under which `<run-id>/trials.csv` is written.
    pub out: PathBuf,
    /// The `lab` binary (supervisors are started from it).
    pub exe: PathBuf,
    /// Add gdb's all-thread backtraces to each diagnosis (`--gdb`).
    pub gdb: bool,
    /// Leave the first hung tree alive until the user presses Enter
    /// (`--keep-hung`).
    pub keep_hung: bool,
}

/// One failing verdict of one strategy and how to replay it.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// The verdict.
    pub verdict: Verdict,
    /// The trials that had it.
    pub trials: Vec<u64>,
    /// The command that replays one such trial.
    pub command: String,
}

/// The results of one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct StrategySummary {
    /// Strategy name.
    pub strategy: String,
    /// Trials run.
    pub trials: u64,
    /// Trials with verdict `pass`.
    pub pass: u64,
    /// ... `orphan`.
    pub orphan: u64,
    /// ... `hang`.
    pub hang: u64,
    /// ... `panic`.
    pub panic: u64,
    /// ... `leak`.
    pub leak: u64,
    /// ... `early-death`.
    pub early_death: u64,
    /// ... `innocent-kill`.
    pub innocent_kill: u64,
    /// ... `error`.
    pub error: u64,
    /// The most frequent verdict and how many trials had it: the
    /// reproduction rate of a replayed plan (`--repeat K`).
    pub reproduction: Reproduction,
    /// Trials in which the `/proc` oracle saw at least one false orphan.
    pub trials_with_false_orphans: u64,
    /// False orphans of the `/proc` oracle over all trials.
    pub false_orphans_total: u64,
    /// Each verdict's rate with its 95% Wilson interval.
    pub rates: BTreeMap<String, Rate>,
    /// Median time from a trial's start to its verdict (µs).
    pub median_verdict_us: u64,
    /// Trials per second of wall time.
    pub trials_per_s: f64,
    /// Orphans counted over all trials.
    pub orphans_total: u64,
    /// How to replay each failing verdict.
    pub replay: Vec<Replay>,
    /// Distinct reasons of failing trials (every verdict but pass), with
    /// counts, by verdict. PIDs and pipe inodes, which differ in every
    /// trial, are written `pid N` and `pipe:[N]` here (the CSV keeps them).
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// For each signature named in some trial, the number of trials that
    /// named it.
    pub signatures: BTreeMap<String, u64>,
    /// The distinct reasons of `panic` verdicts, with their counts (PIDs and
    /// pipe inodes written `N`, as in `reasons`).
    pub panic_reasons: BTreeMap<String, u64>,
    /// The guards' sites in the lab's source (`file:line`) of `panic`
    /// verdicts, with their counts.
    pub panic_sites: BTreeMap<String, u64>,
    /// The diagnosis of the first diagnosed trial (hang first, else orphan).
    pub diagnosis: Option<FirstDiagnosis>,
}

/// The first diagnosis of a strategy, as the summary carries it.
#[derive(Clone, Debug, Serialize)]
pub struct FirstDiagnosis {
    /// The trial's index.
    pub trial: u64,
    /// Where its JSON was written (the text sits beside it, `.txt`).
    pub path: PathBuf,
    /// The diagnosis.
    #[serde(flatten)]
    pub diagnosis: Diagnosis,
}

/// How often a replayed plan gave its most frequent verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Reproduction {
    /// The most frequent verdict.
    pub verdict: Verdict,
    /// Trials with it.
    pub trials: u64,
    /// Trials run.
    pub of: u64,
    /// Its rate with the 95% Wilson interval.
    pub rate: Rate,
}

/// The summary of a run (what `--format json` prints).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file.
    pub scenario_hash: String,
    /// The seed.
    pub seed: u64,
    /// Hash of the plan.
    pub plan_hash: String,
    /// Run id (names the results directory).
    pub run_id: String,
    /// One entry per strategy, in the order asked.
    pub results: Vec<StrategySummary>,
    /// Whether trials ran in cgroups of their own (else: subreaper alone).
    pub cgroup: bool,
    /// Why not, when `cgroup` is false.
    pub cgroup_note: Option<String>,
    /// The CSV written.
    pub csv: PathBuf,
    /// Kernel release.
    pub kernel: String,
    /// Lab version.
    pub lab_version: String,
}

impl RunSummary {
    /// Whether every trial passed (exit status 0).
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|r| r.pass == r.trials)
    }

    /// The A/B table and the replay commands, as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mode = cgroup::mode_label(self.cgroup, self.cgroup_note.as_deref());
        let _ = writeln!(
            s,
            "lab run {}  seed {}  plan {}  kernel {}  mode {}",
            self.scenario, self.seed, self.plan_hash, self.kernel, mode
        );
        for r in &self.results {
            let _ = writeln!(
                s,
                "\n{}: {} trials, {:.1} trials/s, median time to verdict {:.2} ms",
                r.strategy,
                r.trials,
                r.trials_per_s,
                r.median_verdict_us as f64 / 1000.0
            );
            for v in Verdict::ALL {
                let _ = writeln!(s, "  {:<13} {}", v.name(), r.rates[v.name()].render());
            }
            let rp = &r.reproduction;
            let _ = writeln!(s, "  reproduced {}: {}", rp.verdict, rp.rate.render());
            if r.trials_with_false_orphans > 0 {
                let _ = writeln!(
                    s,
                    "  /proc oracle: {} false orphans in {} trials ({})",
                    r.false_orphans_total,
                    r.trials_with_false_orphans,
                    Rate::wilson(r.trials_with_false_orphans, r.trials).render()
                );
            }
            for (verdict, reasons) in &r.reasons {
                for (reason, n) in reasons {
                    let first = reason.lines().next().unwrap_or("");
                    let _ = writeln!(s, "  {verdict} x{n}: {first}");
                }
            }
            if let Some(d) = &r.diagnosis {
                let _ = writeln!(
                    s,
                    "\n  first {} (trial {}):",
                    d.diagnosis.subject.verdict, d.trial
                );
                for line in d.diagnosis.summary().lines() {
                    let _ = writeln!(s, "    {line}");
                }
                let _ = writeln!(
                    s,
                    "    full diagnosis: {}",
                    d.path.with_extension("txt").display()
                );
            }
            for rp in &r.replay {
                let _ = writeln!(
                    s,
                    "  replay {} ({} trials): {}",
                    rp.verdict,
                    rp.trials.len(),
                    rp.command
                );
            }
        }
        let _ = writeln!(s, "\ntrials: {}", self.csv.display());
        s
    }
}

/// Run the plan of `args` under every strategy.
///
/// # Errors
/// [`LabError::Input`] for a bad scenario; [`LabError::Lab`] when results
/// cannot be written or supervisors cannot be started.
pub fn run(args: &RunArgs) -> Result<RunSummary, LabError> {
    let scenario = Scenario::load_with(&args.scenario, &args.overrides)?;
    let plan = Plan::new(&scenario, args.seed);
    check_privileges(&scenario)?;
    let plan_hash = plan.hash();
    let ctx = RunContext::new(&scenario.name, args.seed);
    let run_id = ctx.run_id.clone();
    let run_dir = args.out.join(&run_id);
    let mut csv = CsvSink::create(&run_dir).map_err(|e| {
        LabError::Lab(format!(
            "cannot write results under {}: {e}",
            args.out.display()
        ))
    })?;
    let (lab_cgroup, cgroup_note) = cgroup::trial_parent(args.no_cgroup);
    let deadline_us = args
        .deadline
        .map_or(plan.deadline_us, |d| d.as_micros() as u64);
    let mut results = Vec::new();
    let mut failure = None;
    for strategy in &args.strategies {
        let replay = replay_command(args, strategy);
        let req = TrialRequest {
            plan: plan.clone(),
            strategy: strategy.clone(),
            trial: 0,
            deadline_us,
            cgroup_parent: lab_cgroup.clone(),
            gdb: args.gdb,
            keep_hung: args.keep_hung,
        };
        let mut outcomes: Vec<(u64, Outcome)> = Vec::new();
        let mut tally = Tally::default();
        let mut first: Option<FirstDiagnosis> = None;
        let mut write_error = None;
        let on_kept = |o: &Outcome| hold_for_user(o, &replay);
        let wall = run_trials(
            &args.exe,
            args.jobs,
            &req,
            args.trials,
            &on_kept,
            |i, mut o| {
                let diagnosis = match o.diagnosis.take() {
                    Some(d) => match results::write_diagnosis(
                        &run_dir,
                        &format!("{}.{i}", strategy.name),
                        &d,
                    ) {
                        Ok(path) => {
                            // The lowest trial index, hangs before orphans.
                            let rank = |verdict: &str, trial: u64| (verdict != "hang", trial);
                            let better = first.as_ref().is_none_or(|f| {
                                rank(&d.subject.verdict, i)
                                    < rank(&f.diagnosis.subject.verdict, f.trial)
                            });
                            if better {
                                first = Some(FirstDiagnosis {
                                    trial: i,
                                    path: path.clone(),
                                    diagnosis: d,
                                });
                            }
                            path.display().to_string()
                        }
                        Err(e) => {
                            write_error = Some(e);
                            String::new()
                        }
                    },
                    None => String::new(),
                };
                let src = TrialSource {
                    scenario: &scenario.name,
                    scenario_hash: &scenario.source_hash,
                    plan_hash: &plan_hash,
                    seed: args.seed,
                    trial: i,
                    sweep: None,
                };
                let row = TrialRow::new(&ctx, &src, strategy, &o, &diagnosis, &replay);
                if let Err(e) = csv.write(&row) {
                    write_error = Some(e);
                }
                tally.add(&row);
                outcomes.push((i, o));
            },
        );
        let wall = match wall {
            Ok(w) => w,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        if let Some(e) = write_error {
            failure = Some(LabError::Lab(format!(
                "cannot write {}: {e}",
                csv.path().display()
            )));
            break;
        }
        let mut summary = summarize(strategy, &outcomes, &tally, wall, &replay);
        summary.diagnosis = first;
        results.push(summary);
    }
    if let Some(dir) = &lab_cgroup {
        cgroup::remove_lab_cgroup(dir);
    }
    runner::sweep_orphans();
    if let Some(e) = failure {
        return Err(e);
    }
    let summary = RunSummary {
        scenario: scenario.name.clone(),
        scenario_hash: scenario.source_hash.clone(),
        seed: args.seed,
        plan_hash,
        run_id,
        results,
        cgroup: lab_cgroup.is_some(),
        cgroup_note,
        csv: csv.path().to_path_buf(),
        kernel: ctx.kernel.clone(),
        lab_version: ctx.lab_version.clone(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("a summary serializes");
    std::fs::write(run_dir.join("summary.json"), json).map_err(|e| {
        LabError::Lab(format!(
            "cannot write {}: {e}",
            run_dir.join("summary.json").display()
        ))
    })?;
    Ok(summary)
}

/// Refuse a scenario this machine cannot run: one that needs a private PID
/// namespace (PID reuse) where this process can make none.
///
/// # Errors
/// [`LabError::Input`] saying what is missing and how to get it, and that
/// nothing was run.
pub fn check_privileges(scenario: &Scenario) -> Result<(), LabError> {
    let plan = Plan::new(scenario, 0);
    if plan.nodes.iter().any(|n| n.pid_reuse) && !lifeline::probe::probe_kernel(None).pid_reuse() {
        return Err(LabError::Input(format!(
            "{} needs a private PID namespace, and this process can make none: run it as root, \
             or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or \
             user.max_user_namespaces > 0); nothing was run",
            scenario.name
        )));
    }
    Ok(())
}

/// Prepare the lab process itself: stray inherited fds close-on-exec, and the
/// lab a subreaper, so that orphans of a supervisor that died come to it.
///
/// # Errors
/// [`LabError::Lab`] when the kernel refuses either.
pub fn prepare_lab_process() -> Result<(), LabError> {
    lifeline::mark_inherited_cloexec()
        .map_err(|e| LabError::Lab(format!("close_range(CLOSE_RANGE_CLOEXEC): {e}")))?;
    lifeline::become_subreaper().map_err(|e| LabError::Lab(format!("PR_SET_CHILD_SUBREAPER: {e}")))
}

/// `--keep-hung`: show the kept tree, how to attach to it, and wait for
/// Enter on stdin (EOF counts). A signal that ends the lab ends the wait
/// too: the supervisor sees its lifeline close and cleans the tree up.
fn hold_for_user(o: &Outcome, replay: &str) {
    use std::io::BufRead;
    let mut s = String::from("\nlab: a hung tree is kept alive (--keep-hung)\n");
    if let Some(d) = &o.diagnosis {
        for line in d.summary().lines() {
            let _ = writeln!(s, "  {line}");
        }
        let pids: Vec<String> = d.processes.iter().map(|p| p.pid.to_string()).collect();
        let _ = writeln!(s, "pids: {}", pids.join(" "));
        if let Some(p) = d.processes.first() {
            let _ = writeln!(
                s,
                "attach: gdb -p {0}   (all threads: gdb -p {0} -batch -ex 'thread apply all bt')\n\
                 inspect: ls -l /proc/{0}/fd; cat /proc/{0}/task/*/wchan; cat /proc/{0}/task/*/stack (root)",
                p.pid
            );
        }
    }
    let _ = writeln!(s, "replay: {replay}");
    let _ = writeln!(
        s,
        "press Enter to end the tree and go on (Ctrl-C ends the lab; the tree is ended with it)"
    );
    eprint!("{s}");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn replay_command(args: &RunArgs, strategy: &Strategy) -> String {
    let mut cmd = format!("lab run {} --seed {}", args.scenario, args.seed);
    for o in &args.overrides {
        let _ = write!(cmd, " --set {}={}", o.key, o.value);
    }
    let _ = write!(cmd, " --strategy {} --trials 1", strategy.name);
    if let Some(d) = args.deadline {
        let _ = write!(cmd, " --deadline {}ms", d.as_millis());
    }
    if args.no_cgroup {
        cmd.push_str(" --no-cgroup");
    }
    cmd
}

fn summarize(
    strategy: &Strategy,
    outcomes: &[(u64, Outcome)],
    tally: &Tally,
    wall: Duration,
    replay: &str,
) -> StrategySummary {
    let n = outcomes.len() as u64;
    // The rates, times, reasons and signatures are the soak's tally of this
    // strategy's rows (one group: one scenario, one strategy).
    let g = tally.summaries().pop().expect("a strategy with trials");
    let count = |v: Verdict| g.rates[v.name()].count;
    let replays = Verdict::ALL
        .iter()
        .filter(|&&v| v != Verdict::Pass)
        .filter_map(|&v| {
            let mut trials: Vec<u64> = outcomes
                .iter()
                .filter(|(_, o)| o.verdict == v)
                .map(|(i, _)| *i)
                .collect();
            trials.sort_unstable();
            (!trials.is_empty()).then(|| Replay {
                verdict: v,
                trials,
                command: replay.to_string(),
            })
        })
        .collect();
    let modal = Verdict::ALL
        .iter()
        .copied()
        .max_by_key(|&v| (count(v), std::cmp::Reverse(v)))
        .unwrap_or(Verdict::Pass);
    StrategySummary {
        strategy: strategy.name.clone(),
        trials: n,
        pass: count(Verdict::Pass),
        orphan: count(Verdict::Orphan),
        hang: count(Verdict::Hang),
        panic: count(Verdict::Panic),
        leak: count(Verdict::Leak),
        early_death: count(Verdict::EarlyDeath),
        innocent_kill: count(Verdict::InnocentKill),
        error: count(Verdict::Error),
        reproduction: Reproduction {
            verdict: modal,
            trials: count(modal),
            of: n,
            rate: Rate::wilson(count(modal), n),
        },
        trials_with_false_orphans: outcomes.iter().filter(|(_, o)| o.false_orphans > 0).count()
            as u64,
        false_orphans_total: outcomes.iter().map(|(_, o)| o.false_orphans as u64).sum(),
        median_verdict_us: g.median_verdict_us,
        trials_per_s: if wall.as_secs_f64() > 0.0 {
            n as f64 / wall.as_secs_f64()
        } else {
            0.0
        },
        orphans_total: outcomes.iter().map(|(_, o)| o.orphans as u64).sum(),
        replay: replays,
        panic_reasons: g
            .reasons
            .get(Verdict::Panic.name())
            .cloned()
            .unwrap_or_default(),
        rates: g.rates,
        reasons: g.reasons,
        signatures: g.signatures,
        panic_sites: g.panic_sites,
        diagnosis: None,
    }
}
