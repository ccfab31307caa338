//! `lab run`: one plan, many trials under each strategy, an A/B summary, and
//! one CSV row per trial.
//!
//! - [`summary`]: what it reports.

pub mod summary;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::LabError;
use crate::plan::Plan;
use crate::record::{Finished, Recorder, RunCommand, TrialSource};
use crate::scenario::overrides::Override;
use crate::scenario::Scenario;
use crate::session::{check_privileges, Session};
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

pub use summary::{
    FirstDiagnosis, FirstOutput, Replay, Reproduction, RunSummary, StrategySummary, SurvivorSet,
};

/// The last lines of a failing program's output a summary shows.
pub const OUTPUT_LINES: usize = 10;

/// What `lab run` is asked to do.
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// The scenario as the user named it (a built-in name or a path).
    pub scenario: String,
    /// The scenario's text when the caller made it (`lab exec`): run as
    /// is, the file `scenario` names is not read.
    pub text: Option<String>,
    /// Values set in the scenario before it is planned (`--set KEY=VALUE`).
    pub overrides: Vec<Override>,
    /// The seed of the plan.
    pub seed: u64,
    /// Trials per strategy.
    pub trials: u64,
    /// The index of the first trial (`--trial K`): the trials run are
    /// `first_trial..first_trial + trials`, each drawing what its index
    /// draws (a kill moment drawn per trial, a host action's chance).
    pub first_trial: u64,
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
    /// Diagnoses written per strategy at most (`--max-diagnoses`); the
    /// rest are counted in the summary.
    pub max_diagnoses: u64,
    /// Write the timeline of every trial of a program run as the root
    /// (`lab exec --trace`), not only of those that did not pass (within
    /// `max_diagnoses` either way).
    pub trace: bool,
    /// The command that runs it, as the header and summary name it:
    /// `lab run` or `lab exec`.
    pub command: &'static str,
}

/// What every trial of one run shares.
struct RunSetup<'a> {
    args: &'a RunArgs,
    scenario: &'a Scenario,
    plan: &'a Plan,
    plan_hash: &'a str,
    deadline_us: u64,
    command: RunCommand<'a>,
}

