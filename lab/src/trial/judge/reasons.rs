//! The outcomes that need a reason built from what is alive: a hang (the
//! deadline passed), an undying SIGKILLed process, and orphans.

use std::fmt::Write as _;

use super::{outcome, Alive, Ending, Observation};
use crate::plan::Plan;
use crate::scenario::AttendantAction;
use crate::verdict::Rung;
use crate::verdict::{Outcome, Verdict};

/// The course missed its deadline (`deadline_ms`) with `alive` live: a
/// `hang` (unless something outranks it), ended by the `cleanup` rung. The
/// reason names the nodes that never reported ready, with their last phase,
/// and, when the root is a copy of a host whose attendant has a worker
/// (`host_worker`: its pid, who started it) and a node uses the attendant,
/// says that the root inherited the attendant without its worker.
pub(in crate::trial) fn hang(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
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
    let mut reason = format!(
        "the course did not finish within the deadline ({deadline_ms} ms); {}; {} processes alive",
        if stuck.is_empty() {
            "every live node had reported ready (a parent blocked waiting for its children)"
                .to_string()
        } else {
            format!("not ready: {}", stuck.join(", "))
        },
        alive.count
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
        o.survivors = alive.paths;
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

/// `alive` outlived the teardown (`rung`) and both cascade windows
/// (`window_us` each): an `orphan`. The window's length is in its own
/// column, not in the reason: a reason that varies with it would not group
/// in the summary.
pub(in crate::trial) fn orphans(
    plan: &Plan,
    obs: &Observation,
    alive: Alive,
    rung: Rung,
    window_us: u64,
    time_us: u64,
) -> Outcome {
    let outside = alive.count as usize - alive.paths.len();
    let reason = format!(
        "alive after the teardown ({rung}) and both cascade windows: {}{}",
        if alive.paths.is_empty() {
            "no node".to_string()
        } else {
            format!("nodes {}", alive.paths.join(" "))
        },
        if outside > 0 {
            format!(" and {outside} processes outside the plan")
        } else {
            String::new()
        }
    );
    let end = Ending {
        window_us,
        ..Ending::new(Verdict::Orphan, Some(reason), rung)
    };
    let mut o = outcome(plan, obs, end, time_us);
    if o.verdict == Verdict::Orphan {
        o.orphans = alive.count;
        o.survivors = alive.paths;
    }
    o
}
