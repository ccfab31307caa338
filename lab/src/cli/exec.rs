//! `lab exec`: the user's own program as the root of each trial
//! ([`crate::program`]).

use std::path::PathBuf;
use std::time::Duration;

use super::run::RunReports;
use super::{lab_exe, TrialOptions};
use crate::error::{Exit, LabError};
use crate::program::{parse_ladder, parse_window, ExecSpec, Ladder, DEFAULT_DEADLINE};
use crate::run::RunArgs;
use crate::strategy::Strategy;

/// `lab exec`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct ExecCmd {
    /// The program and its arguments, after `--` (looked up in PATH when it has no `/`)
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]")]
    command: Vec<String>,
    /// Trials (at least 1)
    #[arg(long, default_value_t = 100, value_parser = super::parse_count)]
    trials: u64,
    /// The seed: with a --kill-after window, each trial's kill moment is drawn from the seed
    /// and the trial's index
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The index of the first trial: the trials run are K, K+1, ... (with --trials 1, trial K
    /// of an earlier run alone, killed at the moment it drew)
    #[arg(long = "trial", value_name = "K", default_value_t = 0)]
    first_trial: u64,
    /// Kill the program this long after its spawn: a delay (50ms), or a window (5ms..200ms)
    /// from which each trial draws its own moment, from --seed and the trial's index (the
    /// CSV's kill_planned_us and kill_sent_us say when, in µs from the spawn)
    #[arg(long, value_name = "DELAY", value_parser = parse_window)]
    kill_after: Option<(Duration, Duration)>,
    /// The signal of the kill, or a ladder sent in turn while the program lives
    /// (INT,TERM,KILL)
    #[arg(long, value_name = "SIG[,SIG...]", value_parser = parse_ladder, requires = "kill_after")]
    signal: Option<Ladder>,
    /// The wait between the signals of a ladder (1ms..=1h)
    #[arg(long, default_value = "100ms", value_parser = super::options::parse_grace)]
    grace: Duration,
    /// Write the timeline (Chrome trace-event JSON, trace/STRATEGY.TRIAL.json) of passing
    /// trials too, not only of failing ones (at most --max-diagnoses either way)
    #[arg(long)]
    trace: bool,
    /// Read stdout and stderr to EOF as a test runner does: a process still holding either
    /// after the program exited is a leak
    #[arg(long)]
    capture: bool,
    /// The exit status the program is expected to end with; another one is a fail
    #[arg(long, default_value_t = 0)]
    expect_exit: u8,
    /// Set NAME=VALUE in the program's environment (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    env: Vec<String>,
    /// The program's working directory (an existing directory)
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// The name of the scenario the program becomes, which names its results (letters,
    /// digits, '-', '_', at most 64; default: exec- and the program's file name)
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,
    #[command(flatten)]
    trial: TrialOptions,
    #[command(flatten)]
    report: RunReports,
}

impl ExecCmd {
    /// The program as a scenario, written under `--out`, and the run of it.
    ///
    /// # Errors
    /// [`LabError::Input`] for a command the scenario format refuses;
    /// [`LabError::Lab`] when the scenario cannot be written or the lab
    /// process cannot be prepared.
    fn options(&self) -> Result<RunArgs, LabError> {
        let cwd = self.cwd.as_deref().map(check_cwd).transpose()?;
        let spec = ExecSpec {
            command: self.command.clone(),
            kill_after: self.kill_after,
            signals: self.signal.clone().map(|l| l.0).unwrap_or_default(),
            grace: self.grace,
            capture: self.capture,
            expect_exit: self.expect_exit,
            env: self.env.clone(),
            cwd,
            deadline: self.trial.deadline.unwrap_or(DEFAULT_DEADLINE),
            name: self.name.clone(),
        };
        let (scenario, text) = spec.write_scenario(&self.report.out)?;
        Ok(RunArgs {
            scenario: scenario.display().to_string(),
            text: Some(text),
            overrides: Vec::new(),
            seed: self.seed,
            trials: self.trials,
            first_trial: self.first_trial,
            strategies: vec![Strategy::parse("canonical")?],
            deadline: None,
            no_cgroup: self.trial.no_cgroup,
            jobs: self.trial.jobs(Some(self.trials)),
            out: self.report.out.clone(),
            exe: lab_exe()?,
            gdb: self.report.gdb,
            keep_hung: false,
            max_diagnoses: self.report.max_diagnoses,
            trace: self.trace,
            command: "lab exec",
        })
    }

    pub(super) fn execute(self) -> Result<Exit, LabError> {
        self.report.check()?;
        let start = std::time::SystemTime::now();
        let args = self.options()?;
        // The kernel's process events flow to the supervisors while the lab
        // listens: the lineage of every trial's processes, exact.
        let _events = crate::trial::keep_events_flowing();
        let summary = crate::run::run(&args)?;
        let first = match args.first_trial {
            0 => String::new(),
            k => format!(" --trial {k}"),
        };
        let text = format!(
            "{}\nrun it again: lab run {s} --seed {seed} --strategy canonical --trials {n}{first}\n\
             soak it: lab soak --scenario {s} --strategy canonical --duration 1h\n",
            summary.render(),
            s = args.scenario,
            seed = args.seed,
            n = args.trials,
        );
        self.report.write("lab exec", &summary, start, text)?;
        Ok(summary.exit())
    }
}

/// `--cwd`: an existing directory, named as given, as UTF-8 text (the
/// scenario's `cwd`): checked here, so that a missing one is blamed, not
/// the program the trial could not start in it.
///
/// # Errors
/// [`LabError::Input`] naming the flag and the directory.
fn check_cwd(dir: &std::path::Path) -> Result<String, LabError> {
    let bad = |why: String| LabError::Input(format!("--cwd {}: {why}", dir.display()));
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(bad("not a directory".into())),
        Err(e) => return Err(bad(format!("{e}; give an existing directory"))),
    }
    dir.to_str()
        .map(str::to_string)
        .ok_or_else(|| bad("not UTF-8".into()))
}

/// `--env`: `NAME=VALUE` with a name that is not empty and no NUL, as the
/// scenario's `env` takes it: refused here, before a scenario is written.
fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((name, _)) if !name.is_empty() && !s.contains('\0') => Ok(s.to_string()),
        _ => Err(format!(
            "`{s}` is not NAME=VALUE (a name, `=`, then the value: --env LANG=C)"
        )),
    }
}

/// `--name`: a scenario name ([`crate::scenario::is_name`]).
fn parse_name(s: &str) -> Result<String, String> {
    if crate::scenario::is_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "a name is letters, digits, '-' and '_', at most {} of them (it names result files)",
            crate::scenario::MAX_NAME_CHARS
        ))
    }
}