/// Run the plan of `args` under every strategy.
///
/// # Errors
/// [`LabError::Input`] for a bad scenario or one this machine cannot run;
/// [`LabError::Io`] when results cannot be written or supervisors cannot be
/// started.
pub fn run(args: &RunArgs) -> Result<RunSummary, LabError> {
    let scenario = match &args.text {
        Some(text) => Scenario::parse(&args.scenario, text)?,
        None => Scenario::load_with(&args.scenario, &args.overrides)?,
    };
    let plan = Plan::new(&scenario, args.seed);
    if let Some(why) = plan.unreachable_gate() {
        return Err(LabError::Input(format!(
            "{}: seed {}: {why}",
            args.scenario, args.seed
        )));
    }
    check_privileges(&scenario)?;
    let plan_hash = plan.hash();
    crate::session::check_proc(&args.exe)?;
    let kill_moments = kill_moments_note(&scenario, &plan);
    let mut rec = Recorder::new_run(&args.out, &scenario.name, args.seed)?;
    let run_dir = rec.dir().to_path_buf();
    rec.limit_diagnoses(args.max_diagnoses);
    let session = Session::open(&args.exe, args.jobs, args.no_cgroup);
    let setup = RunSetup {
        args,
        scenario: &scenario,
        plan: &plan,
        plan_hash: &plan_hash,
        deadline_us: args
            .deadline
            .map_or(plan.deadline_us, |d| d.as_micros() as u64),
        command: RunCommand {
            scenario: &args.scenario,
            seed: args.seed,
            overrides: &args.overrides,
            deadline_ms: args.deadline.map(|d| d.as_millis() as u64),
            no_cgroup: args.no_cgroup,
        },
    };
    // From the header on, Ctrl-C stops the run and prints what it has;
    // except under --keep-hung, where Ctrl-C at the prompt ends the lab
    // (and the kept tree with it) at once, as the prompt says.
    if !args.keep_hung {
        crate::session::stop_on_interrupt();
    }
    let names: Vec<&str> = args.strategies.iter().map(|s| s.name.as_str()).collect();
    crate::output::write_err(format_args!(
        "{} {}  seed {}  strategies {}  {} each  -j {}  results {}\n",
        args.command,
        scenario.name,
        args.seed,
        names.join(", "),
        crate::text::plural(args.trials, "trial"),
        session.jobs(),
        run_dir.display()
    ));
    if let Some(warning) = session.pid_namespace().warning() {
        crate::output::write_err(format_args!("{warning}\n"));
    }
    let bar = crate::output::progress::Bar::new(
        crate::output::progress::Progress::Auto,
        Some(args.trials.saturating_mul(args.strategies.len() as u64)),
    );
    let mut results = Vec::new();
    for strategy in &args.strategies {
        let done = run_strategy(&setup, &session, &mut rec, strategy, &bar);
        // A strategy that ran no trial (Ctrl-C came first) has no summary.
        results.extend(done.inspect_err(|_| bar.finish())?);
    }
    bar.finish();
    let interrupted_by = crate::session::interruption();
    let (cgroup, cgroup_note) = (session.has_cgroup(), session.cgroup_note());
    let pidns = session.pid_namespace();
    drop(session);
    let ctx = rec.context();
    let as_expected = crate::error::Exit::of_expectations(results.iter().map(|r| &r.expectation))
        == crate::error::Exit::Clean;
    let summary = RunSummary {
        command: args.command,
        scenario: scenario.name.clone(),
        about: scenario
            .about
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        scenario_hash: scenario.source_hash.clone(),
        seed: args.seed,
        plan_hash,
        run_id: ctx.run_id.clone(),
        results,
        cgroup,
        cgroup_note,
        pid_namespace: pidns.label().into(),
        pid_namespace_note: pidns.describe(),
        csv: rec.csv_path().to_path_buf(),
        kernel: ctx.kernel.clone(),
        lab_version: ctx.lab_version.clone(),
        as_expected,
        max_diagnoses: rec.max_diagnoses(),
        program_root: plan.nodes.first().is_some_and(|n| n.command.is_some()),
        interrupted: interrupted_by.is_some(),
        interrupted_by,
        kill_moments,
    };
    let json = crate::json::to_string_pretty(&summary).expect("a summary serializes");
    let path = run_dir.join("summary.json");
    crate::record::files::replace_file(&path, json.as_bytes())
        .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?;
    Ok(summary)
}

/// Run the trials of `strategy`, record each, and summarize them; `None`
/// when none ran (a Ctrl-C came before its first).
fn run_strategy(
    c: &RunSetup<'_>,
    session: &Session,
    rec: &mut Recorder,
    strategy: &Strategy,
    bar: &crate::output::progress::Bar,
) -> Result<Option<StrategySummary>, LabError> {
    let replay = c.command.replay(strategy);
    let req = TrialRequest {
        plan: c.plan.clone(),
        strategy: strategy.clone(),
        trial: 0,
        deadline_us: c.deadline_us,
        cgroup_parent: session.cgroup_parent(),
        gdb: c.args.gdb,
        keep_hung: c.args.keep_hung,
        trace: c.args.trace,
        brief_verdicts: Vec::new(),
        // Absolute: the supervisors write there from their own mount
        // namespace.
        log_dir: Some(
            std::path::absolute(rec.dir().join("log")).unwrap_or_else(|_| rec.dir().join("log")),
        ),
    };
    let mut outcomes: Vec<(u64, Outcome)> = Vec::new();
    let mut first: Option<FirstDiagnosis> = None;
    let mut first_output: Option<FirstOutput> = None;
    let on_kept = |o: &Outcome| hold_for_user(o, &replay);
    // A verdict whose diagnoses are all written for this strategy is
    // diagnosed briefly: only what finds its signatures.
    let diagnosed = rec.diagnosed_cells();
    let first_trial = c.args.first_trial;
    let request = |i: u64| TrialRequest {
        trial: first_trial.saturating_add(i),
        brief_verdicts: diagnosed.brief_verdicts(&c.scenario.name, &strategy.name, ""),
        ..req.clone()
    };
    let wall = session.run_trials(c.args.trials, &request, &on_kept, |i, mut o| {
        let i = first_trial.saturating_add(i);
        let source = TrialSource::of(c.plan, c.plan_hash, i, None);
        let recorded = rec.record(&Finished {
            source,
            strategy,
            outcome: &o,
            stem: &format!("{}.{i}", strategy.name),
            replay: &replay_of(c.plan, &replay, i),
        });
        if let (Some(path), Some(d)) = (recorded.diagnosis, o.diagnosis.take()) {
            // The lowest trial index, hangs before orphans.
            let rank = |verdict: &str, trial: u64| (verdict != "hang", trial);
            let better = first.as_ref().is_none_or(|f| {
                rank(&d.subject.verdict, i) < rank(&f.diagnosis.subject.verdict, f.trial)
            });
            if better {
                first = Some(FirstDiagnosis {
                    trial: i,
                    path,
                    diagnosis: d,
                });
            }
        }
        // A program's output is written by the recorder; the summary keeps
        // the last lines of the first failing trial's, and no outcome held
        // here keeps more (a chatty program fails thousands of times).
        o.trace = None;
        if let Some(out) = o.output.take() {
            if first_output.as_ref().is_none_or(|f| i < f.trial) {
                first_output = out
                    .tail_lines(OUTPUT_LINES)
                    .map(|(stream, tail)| FirstOutput {
                        trial: i,
                        verdict: o.verdict,
                        stream,
                        tail,
                    });
            }
        }
        outcomes.push((i, o));
        bar.inc(|| rec.tally().live_counts());
    })?;
    rec.check()?;
    let tally = rec.take_tally();
    if outcomes.is_empty() {
        return Ok(None);
    }
    let mut summary = summary::summarize(
        strategy,
        &outcomes,
        &tally,
        wall,
        &replay,
        c.scenario.expect.as_ref(),
    );
    summary.diagnosis = first;
    summary.output = first_output;
    for rp in &mut summary.replay {
        if let Some(&trial) = rp.trials.first() {
            rp.command = replay_of(c.plan, &rp.command, trial);
        }
    }
    Ok(Some(summary))
}

