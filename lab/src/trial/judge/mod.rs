//! The judge: pure functions from what a trial's course observed
//! ([`Observation`]) to its [`Outcome`]. No process, no syscall: the course
//! reads the kernel (pidfds, `waitid`, the cgroup files) into the
//! observation, and everything decided from it is here, where it is
//! unit-tested on constructed observations.
//!
//! - the precedence of [`outcome`]: the lab's own error, a guard's panic, a
//!   hang, an innocent kill, an early death, a leak, a command that failed
//!   (`fail`), then what the cascade came to;
//! - the cascade after the teardown, from evidence (`settle`, with the
//!   quiescence rule of `quiescence`: once nothing of the trial can act by
//!   itself, what is alive is an orphan, decided at once), or from windows
//!   where `/proc` cannot be read (`cascade`): a pass, a slow cascade (a
//!   pass with its latency), an orphan, or processes the supervisor
//!   SIGKILLed that are only dying (waited for, then a `hang` if they do
//!   not die);
//! - a trial busy past a bound (`stall`): at the deadline a `hang` needs a
//!   blocked process (`overdue`), else the deadline is extended up to a
//!   cap; spinning (a `hang`, or an orphan that runs) is told from starved
//!   (an `error`) by the CPU time the processes got;
//! - when the course has settled ([`course_state`]);
//! - when a gate kill may fire ([`fates_fixed`]): once every node whose
//!   fate the plan fixes is at a known phase, so that a gated plan leaves
//!   the same survivors in every trial;
//! - the reasons of a hang, an undying process and an orphan;
//! - the cascade window ([`window_us`]): four times the largest measured
//!   latency, between a floor and a ceiling;
//! - the early-death rule ([`early_death`]) and the false orphans of the
//!   `/proc` oracle.

use std::io;

pub(super) use cascade::{
    cascade, settle, Clock, Look, Stage, Step, ACTING_BOUND_US, DYING_BOUND_US,
};
pub(super) use quiescence::{quiescence, Quiet};
pub(super) use reasons::{hang, orphans, spinning, undying, OrphanBy};
pub(super) use stall::{overdue, stall, Overdue, Stall, DEADLINE_CAP};

use crate::node::pid_reuse::Finding;
use crate::plan::Plan;
use crate::verdict::{GuardPanic, Outcome, Verdict};
use crate::verdict::{NodeRung, Rung};

/// Shortest cascade window (µs), before measured latencies widen it. At 2 ms,
/// canonical trials running side by side saw a SIGKILLed root outlive both
/// windows (2 of 10 with -j 2); at 10 ms, none of 200.
pub(super) const WINDOW_FLOOR_US: u64 = 10_000;
/// Longest cascade window (µs).
pub(super) const WINDOW_CEILING_US: u64 = 1_000_000;

/// What the course saw of one node of the plan (times are `CLOCK_MONOTONIC`
/// ns).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Seen {
    /// It reported `created` (it runs).
    pub created_ns: Option<u64>,
    /// It reported `armed` (its parent-death detection is armed).
    pub armed_ns: Option<u64>,
    /// It reported `ready` (all its children are spawned).
    pub ready: bool,
    /// Its pidfd reported its exit, at this time.
    pub dead_ns: Option<u64>,
    /// The supervisor holds its pidfd (it came with `created`).
    pub watched: bool,
    /// Its pidfd read as exited when the course last looked (before its
    /// death was taken from the poll).
    pub exited: bool,
    /// It could not spawn a child: the errno.
    pub failed: Option<i64>,
    /// It reported `exiting` or `parent-gone`, or panicked: its death is
    /// its own.
    pub ended_itself: bool,
    /// The supervisor signalled it (a planned kill or the teardown).
    pub signalled: bool,
    /// The supervisor sent it SIGKILL (directly, or with `cgroup.kill` or
    /// every pidfd): it is dying, whatever its parent does, so it can be a
    /// slow death but never an orphan.
    pub killed: bool,
    /// The teardown rung in effect when it died.
    pub rung: Option<Rung>,
    /// How it ended ([`crate::phase::exit_value`]: the exit code, or 256 +
    /// a signal), where its parent's reap told: a command node's parent
    /// reports it; the root's parent is the supervisor, which reaps it.
    pub exit: Option<i64>,
}

impl Seen {
    /// Whether its exit was observed: taken from the poll, or read from its
    /// pidfd.
    fn gone(&self) -> bool {
        self.dead_ns.is_some() || self.exited
    }
}

