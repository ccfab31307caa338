//! The trial engine: one trial, as the supervisor runs it, one job per file.
//!
//! - [`protocol`]: what the lab and a supervisor say to each other (the
//!   request, the fds, the control lines);
//! - `setup`: the trial's cgroup, the phase channel, the gates, the boot
//!   record, and spawning the root the strategy's way;
//! - `course`: following the plan (phase reports, pidfd exits, gates, the
//!   kill schedule) in the main poll loop, down to the verdict;
//! - `deadline`: a course past its deadline (blocked, busy, spinning or
//!   starved); `settle`: the cascade after the teardown, from evidence;
//! - [`ladder`]: the teardown rungs ([`Rung`]) and climbing them;
//! - `census`: who of the trial is alive (pidfds, the cgroup, adopted
//!   orphans), and the diagnosis of what is stuck;
//! - `activity` and `evidence`: what the live processes can still do by
//!   themselves (state, pending signals, timed waits, CPU time, from
//!   `/proc`), for the quiescence rule, and the re-check of survivors
//!   against their pidfds;
//! - `judge`: pure functions from what was observed to the [`Outcome`];
//! - `cleanup`: ending with nothing of the trial alive;
//! - `stray`: a kill by PID that reached a process outside the trial
//!   (without a PID namespace), for the judge's `innocent-kill`.
//!
//! Whether a process exited comes from pidfds, `waitid` and the cgroup
//! files only. `/proc` is read by the legacy observe axis, whose defects the
//! lab measures; by the diagnosis of a stuck trial; and for what a live
//! process can still do (asleep or runnable, a signal pending), which is
//! how the judge knows the cascade is over (quiescence) or the trial is
//! blocked (a hang) without a time window.

use std::os::fd::{BorrowedFd, OwnedFd};

mod activity;
mod census;
mod cleanup;
mod course;
mod deadline;
mod evidence;
mod judge;
pub mod ladder;
mod lineage_watch;
mod output;
pub mod protocol;
mod settle;
mod setup;
mod stray;
pub mod wrap_control;

use crate::cgroup::TrialCgroup;
use crate::node::guard::refusal;
use crate::plan::Plan;
use crate::scenario::Phase;
use crate::verdict::{Outcome, Rung, Timings, Verdict};
use judge::{Ending, Observation, Seen};
use lifeline::{monotonic_ns, Pidfd};
use protocol::TrialRequest;

pub use lineage_watch::keep_events_flowing;

/// How the supervisor reaches one node of the plan.
#[derive(Debug, Default)]
struct Proc {
    /// Its PID, from its `created` report (0 before).
    pid: i32,
    /// Its pidfd, from its `created` report.
    pidfd: Option<Pidfd>,
    /// The gate it waits at, if any.
    at_gate: Option<Phase>,
    /// Its gate was opened since the last look at what the trial's
    /// processes are doing that the course acted on ([`Course::looked`]).
    released: bool,
}

/// Where a planned kill is.
#[derive(Debug, PartialEq)]
enum KillState {
    /// Not yet due.
    Pending,
    /// Rung `rung` of its ladder (0: its first signal) was sent at `at_ns`;
    /// the next rung follows after the kill's grace while the target
    /// lives. For a gated SIGKILL, the gate opens once the target is gone.
    Sent {
        /// The rung sent last.
        rung: usize,
        /// When it was sent (ns).
        at_ns: u64,
    },
    /// Done (its gate, if any, released).
    Done,
}

