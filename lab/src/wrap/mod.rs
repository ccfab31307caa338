//! `lab wrap`: one program run once, transparently, as the root of one
//! trial (the command line is `cli/wrap.rs`; the guide is `docs/wrap.md`).
//!
//! The program runs under the canonical containment of every trial (its
//! own cgroup where the lab can make one, else the supervisor's subreaper;
//! a PID namespace of the supervisor's where one can be made, the
//! supervisor its init and the program its first child, so the program is
//! never PID 1 and keeps the default actions of its signals), with the
//! wrap's own stdin, stdout and stderr (the supervisor's, handed on
//! untouched), its environment and working directory, and no deadline
//! unless one is given. The signals a runner sends `lab wrap` (SIGINT,
//! SIGTERM, SIGHUP, SIGQUIT) reach the program through the supervisor
//! ([`forward`]); a SIGTERM is the runner's timeout, and the trial is
//! diagnosed before the program gets it. When `lab wrap` itself is
//! SIGKILLed, the supervisor sees its lifeline close and ends the trial (in
//! a PID namespace, the kernel ends every process in it with its init).
//!
//! Once the program exited, the trial engine judges what it left alive
//! from kernel evidence, names each survivor with its lineage, and kills
//! them; [`judge`] turns that into `lab wrap`'s exit status and report;
//! [`row`] appends the trial to a results CSV.

pub mod bench;
pub mod forward;
pub mod judge;
pub mod lookup;
pub mod row;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::LabError;
use crate::plan::Plan;
use crate::program::ExecSpec;
use crate::scenario::Scenario;
use crate::session::{PidNsMode, SupervisorHandle};
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

/// The deadline of a wrap without `--deadline` (µs): about 146 years,
/// none in practice (the trial engine's clock adds it to a nanosecond
/// count, which it must not overflow).
pub const NO_DEADLINE_US: u64 = u64::MAX / 4000;

/// What `lab wrap` runs and how it judges.
#[derive(Clone, Debug)]
pub struct WrapArgs {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// `--deadline`: diagnose and end a program still running then.
    pub deadline: Option<Duration>,
    /// How to judge what it leaves (`--allow`, `--leak`, `--orphan-exit`).
    pub rules: judge::Rules,
    /// `--report FILE`: append the trial's row to this CSV.
    pub report: Option<PathBuf>,
    /// `--quiet`: nothing on stderr when clean.
    pub quiet: bool,
    /// `--no-cgroup`: the subreaper alone.
    pub no_cgroup: bool,
    /// The lab binary, from which the supervisor is started.
    pub exe: PathBuf,
}

/// The result of one wrap: the trial's outcome, the wrap's judgement,
/// and the plan it ran (for its row).
#[derive(Debug)]
pub struct Wrapped {
    /// What the trial came to.
    pub outcome: Outcome,
    /// `lab wrap`'s judgement of it.
    pub judgement: judge::Judgement,
    /// The plan of one command node.
    pub plan: Plan,
    /// Why the trial ran without a cgroup or a PID namespace, if it did:
    /// the fallback, said once.
    pub fallback: Option<String>,
}

/// The plan of a wrap: `lab exec`'s scenario of one command root
/// ([`ExecSpec`]), named `wrap-PROGRAM`.
///
/// The scenario is parsed with the program alone, and the whole command
/// goes into the plan's root after: the arguments came through the
/// kernel's exec (bounded by `ARG_MAX`), not from a file, and the limits
/// of a scenario file (1 MiB, 65,536 arguments) are not theirs to meet; a
/// command that the kernel ran bare runs wrapped. The plan's hash is the
/// hash of the scenario with the whole command.
///
/// # Errors
/// [`LabError::Input`] when the scenario format refuses the program's name
/// (never, for a name that came through an exec).
pub fn plan(command: &[String]) -> Result<Plan, LabError> {
    let mut spec = ExecSpec {
        command: command[..1].to_vec(),
        deadline: crate::program::DEFAULT_DEADLINE,
        grace: Duration::from_millis(100),
        ..ExecSpec::default()
    };
    let name = spec.name().replacen("exec-", "wrap-", 1);
    spec.name = Some(name.clone());
    let sc = Scenario::parse(&format!("{name}.toml"), &spec.scenario_text())?;
    let mut plan = Plan::new(&sc, 1);
    spec.command = command.to_vec();
    plan.scenario_hash = crate::scenario::text_hash(&spec.scenario_text());
    plan.nodes[0].command = Some(spec.command);
    Ok(plan)
}

/// Run `args.command` once as a wrapped trial, with `control` the read end
/// of the pipe on which `caught` forwards the signals `lab wrap` gets (from
/// a thread started once the supervisor is forked: this process must have
/// one thread until then).
///
/// # Errors
/// [`LabError::Input`] for a command the scenario format refuses;
/// [`LabError::Lab`] when the supervisor cannot start or dies, or the
/// signal thread cannot start.
pub fn run(
    args: &WrapArgs,
    control: std::os::fd::BorrowedFd<'_>,
    caught: forward::Caught,
) -> Result<Wrapped, LabError> {
    let plan = plan(&args.command)?;
    let (cgroup, cgroup_note) = crate::cgroup::trial_parent(args.no_cgroup);
    if let Some(parent) = cgroup.as_deref().and_then(std::path::Path::parent) {
        crate::janitor::sweep(parent);
    }
    // The kernel's process events flow to the supervisor while the wrap
    // listens: the lineage of every survivor, exact.
    let _events = crate::trial::keep_events_flowing();
    let result = trial(args, &plan, cgroup.as_deref(), control, caught);
    if let Some(dir) = &cgroup {
        crate::cgroup::remove_lab_cgroup(dir);
    }
    crate::session::sweep_orphans();
    let outcome = result?;
    let mut fallback = Vec::new();
    if let Some(note) = cgroup_note {
        fallback.push(format!("no cgroup ({note})"));
    }
    if let PidNsMode::None(why) = crate::session::handle::pid_namespace(&args.exe) {
        fallback.push(format!("no pid namespace ({why})"));
    }
    let contained = if cgroup.is_some() {
        "the trial's cgroup"
    } else {
        "the supervisor's subreaper"
    };
    let fallback = (!fallback.is_empty()).then(|| {
        format!(
            "lab wrap: {}: {contained} still finds and ends what the program leaves",
            fallback.join("; ")
        )
    });
    let judgement = judge::judge(&args.command.join(" "), &outcome, &args.rules);
    Ok(Wrapped {
        outcome,
        judgement,
        plan,
        fallback,
    })
}

/// The one trial on a wrap supervisor.
fn trial(
    args: &WrapArgs,
    plan: &Plan,
    cgroup: Option<&std::path::Path>,
    control: std::os::fd::BorrowedFd<'_>,
    caught: forward::Caught,
) -> Result<Outcome, LabError> {
    let req = TrialRequest {
        plan: plan.clone(),
        strategy: Strategy::parse("canonical")?,
        trial: 0,
        deadline_us: args
            .deadline
            .map_or(NO_DEADLINE_US, |d| d.as_micros() as u64),
        cgroup_parent: cgroup.map(std::path::Path::to_path_buf),
        gdb: false,
        keep_hung: false,
        trace: false,
        brief_verdicts: Vec::new(),
        log_dir: None,
    };
    let mut sup = SupervisorHandle::start_wrap(&args.exe, cgroup, control)?;
    caught
        .forward()
        .map_err(|e| LabError::io("cannot start the thread that forwards signals", e))?;
    Ok(sup.run(&req, &|_| {})?)
}