/// Everything the course observed that the verdict depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Observation {
    /// One per node of the plan, in plan order.
    pub nodes: Vec<Seen>,
    /// Leaks reported by nodes, with the holders named.
    pub leaks: Vec<String>,
    /// The holders of the leaked pipes as a survivor set names them (a
    /// node's path, a process outside the plan by its command in
    /// backticks), sorted, once each.
    pub leak_holders: Vec<String>,
    /// Findings of the PID-reuse experiment.
    pub findings: Vec<Finding>,
    /// Kills by PID that reached a process outside the trial (without a
    /// PID namespace: a reaped node's PID held by another process), each
    /// in words.
    pub stray_kills: Vec<String>,
    /// The first unplanned death during the course.
    pub early: Option<String>,
    /// Why the trial is a panic (a guard refused a deadlock).
    pub panic: Option<GuardPanic>,
    /// Legacy oracle: kill targets `/proc` read as alive right after the kill.
    pub proc_alive_after_kill: Vec<usize>,
    /// The trial ran in a cgroup of its own.
    pub cgroup: bool,
    /// The `PATH` the nodes search for a `command`'s program.
    pub path_env: String,
}

/// What ended the course, before the precedence rule of [`outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ending {
    /// The verdict the course came to.
    pub verdict: Verdict,
    /// Its reason.
    pub reason: Option<String>,
    /// The teardown rung in effect.
    pub rung: Rung,
    /// The cascade window used (µs), 0 when none was.
    pub window_us: u64,
    /// The latency of a slow cascade, from the teardown (µs).
    pub slow_us: Option<u64>,
}

impl Ending {
    /// An ending with no window and no slow cascade.
    pub fn new(verdict: Verdict, reason: Option<String>, rung: Rung) -> Ending {
        Ending {
            verdict,
            reason,
            rung,
            window_us: 0,
            slow_us: None,
        }
    }
}

/// The live processes of the trial, as the census counted them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Alive {
    /// Paths of the live nodes.
    pub paths: Vec<String>,
    /// Every live process: the live nodes and those outside the plan.
    pub count: u32,
    /// Those outside the plan, each in words (pid, command line, who
    /// started it: [`crate::lineage::describe_process`]); empty when the
    /// census did not name them.
    pub outside: Vec<String>,
    /// Their command lines, in the same order.
    pub outside_commands: Vec<String>,
}

/// The outcome of a trial whose course came to `end`, `time_us` (µs) after
/// its start. The most telling verdict wins: the lab's own failure (a node
/// could not spawn, the PID-reuse experiment could not run, `end` is an
/// error), a guard's refusal (`panic`), a hang, then the harms (an innocent
/// kill, an early death, a leak), then what the cascade came to.
pub(super) fn outcome(plan: &Plan, obs: &Observation, end: Ending, time_us: u64) -> Outcome {
    let failed = obs
        .nodes
        .iter()
        .enumerate()
        .find_map(|(i, n)| n.failed.map(|e| spawn_failure(plan, obs, i, e)));
    let finding_error = obs.findings.iter().find_map(|f| match f {
        Finding::NoPrivilege => Some(
            "pid-reuse: no private PID namespace could be made (run as root, or allow \
             unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1)"
                .to_string(),
        ),
        Finding::NoReuse => {
            Some("pid-reuse: the victim's PID was not handed out again".to_string())
        }
        _ => None,
    });
    let innocent = obs
        .findings
        .contains(&Finding::InnocentKill)
        .then(|| {
            "a signal sent by PID to a reaped process killed the bystander that was given its PID"
                .to_string()
        })
        .or_else(|| (!obs.stray_kills.is_empty()).then(|| obs.stray_kills.join("\n")));
    let (verdict, reason) = if let Some(f) = failed.or(finding_error) {
        (Verdict::Error, Some(f))
    } else if end.verdict == Verdict::Error {
        (end.verdict, end.reason)
    } else if let Some(p) = &obs.panic {
        (Verdict::Panic, Some(p.reason.clone()))
    } else if end.verdict == Verdict::Hang {
        (end.verdict, end.reason)
    } else if let Some(i) = innocent {
        (Verdict::InnocentKill, Some(i))
    } else if let Some(e) = &obs.early {
        (Verdict::EarlyDeath, Some(e.clone()))
    } else if !obs.leaks.is_empty() {
        (Verdict::Leak, Some(obs.leaks.join("\n")))
    } else if let Some(f) = failed_command(plan, obs) {
        // A program that failed and also left processes behind: the fail
        // ranks higher, and its reason says what was left too.
        let also = match (end.verdict, &end.reason) {
            (Verdict::Orphan, Some(r)) => format!("; besides, {r}"),
            _ => String::new(),
        };
        (Verdict::Fail, Some(format!("{f}{also}")))
    } else {
        (end.verdict, end.reason)
    };
    let node_rungs = obs
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            n.rung.map(|rung| NodeRung {
                path: plan.nodes[i].path.clone(),
                rung,
            })
        })
        .collect();
    let panic = obs.panic.as_ref().filter(|_| verdict == Verdict::Panic);
    Outcome {
        verdict,
        orphans: 0,
        hung: 0,
        time_to_verdict_us: time_us,
        duration_us: 0,
        slow_cascade_us: end.slow_us,
        window_us: end.window_us,
        kill_rung: end.rung,
        nodes_spawned: obs.nodes.iter().filter(|n| n.created_ns.is_some()).count() as u32,
        cgroup: obs.cgroup,
        pid_namespace: String::new(),
        // A leak's holders were alive when it was found: the survivor sets
        // count them (an orphan's survivors are set by `orphans`).
        survivors: if verdict == Verdict::Leak {
            obs.leak_holders.clone()
        } else {
            Vec::new()
        },
        reason,
        node_rungs,
        false_orphans: false_orphans(obs),
        panic_site: panic.map(|p| p.site.clone()),
        signatures: panic.and_then(|p| p.signature).into_iter().collect(),
        diagnosis: None,
        kept: false,
        timings: Default::default(),
        output: None,
        trace: None,
        descendant_failures: Vec::new(),
        kill_planned_us: None,
        kill_sent_us: None,
        root_exit: None,
        named: Vec::new(),
    }
}