/// One trial in flight: the supervisor's handles on it, and what it has
/// observed so far for the judge.
///
/// Its methods are written beside the job they do, one `impl` block per
/// file:
/// - `mod.rs`: the trial's own clock and plan, and finishing an outcome;
/// - `setup.rs`: the cgroup, the phase channel, the gates, spawning the root;
/// - `course.rs`: the main poll loop (`follow`), phase reports, kills,
///   deaths, timeouts and reaping;
/// - `ladder.rs`: the teardown rungs; `settle.rs`: the cascade after the
///   teardown, judged from evidence; `deadline.rs`: a course past its
///   deadline;
/// - `census.rs`: who of the trial is alive, orphans and the diagnosis;
///   `evidence.rs`: the looks at what live processes can still do and the
///   re-check of survivors;
/// - `lineage_watch.rs`: who started whom, for a command root;
/// - `cleanup.rs`: ending with nothing of the trial alive.
struct Course<'a> {
    req: &'a TrialRequest,
    /// When the trial started (`CLOCK_MONOTONIC` ns).
    t0: u64,
    /// When the root was spawned (ns): the spawn called.
    root_spawned_ns: u64,
    /// When the root's spawn returned (ns).
    root_running_ns: u64,
    /// What the judge reads.
    seen: Observation,
    /// One per node of the plan.
    procs: Vec<Proc>,
    /// One per planned kill.
    kills: Vec<KillState>,
    /// Write ends of the gates, by the gated node's index.
    gates: Vec<(u32, OwnedFd)>,
    /// When every node was ready, dead or unborn (ns).
    ready_at: Option<u64>,
    cgroup: Option<TrialCgroup>,
    /// Orphans outside the plan that reparented to the supervisor.
    adopted: Vec<Pidfd>,
    /// The signal of the last rung sent to the whole tree through pidfds
    /// (without a cgroup, or a signal other than SIGKILL): an orphan adopted
    /// later was part of that tree (a helper whose node the rung ended), so
    /// it gets the signal when adopted.
    group_signal: Option<crate::signal::Sig>,
    /// `cgroup.kill` was written: every process of the trial is dying.
    cgroup_killed: bool,
    /// The root is exec'd: the create axis is `clone3` and the host (this
    /// supervisor) has threads, so a copy of it is out of the question.
    root_exec: bool,
    /// The root is a copy of a host whose attendant has a worker: `(pid,
    /// who started it)`, for the reason of a hang.
    host_worker: Option<(u32, String)>,
    /// Phase reports received so far.
    reports: u64,
    /// `reports` when the course last looked at an overdue trial (none
    /// before the deadline).
    reports_at_look: Option<u64>,
    /// CPU times of the trial's processes when a bound was first reached.
    cpu_at_bound: Option<evidence::CpuSnapshot>,
    /// When the teardown began (ns).
    teardown_at: Option<u64>,
    /// The stdout and stderr of a command root (the program `lab exec`
    /// runs).
    output: Option<output::Streams>,
    /// Who started whom, for a command root ([`lineage_watch`]).
    lineage: Option<crate::lineage::Lineage>,
    /// Every signal the course sent to a node, with when (ns), for the
    /// trace.
    signals_sent: Vec<(u64, crate::signal::Sig)>,
    /// When the first signal of the plan's first kill was sent (ns).
    first_kill_sent_ns: Option<u64>,
    /// A wrap trial (`lab wrap`): the control pipe on which the lab
    /// forwards signals to the program, which shares the supervisor's
    /// stdio.
    control: Option<BorrowedFd<'a>>,
    /// The diagnosis taken when a forwarded SIGTERM found the program
    /// still running (before it was sent on), for the outcome.
    term_diagnosis: Option<crate::forensics::Diagnosis>,
}

