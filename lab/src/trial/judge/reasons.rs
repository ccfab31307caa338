//! The outcomes that need a reason built from what is alive: a hang (the
//! deadline passed with a process blocked, or one spinning), an undying
//! SIGKILLed process, and orphans.

use std::fmt::Write as _;

use super::{outcome, Alive, Ending, Observation};
use crate::plan::Plan;
use crate::scenario::AttendantAction;
use crate::verdict::Rung;
use crate::verdict::{Outcome, Verdict};

/// Who is blocked in a hang: `blocked` (processes asleep with no phase
/// report since the deadline), or `None` when `/proc` could not tell.
fn blocked_text(blocked: Option<&Alive>) -> String {
    match blocked {
        None => "/proc could not be read to name the blocked processes".to_string(),
        Some(b) => format!("asleep with no phase report since the deadline: {}", who(b)),
    }
}

/// `1 process`, `N processes`.
fn processes(n: u32) -> String {
    if n == 1 {
        "1 process".to_string()
    } else {
        format!("{n} processes")
    }
}

/// `nodes A B and N processes outside the plan`, for `alive`.
fn who(alive: &Alive) -> String {
    let outside = (alive.count as usize).saturating_sub(alive.paths.len());
    if !alive.outside.is_empty() {
        const SHOWN: usize = 5;
        let mut named = alive.outside[..alive.outside.len().min(SHOWN)].join("; ");
        if alive.outside.len() > SHOWN {
            named.push_str(&format!("; and {} more", alive.outside.len() - SHOWN));
        }
        let n = alive.outside.len();
        let what = if n == 1 { "process" } else { "processes" };
        return if alive.paths.is_empty() {
            format!("{n} {what} outside the plan: {named}")
        } else {
            format!(
                "nodes {} and {n} {what} outside the plan: {named}",
                alive.paths.join(" ")
            )
        };
    }
    let nodes = if alive.paths.is_empty() {
        String::new()
    } else {
        format!("nodes {}", alive.paths.join(" "))
    };
    let others = processes(outside as u32);
    match (nodes.is_empty(), outside) {
        (true, 0) => "no node".to_string(),
        (true, _) => format!("{others} outside the plan"),
        (false, 0) => nodes,
        (false, _) => format!("{nodes} and {others} outside the plan"),
    }
}

/// The course missed its deadline (`deadline_ms`, and any extension while
/// the trial was busy) with `alive` live and `blocked` of them asleep: a
/// `hang` (unless something outranks it), ended by the `cleanup` rung. The
/// reason names the blocked processes, the nodes that never reported ready,
/// with their last phase, and, when the root is a copy of a host whose
/// attendant has a worker (`host_worker`: its pid, who started it) and a
/// node uses the attendant, says that the root inherited the attendant
/// without its worker.
#[allow(clippy::too_many_arguments)]
pub(in crate::trial) fn hang(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
    blocked: Option<&Alive>,
    deadline_ms: u64,
    host_worker: Option<&(u32, String)>,
    rung: Rung,
    time_us: u64,
) -> Outcome {
    let stuck: Vec<String> = obs
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.created_ns.is_some() && n.dead_ns.is_none() && !n.ready)
        .map(|(i, n)| {
            let phase = if n.armed_ns.is_some() {
                "armed"
            } else {
                "created"
            };
            format!("{} (last phase {phase})", plan.nodes[i].path)
        })
        .collect();
    if let Some(cmd) = plan.nodes[0].command_line() {
        // A program run as the root: its course is its own run.
        let reason = format!(
            "`{cmd}` did not exit within the deadline ({deadline_ms} ms); {}; {} alive",
            blocked_text(blocked),
            processes(alive.count)
        );
        let mut o = hung(plan, obs, reason, rung, alive, time_us);
        if o.verdict == Verdict::Hang {
            o.kill_rung = Rung::Cleanup;
        }
        return o;
    }
    let mut reason = format!(
        "the course did not finish within the deadline ({deadline_ms} ms); {}; {}; {} alive",
        blocked_text(blocked),
        if stuck.is_empty() {
            "every live node had reported ready (a parent blocked waiting for its children)"
                .to_string()
        } else {
            format!("not ready: {}", stuck.join(", "))
        },
        processes(alive.count)
    );
    let uses = plan
        .nodes
        .iter()
        .any(|n| n.attendant == AttendantAction::Use);
    if let (Some((pid, by)), true) = (host_worker, uses) {
        let _ = write!(
            reason,
            "; the host (pid {pid}) runs an attendant worker started by {by}, and the root is \
             a copy of the host (no exec): it inherited the attendant initialised but not \
             its worker"
        );
    }
    let mut o = hung(plan, obs, reason, rung, alive, time_us);
    if o.verdict == Verdict::Hang {
        o.kill_rung = Rung::Cleanup;
    }
    o
}