/// The first command node that ended other than its plan expects
/// (`expect_exit`, 0 by default), with no signal of the plan's to blame:
/// the reason of a `fail`.
fn failed_command(plan: &Plan, obs: &Observation) -> Option<String> {
    obs.nodes.iter().enumerate().find_map(|(i, n)| {
        let node = &plan.nodes[i];
        let cmd = node.command_line()?;
        let status = n.exit?;
        if n.signalled || status == node.expect_exit as i64 {
            return None;
        }
        let how = if status >= 256 {
            format!("was ended by {}", signal_name((status - 256) as i32))
        } else {
            format!("exited with status {status}")
        };
        Some(format!(
            "command node {} (`{cmd}`) {how}; expected exit status {}",
            node.path, node.expect_exit
        ))
    })
}

/// `SIGSEGV`, `SIGKILL`, ... for the signals a program under test usually
/// dies of; `signal N` for the others.
pub(in crate::trial) fn signal_name(sig: i32) -> String {
    let known = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or_else(|| format!("signal {sig}"), |(_, name)| name.to_string())
}

/// Why node `i` could not spawn a child (`errno`): the child it was
/// spawning is its first that never reported `created`; when that is a
/// `command` node, its program and the `PATH` searched are named.
fn spawn_failure(plan: &Plan, obs: &Observation, i: usize, errno: i64) -> String {
    let err = io::Error::from_raw_os_error(errno as i32);
    let parent = &plan.nodes[i].path;
    let child = plan.nodes[i]
        .children
        .iter()
        .map(|&c| c as usize)
        .find(|&c| obs.nodes[c].created_ns.is_none());
    match child.and_then(|c| Some((&plan.nodes[c].path, plan.nodes[c].command_line()?))) {
        Some((path, cmd)) => format!(
            "node {parent} could not start `{cmd}` (the command of node {path}): {err}; \
             PATH searched: {}",
            if obs.path_env.is_empty() {
                "(unset)"
            } else {
                &obs.path_env
            }
        ),
        None => format!("node {parent} could not spawn a child: {err}"),
    }
}

/// False orphans of the legacy `/proc` oracle: kill targets that
/// `/proc/PID/stat` read as alive right after their kill, although their
/// pidfd reported the exit within the trial.
pub(super) fn false_orphans(obs: &Observation) -> u32 {
    obs.proc_alive_after_kill
        .iter()
        .filter(|&&i| obs.nodes[i].gone())
        .count() as u32
}