/// `replay` (one trial of the plan) made the command that replays trial
/// `trial` ([`crate::record::replay::trial_flag`]).
fn replay_of(plan: &Plan, replay: &str, trial: u64) -> String {
    format!("{replay}{}", crate::record::replay::trial_flag(plan, trial))
}

/// What a run's summary says of the moments of its scenario's windowed
/// kills (an `at` with `lo < hi`), if it has one: drawn per trial
/// (`per_trial = true`), or drawn once per plan, where every trial fires
/// at the same moment and the window is covered across seeds, by
/// `per_trial = true`, or with `lab soak --sweep`.
pub fn kill_moments_note(scenario: &Scenario, plan: &Plan) -> Option<String> {
    let windowed = |k: &&crate::scenario::Kill| k.at.window_us().is_some_and(|(lo, hi)| lo < hi);
    let (per_trial, per_plan): (Vec<_>, Vec<_>) = scenario
        .kills
        .iter()
        .filter(windowed)
        .partition(|k| k.per_trial);
    let mut notes = Vec::new();
    if !per_trial.is_empty() {
        notes.push(
            "kill moments: drawn per trial from the seed and the trial's index (each CSV row \
             has its kill_planned_us and kill_sent_us; replay a trial alone with --trial K)"
                .to_string(),
        );
    }
    if !per_plan.is_empty() {
        let moments: Vec<String> = plan
            .kills
            .iter()
            .filter(|k| k.per_trial_us.is_none())
            .filter_map(|k| k.at.moment_us())
            .map(|us| format!("{us} us"))
            .collect();
        notes.push(format!(
            "kill moments: a window drawn once per plan ({}): every trial of seed {} fires at \
             that moment; to cover the window set per_trial = true on the kill \
             (--set kill.N.per_trial=true), run other seeds, or sweep it (lab soak --sweep)",
            moments.join(", "),
            plan.seed
        ));
    }
    (!notes.is_empty()).then(|| notes.join("\n"))
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
        // The processes to attach to: a zombie (shown above) has exited.
        let live: Vec<_> = d.processes.iter().filter(|p| !p.is_zombie()).collect();
        let pids: Vec<String> = live.iter().map(|p| p.pid.to_string()).collect();
        let _ = writeln!(s, "pids: {}", pids.join(" "));
        if let Some(p) = live.first() {
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
    let _ = std::io::Write::write_all(&mut std::io::stderr(), s.as_bytes());
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}