/// The course missed its deadline while `spinner` (a node path, or a
/// process outside the plan) kept running on a CPU without a phase report,
/// up to the cap of the extensions: a `hang` with the `spinning` signature
/// (a livelock), ended by the `cleanup` rung.
pub(in crate::trial) fn spinning(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
    spinner: &str,
    rung: Rung,
    time_us: u64,
) -> Outcome {
    let reason = format!(
        "{spinner} kept running on a CPU past the deadline without a phase report, up to {}x \
         the deadline: spinning (a livelock, not a blocked wait)",
        super::DEADLINE_CAP
    );
    let mut o = hung(plan, obs, reason, rung, alive, time_us);
    if o.verdict == Verdict::Hang {
        o.kill_rung = Rung::Cleanup;
        o.signatures.push(crate::forensics::Signature::Spinning);
    }
    o
}

/// A `hang` for `reason` with `alive` as its hung processes (unless the
/// precedence of [`outcome`] makes it another verdict).
fn hung(
    plan: &Plan,
    obs: &Observation,
    reason: String,
    rung: Rung,
    alive: Alive,
    time_us: u64,
) -> Outcome {
    let mut o = outcome(
        plan,
        obs,
        Ending::new(Verdict::Hang, Some(reason), rung),
        time_us,
    );
    if o.verdict == Verdict::Hang {
        o.hung = alive.count;
        o.named = named(&alive);
        o.survivors = survivors(alive);
    }
    o
}

/// Processes the supervisor SIGKILLed outlived [`DYING_BOUND_US`](super::DYING_BOUND_US) after the
/// teardown: a `hang` (an uninterruptible sleep, say). `since_teardown_ms`
/// is the time since the teardown (ms).
pub(in crate::trial) fn undying(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
    rung: Rung,
    since_teardown_ms: u64,
    time_us: u64,
) -> Outcome {
    let reason = format!(
        "SIGKILLed by the supervisor and still alive {since_teardown_ms} ms after the teardown \
         ({rung}): {}; a process that does not die of SIGKILL sleeps uninterruptibly (state D)",
        if alive.paths.is_empty() {
            "processes outside the plan".to_string()
        } else {
            format!("nodes {}", alive.paths.join(" "))
        }
    );
    hung(plan, obs, reason, rung, alive, time_us)
}

/// The evidence an orphan verdict was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::trial) enum OrphanBy {
    /// The trial was quiescent: every live process asleep, no signal
    /// pending that it does not block, every caused death observed.
    Quiescence,
    /// A process kept running on a CPU after the teardown, neither dying
    /// nor asleep (it spins).
    Running,
    /// `/proc` could not be read: both cascade windows bounded the cascade.
    Windows,
}

/// `alive` outlived the teardown (`rung`), judged `by` that evidence
/// (`window_us`: the window used, 0 when none was): an `orphan`. The
/// window's length is in its own column, not in the reason: a reason that
/// varies with it would not group in the summary.
pub(in crate::trial) fn orphans(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
    rung: Rung,
    by: OrphanBy,
    window_us: u64,
    time_us: u64,
) -> Outcome {
    let evidence = match by {
        OrphanBy::Quiescence => {
            "once the trial was quiescent (every live process asleep, no signal pending, \
             every caused death observed)"
        }
        OrphanBy::Running => {
            "still running on a CPU, neither dying nor asleep, a second after the teardown"
        }
        OrphanBy::Windows => "and both cascade windows (/proc could not be read)",
    };
    let after = match plan.nodes[0].command_line() {
        Some(cmd) if rung == Rung::None => format!("alive after `{cmd}` exited"),
        _ => format!("alive after the teardown ({rung})"),
    };
    let reason = format!("{after} {evidence}: {}", who(&alive));
    let end = Ending {
        window_us,
        ..Ending::new(Verdict::Orphan, Some(reason), rung)
    };
    let mut o = outcome(plan, obs, end, time_us);
    // Named whatever outranked the orphan (a program that failed and left
    // processes behind): `lab wrap` reports both.
    o.named = named(&alive);
    if o.verdict == Verdict::Orphan {
        o.orphans = alive.count;
    }
    // A leak outranks the orphan, and the survivors (holding the pipe, as
    // a rule) outlived the teardown all the same: the survivor sets count
    // them, or else the leak's holders.
    if o.verdict == Verdict::Orphan || (o.verdict == Verdict::Leak && alive.count > 0) {
        o.survivors = survivors(alive);
    }
    o
}

/// The processes outside the plan, each with its command line
/// ([`Outcome::named`](crate::verdict::Outcome::named)).
fn named(alive: &Alive) -> Vec<crate::verdict::NamedProcess> {
    alive
        .outside
        .iter()
        .zip(&alive.outside_commands)
        .map(|(d, c)| crate::verdict::NamedProcess {
            command: c.clone(),
            description: d.clone(),
        })
        .collect()
}

/// The survivors as a trial's result names them: the live nodes' paths,
/// then the command line of each process outside the plan (in backticks,
/// sorted), so that equal survivor sets compare equal across trials.
fn survivors(alive: Alive) -> Vec<String> {
    let mut outside: Vec<String> = alive
        .outside_commands
        .into_iter()
        .map(crate::lineage::in_backticks)
        .collect();
    outside.sort();
    let mut all = alive.paths;
    all.extend(outside);
    all
}