/// Run one trial. `lab_lifeline` is the supervisor's lifeline to the lab: if
/// the lab dies mid-trial, the trial is cleaned up and `None` is returned.
/// With `req.keep_hung`, a hang is handed to `hold` (marked `kept`) before
/// anything is killed; the tree is cleaned up when `hold` returns. An
/// infrastructure failure (no cgroup, no phase channel, no root) is an
/// `error` outcome, never a panic. `spare` carries a trial cgroup from one
/// trial of the supervisor to the next: the one its last trial left empty
/// on the way in, the one this trial leaves on the way out. With `control`
/// (a wrap supervisor, `lab wrap`) the program shares the supervisor's
/// stdio and the signals the lab writes there are forwarded to it
/// (`wrap_control`).
pub fn run<'a>(
    req: &'a TrialRequest,
    lab_lifeline: BorrowedFd<'_>,
    control: Option<BorrowedFd<'a>>,
    hold: &mut dyn FnMut(&Outcome),
    spare: &mut Option<TrialCgroup>,
) -> Option<Outcome> {
    let t0 = monotonic_ns();
    // The moments of kills drawn per trial, this trial's: the course reads
    // only this request.
    let resolved;
    let req = if req.plan.draws_per_trial() {
        resolved = TrialRequest {
            plan: req.plan.for_trial(req.trial),
            ..req.clone()
        };
        &resolved
    } else {
        req
    };
    let cgroup = match setup::cgroup(req, spare) {
        Ok(cg) => cg,
        Err(e) => return Some(error_outcome(t0, crate::error::chain(&e))),
    };
    let mut course = Course {
        req,
        t0,
        root_spawned_ns: t0,
        root_running_ns: t0,
        seen: Observation {
            nodes: vec![Seen::default(); req.plan.nodes.len()],
            cgroup: cgroup.is_some(),
            path_env: std::env::var("PATH").unwrap_or_default(),
            ..Observation::default()
        },
        procs: (0..req.plan.nodes.len()).map(|_| Proc::default()).collect(),
        kills: req.plan.kills.iter().map(|_| KillState::Pending).collect(),
        gates: Vec::new(),
        ready_at: None,
        cgroup,
        adopted: Vec::new(),
        group_signal: None,
        cgroup_killed: false,
        root_exec: false,
        host_worker: None,
        reports: 0,
        reports_at_look: None,
        cpu_at_bound: None,
        teardown_at: None,
        output: None,
        lineage: None,
        signals_sent: Vec::new(),
        first_kill_sent_ns: None,
        control,
        term_diagnosis: None,
    };
    if let Some(why) = req.plan.unreachable_gate() {
        *spare = course.cgroup.take();
        return Some(error_outcome(t0, why));
    }
    let result = match refusal(&req.plan, &req.strategy) {
        Some(refused) => {
            course.seen.panic = Some(refused);
            Some(course.finish(Ending::new(Verdict::Pass, None, Rung::None)))
        }
        None => course.follow(lab_lifeline),
    };
    let result = result.map(|mut o| {
        if req.keep_hung && o.verdict == Verdict::Hang {
            o.kept = true;
            hold(&o);
        }
        o
    });
    course.cleanup();
    // What it leaves for the next trial: a cgroup nothing is in.
    *spare = course.cgroup.take().filter(TrialCgroup::reusable);
    // What a program run as the root wrote, to its end, and its timeline,
    // for a trial that did not pass.
    let output = course.output.as_mut().map(|out| {
        out.drain();
        out.output()
    });
    let verdict = result
        .as_ref()
        .map(|o| (o.verdict.name(), t0 + o.time_to_verdict_us * 1000));
    let trace = course.trace_json(verdict);
    let end = monotonic_ns();
    result.map(|mut o| {
        o.duration_us = (end - t0) / 1000;
        o.timings = Timings::from_times(
            t0,
            course.root_spawned_ns,
            course.root_running_ns,
            course.ready_at,
            course.teardown_at,
            t0 + o.time_to_verdict_us * 1000,
            end,
        );
        course.name_signal_deaths(&mut o);
        (o.kill_planned_us, o.kill_sent_us) = course.first_kill_moments();
        if course.plan().nodes[0].command.is_some() {
            o.root_exit = course.seen.nodes[0].exit;
        }
        if o.diagnosis.is_none() {
            o.diagnosis = course.term_diagnosis.take();
        }
        if o.verdict != Verdict::Pass {
            o.output = output;
        }
        if o.verdict != Verdict::Pass || req.trace {
            o.trace = trace;
        }
        o
    })
}

/// An `error` outcome for `reason`, with the time since `t0` (ns).
fn error_outcome(t0: u64, reason: String) -> Outcome {
    Outcome::error(reason, (monotonic_ns() - t0) / 1000)
}

impl Course<'_> {
    fn plan(&self) -> &Plan {
        &self.req.plan
    }

    /// Time since the trial started (µs).
    fn elapsed_us(&self) -> u64 {
        (monotonic_ns() - self.t0) / 1000
    }

    /// The outcome of a course that came to `end`, from what was observed.
    /// After the teardown, a node whose exit its pidfd shows but the poll
    /// has not reported yet died under `end.rung`.
    fn finish(&mut self, end: Ending) -> Outcome {
        self.look_at_exits();
        self.check_output();
        if end.rung != Rung::None {
            self.take_exits(monotonic_ns(), end.rung);
        }
        judge::outcome(self.plan(), &self.seen, end, self.elapsed_us())
    }

    /// Read every watched node's pidfd into the observation (`exited`), so
    /// that the judge sees the exits the poll has not reported yet.
    fn look_at_exits(&mut self) {
        for (s, p) in self.seen.nodes.iter_mut().zip(&self.procs) {
            s.exited = p.pidfd.as_ref().is_some_and(|f| f.has_exited());
        }
    }
}