/// The cascade window (µs): four times the largest measured latency (the
/// largest gap between successive deaths of the cascade, `max_gap_us`, or a
/// spawn hop of this trial: from a parent's `armed` report, after which it
/// spawns, or from `root_spawned_ns` for the root, to the child's
/// `created`), within [`WINDOW_FLOOR_US`] and [`WINDOW_CEILING_US`].
pub(super) fn window_us(plan: &Plan, nodes: &[Seen], root_spawned_ns: u64, max_gap_us: u64) -> u64 {
    let hop = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let from = match plan.nodes[i].parent {
                Some(p) => nodes[p as usize].armed_ns?,
                None => root_spawned_ns,
            };
            Some(n.created_ns?.saturating_sub(from) / 1000)
        })
        .max()
        .unwrap_or(0);
    (4 * hop.max(max_gap_us)).clamp(WINDOW_FLOOR_US, WINDOW_CEILING_US)
}

/// Node `i` died during the course: the reason of an `early-death`, unless
/// it ended by itself, was signalled, is a command node, or its parent's
/// death was already observed (the root's parent, the supervisor, is
/// alive).
///
/// It ended by itself when it said so (`exiting`, `parent-gone`, a panic),
/// or when its reaped status is an exit with the code its plan gives it:
/// only the node's own `exit` at the end of its course gives that status
/// (a signal gives none). The kernel's status stands when the report does
/// not reach the supervisor.
pub(super) fn early_death(plan: &Plan, nodes: &[Seen], i: usize) -> Option<String> {
    let n = &nodes[i];
    let exited_as_planned = n.exit == Some(plan.nodes[i].exit_code as i64);
    if n.ended_itself || exited_as_planned || n.signalled || plan.nodes[i].command.is_some() {
        return None;
    }
    let parent = match plan.nodes[i].parent {
        None => "the supervisor".to_string(),
        Some(p) => {
            let pn = &nodes[p as usize];
            if pn.dead_ns.is_some() || !pn.watched || pn.exited {
                return None;
            }
            format!("node {}", plan.nodes[p as usize].path)
        }
    };
    Some(format!(
        "node {} died during the course while its parent ({parent}) was alive, \
         without exiting by itself and without a signal from the plan",
        plan.nodes[i].path
    ))
}

/// `(settled, tree_ready)` of the course so far: settled when every node is
/// dead, lingering after `ready`, or will never be born (its parent died
/// before it was spawned); the tree is ready when every node is ready, dead
/// or unborn.
pub(super) fn course_state(plan: &Plan, nodes: &[Seen]) -> (bool, bool) {
    let mut settled = vec![false; nodes.len()];
    let mut ready = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let dead = n.dead_ns.is_some();
        if n.created_ns.is_some() {
            settled[i] = dead || (n.ready && plan.nodes[i].linger);
            ready[i] = dead || n.ready;
        } else if let Some(p) = plan.nodes[i].parent {
            let p = p as usize;
            let pn = &nodes[p];
            let unborn =
                settled[p] && !pn.ready && (pn.dead_ns.is_some() || pn.created_ns.is_none());
            settled[i] = unborn;
            ready[i] = unborn;
        }
    }
    (settled.iter().all(|&s| s), ready.iter().all(|&r| r))
}

/// Whether a gate kill may fire: every node whose fate the plan fixes is at
/// a known phase, so that what survives the kill does not depend on timing.
/// `held[i]` says node `i` sits at its gate.
///
/// A node that reported `created` is known once it is armed (its
/// parent-death detection is armed, or it reported `ready`: a command
/// node's parent reports all three at once), held at its gate, dead, ended
/// by itself (it is on its way out) or could not spawn (it exits). A node
/// not created yet is known when it is unborn for good until the kill: an
/// ancestor is held at its gate, or its parent is dead, ended by itself,
/// failed, or unborn for good in turn. Otherwise it may be between its
/// parent's fork and its own `created` (or `armed`), where its fate is a
/// race, and the kill waits for its next report.
pub(super) fn fates_fixed(plan: &Plan, nodes: &[Seen], held: &[bool]) -> bool {
    // barren[i]: node i will spawn no child before the kill.
    let mut barren = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let held = held.get(i).copied().unwrap_or(false);
        let ending = n.dead_ns.is_some() || n.ended_itself || n.failed.is_some();
        if n.created_ns.is_some() {
            if !(held || ending || n.armed_ns.is_some() || n.ready) {
                return false;
            }
            barren[i] = held || ending;
        } else {
            // Plan order: a parent comes before its children.
            match plan.nodes[i].parent {
                Some(p) if barren[p as usize] => barren[i] = true,
                _ => return false,
            }
        }
    }
    true
}

mod cascade;
mod quiescence;
mod reasons;
mod stall;
#[cfg(test)]
mod tests;
