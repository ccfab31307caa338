//! One trial, as the supervisor runs it: set up the phase channel, the gates
//! and the trial's cgroup, spawn the root the strategy's way, follow the
//! course (phase reports, pidfd exits, the kill schedule), tear down, judge
//! the cascade with two windows, and end with nothing of the trial alive.
//!
//! Every verdict comes from pidfds, `waitid` and the cgroup files. `/proc` is
//! read only by the legacy observe axis, whose defects the lab measures.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};

pub mod protocol;

use crate::cgroup::TrialCgroup;
use crate::forensics;
use crate::node::boot::Boot;
use crate::node::pid_reuse::Finding;
use crate::node::{ChildHandle, NodeCtx, LEAK_INODE_BITS};
use crate::plan::{Plan, PlanAt};
use crate::phase::{self, Event};
use crate::scenario::{AttendantAction, Phase, Sig};
use crate::strategy::{Create, Observe, Strategy};
use crate::verdict::{GuardPanic, Outcome, Verdict};
use lifeline::{legacy, monotonic_ns, Pidfd, Reaped};
use protocol::TrialRequest;

/// Shortest cascade window (µs), before measured latencies widen it. At 2 ms,
/// canonical trials running side by side saw a SIGKILLed root outlive both
/// windows (2 of 10 with -j 2); at 10 ms, none of 200.
const WINDOW_FLOOR_US: u64 = 10_000;
/// Longest cascade window (µs).
const WINDOW_CEILING_US: u64 = 1_000_000;
/// How often the legacy observe axis re-reads `/proc/PID/stat` (µs).
const PROC_POLL_US: u64 = 100;

#[derive(Debug, Default)]
struct Tracked {
    pid: i32,
    pidfd: Option<Pidfd>,
    created_ns: Option<u64>,
    armed_ns: Option<u64>,
    ready: bool,
    at_gate: Option<Phase>,
    dead_ns: Option<u64>,
    failed: Option<i64>,
    /// It reported `exiting` or `parent-gone`: its death is its own.
    ended_itself: bool,
    /// The supervisor signalled it (a planned kill or the teardown).
    signalled: bool,
    /// The supervisor sent it SIGKILL (directly, or with `cgroup.kill` or
    /// every pidfd): it is dying, whatever its parent does, so it can be a
    /// slow death but never an orphan.
    killed: bool,
    /// The teardown rung in effect when it died.
    rung: Option<String>,
}

#[derive(Debug, PartialEq)]
enum KillState {
    Pending,
    Sent,
    Done,
}

enum Stage {
    Course,
    Ladder {
        rung: usize,
        since: u64,
    },
    Grace,
    Confirm {
        since: u64,
    },
    /// Only processes the supervisor SIGKILLed are left: wait for them to die.
    Dying {
        since: u64,
    },
}

/// How long processes the supervisor SIGKILLed may take to die before the
/// trial is a `hang` (µs): a SIGKILLed process that outlives the cascade
/// windows is slow (a starved CPU), not an orphan; one that outlives this
/// sleeps uninterruptibly.
const DYING_BOUND_US: u64 = 2_000_000;

struct Trial<'a> {
    req: &'a TrialRequest,
    t0: u64,
    root_spawned_ns: u64,
    nodes: Vec<Tracked>,
    kills: Vec<KillState>,
    gates: Vec<(u32, OwnedFd)>,
    ready_at: Option<u64>,
    cgroup: Option<TrialCgroup>,
    adopted: Vec<Pidfd>,
    /// Leaks reported by nodes, with the holders named.
    leaks: Vec<String>,
    /// Findings of the PID-reuse experiment.
    findings: Vec<Finding>,
    /// The first unplanned death during the course.
    early: Option<String>,
    /// Why the trial is a panic (a guard refused a deadlock).
    panic: Option<GuardPanic>,
    /// Label of the teardown rung last sent.
    rung: Option<String>,
    /// Legacy oracle: kill targets `/proc` read as alive right after the kill.
    proc_alive_after_kill: Vec<usize>,
    /// `cgroup.kill` was written: every process of the trial is dying.
    cgroup_killed: bool,
    /// The root is exec'd: the create axis is `clone3` and the host (this
    /// supervisor) has threads, so a copy of it is out of the question.
    root_exec: bool,
    /// The root is a copy of a host whose attendant has a worker: `(pid,
    /// who started it)`, for the reason of a hang.
    host_worker: Option<(u32, String)>,
}

/// Run one trial. `lab_lifeline` is the supervisor's lifeline to the lab: if
/// the lab dies mid-trial, the trial is cleaned up and `None` is returned.
/// With `req.keep_hung`, a hang is handed to `hold` (marked `kept`) before
/// anything is killed; the tree is cleaned up when `hold` returns.
pub fn run(
    req: &TrialRequest,
    lab_lifeline: BorrowedFd<'_>,
    hold: &mut dyn FnMut(&Outcome),
) -> Option<Outcome> {
    let t0 = monotonic_ns();
    let cgroup = match &req.cgroup_parent {
        Some(parent) => {
            // A suite's members share a supervisor and a trial index: the
            // supervisor's own count of its trials keeps names apart.
            static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("trial.{}.{}.{seq}", std::process::id(), req.trial);
            match TrialCgroup::create(parent, &name) {
                Ok(cg) => Some(cg),
                Err(e) => {
                    return Some(error_outcome(
                        t0,
                        format!(
                            "cannot create the trial's cgroup under {}: {e}",
                            parent.display()
                        ),
                    ))
                }
            }
        }
        None => None,
    };
    let mut trial = Trial {
        req,
        t0,
        root_spawned_ns: t0,
        nodes: (0..req.plan.nodes.len())
            .map(|_| Tracked::default())
            .collect(),
        kills: req.plan.kills.iter().map(|_| KillState::Pending).collect(),
        gates: Vec::new(),
        ready_at: None,
        cgroup,
        adopted: Vec::new(),
        leaks: Vec::new(),
        findings: Vec::new(),
        early: None,
        panic: None,
        rung: None,
        proc_alive_after_kill: Vec::new(),
        cgroup_killed: false,
        root_exec: false,
        host_worker: None,
    };
    let result = match refusal(&req.plan, &req.strategy) {
        Some(refused) => {
            trial.panic = Some(refused);
            Some(trial.finish(Verdict::Pass, None, "none", 0, None))
        }
        None => trial.course(lab_lifeline),
    };
    let result = result.map(|mut o| {
        if req.keep_hung && o.verdict == Verdict::Hang {
            o.kept = true;
            hold(&o);
        }
        o
    });
    trial.cleanup();
    let end = monotonic_ns();
    drop(trial.cgroup.take());
    result.map(|mut o| {
        o.duration_us = (end - t0) / 1000;
        o
    })
}

/// The plan-time guard of the canonical primitive: a node that is a copy
/// (no exec) of a multithreaded parent may inherit a held lock or a global
/// without its thread (casebook 4), so clone3 refuses to make one. `Some`
/// with the reason (and this site) when `plan` asks for that under the
/// `clone3` create axis of `strategy`, whatever its guards switch: clone3
/// would refuse the copy at spawn time anyway (`EDEADLK`), and this says so
/// before anything runs. `lab run` makes every such trial a `panic`;
/// `lab check` and `lab plan` print the reason and exit with status 1.
pub fn refusal(plan: &Plan, strategy: &Strategy) -> Option<GuardPanic> {
    if strategy.create != Create::Clone3 {
        return None;
    }
    let nodes = &plan.nodes;
    nodes.iter().find_map(|n| {
        if !n.threaded() {
            return None;
        }
        let copy = n.children.iter().map(|&c| &nodes[c as usize]).find(|c| {
            !c.exec && c.command.is_none()
        })?;
        Some(GuardPanic::here(format!(
            "refused at plan time: node {} would be a copy (clone3 without exec) of node {}, which has \
             threads ({}); a copy inherits their locks and globals but not the threads. Set exec = true on {}",
            copy.path,
            n.path,
            n.knobs().join(", "),
            copy.path
        ), None))
    })
}

fn error_outcome(t0: u64, reason: String) -> Outcome {
    Outcome::error(reason, (monotonic_ns() - t0) / 1000)
}

impl Trial<'_> {
    fn plan(&self) -> &Plan {
        &self.req.plan
    }

    /// What the host (this supervisor: in a suite, the test process every
    /// member shares) does itself before the root: the plan's `[host]`
    /// action, when this trial's draw says so. Then how the root will be
    /// made: exec'd under `clone3` when the host has threads (a worker it
    /// started, now or in an earlier trial of the same supervisor), else a
    /// copy; and, for a copy, whose attendant worker it inherits without
    /// the thread.
    fn host(&mut self) {
        let plan = &self.req.plan;
        if plan.host.acts_in(plan.seed, self.req.trial) {
            crate::node::host_attend(plan.host.attendant, &plan.scenario);
        }
        self.root_exec = self.req.strategy.create == Create::Clone3
            && lifeline::thread_count().map_or(true, |n| n > 1);
        let me = std::process::id();
        self.host_worker = crate::node::host_attendant_worker()
            .filter(|(owner, _)| !self.root_exec && *owner == me);
    }

    /// Everything from spawning the root to the verdict.
    fn course(&mut self, lab_lifeline: BorrowedFd<'_>) -> Option<Outcome> {
        self.host();
        // The fds every node inherits sit at LAB_FD_FLOOR and above, where a
        // scenario's own fd numbers cannot reach them.
        let channel = phase::channel().and_then(|(s, n)| Ok((s, lifeline::move_high(n)?)));
        let (sup_end, node_end) = match channel {
            Ok(p) => p,
            Err(e) => {
                return Some(error_outcome(
                    self.t0,
                    format!("cannot create the phase channel: {e}"),
                ))
            }
        };
        let mut gate_reads = Vec::new();
        let req = self.req;
        for k in &req.plan.kills {
            if let PlanAt::Gate { child, .. } = k.at {
                let gate = pipe_with(PipeFlags::CLOEXEC)
                    .map_err(io::Error::from)
                    .and_then(|(r, w)| Ok((lifeline::move_high(r)?, w)));
                match gate {
                    Ok((r, w)) => {
                        gate_reads.push((child, r));
                        self.gates.push((child, w));
                    }
                    Err(e) => {
                        return Some(error_outcome(self.t0, format!("cannot create a gate: {e}")))
                    }
                }
            }
        }
        let boot = if self.needs_boot() {
            let gates: Vec<u32> = gate_reads.iter().map(|(n, _)| *n).collect();
            let b = Boot {
                plan: req.plan.clone(),
                strategy: req.strategy.clone(),
                gates,
            };
            match b.to_memfd().and_then(lifeline::move_high) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    return Some(error_outcome(
                        self.t0,
                        format!("cannot write the boot record: {e}"),
                    ))
                }
            }
        } else {
            None
        };
        self.root_spawned_ns = monotonic_ns();
        // Held to the end of the course: under the canonical strategy the
        // root's lifeline write end lives here, and closing it would tell the
        // root that its parent died.
        let _root = match self.spawn_root(node_end.as_fd(), &gate_reads, boot.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                return Some(error_outcome(
                    self.t0,
                    format!("cannot spawn the root: {e}"),
                ))
            }
        };
        drop(node_end);
        drop(gate_reads);
        drop(boot);
        let deadline = self.t0 + self.req.deadline_us * 1000;
        let mut stage = Stage::Course;
        let mut teardown_at = 0u64;
        let mut last_death = 0u64;
        let mut max_gap = 0u64;
        let mut slow: Option<u64> = None;
        let mut rung = "none".to_string();
        let mut reports_open = true;
        loop {
            if !reports_open {
            } else if let Err(e) = self.drain_reports(sup_end.as_fd()) {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    reports_open = false;
                    continue;
                }
                return Some(self.finish(
                    Verdict::Error,
                    Some(format!("phase channel: {e}")),
                    &rung,
                    0,
                    None,
                ));
            }
            let _ = self.reap_zombies();
            if self.panic.is_some() {
                return Some(self.finish(Verdict::Pass, None, &rung, 0, None));
            }
            let now = monotonic_ns();
            match stage {
                Stage::Course => {
                    let (settled, tree_ready) = self.course_state();
                    if tree_ready && self.ready_at.is_none() {
                        self.ready_at = Some(now);
                    }
                    self.run_kills(now);
                    if settled && self.kills.iter().all(|k| *k == KillState::Done) {
                        teardown_at = monotonic_ns();
                        last_death = teardown_at;
                        if self.nodes[0].dead_ns.is_none() || self.plan().teardown_group {
                            rung = self.send_rung(0);
                            stage = Stage::Ladder {
                                rung: 0,
                                since: teardown_at,
                            };
                        } else {
                            stage = Stage::Grace;
                        }
                        continue;
                    }
                    if now >= deadline {
                        let hung = self.alive_paths();
                        let n = self.alive_count();
                        return Some(self.finish_hang(hung, n, &rung));
                    }
                }
                Stage::Ladder { rung: r, since } => {
                    let rungs = 1 + self.plan().escalate.len();
                    let all_dead = self.alive_paths().is_empty();
                    if r + 1 >= rungs || all_dead {
                        stage = Stage::Grace;
                        continue;
                    }
                    if now >= since + self.plan().rung_wait_us * 1000 {
                        rung = self.send_rung(r + 1);
                        stage = Stage::Ladder {
                            rung: r + 1,
                            since: now,
                        };
                        continue;
                    }
                }
                Stage::Grace | Stage::Confirm { .. } => {
                    if self.empty() {
                        if let Stage::Confirm { .. } = stage {
                            slow = Some((now - teardown_at) / 1000);
                        }
                        let w = self.window_us(max_gap);
                        return Some(self.finish(Verdict::Pass, None, &rung, w, slow));
                    }
                    let w = self.window_us(max_gap);
                    if now.saturating_sub(last_death) > w * 1000 {
                        match stage {
                            Stage::Grace => {
                                stage = Stage::Confirm { since: now };
                                continue;
                            }
                            Stage::Confirm { since } if now - since > w * 1000 => {
                                if self.dying_only() {
                                    stage = Stage::Dying { since: now };
                                    continue;
                                }
                                return Some(self.finish_orphans(&rung, w));
                            }
                            _ => {}
                        }
                    }
                }
                Stage::Dying { since } => {
                    let w = self.window_us(max_gap);
                    if self.empty() {
                        slow = Some((now - teardown_at) / 1000);
                        return Some(self.finish(Verdict::Pass, None, &rung, w, slow));
                    }
                    if now - since > DYING_BOUND_US * 1000 {
                        return Some(self.finish_undying(&rung, (now - teardown_at) / 1000));
                    }
                }
            }
            // Wait for the next event: a report, a death, the cgroup emptying,
            // the lab's death, or the next timer.
            let timeout_ns = self.next_timeout(&stage, deadline, last_death, max_gap, now);
            let live: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].dead_ns.is_none() && self.nodes[i].pidfd.is_some())
                .collect();
            let mut fds = Vec::with_capacity(live.len() + 3);
            fds.push(PollFd::new(
                &sup_end,
                if reports_open {
                    PollFlags::IN
                } else {
                    PollFlags::empty()
                },
            ));
            fds.push(PollFd::new(&lab_lifeline, PollFlags::empty()));
            for &i in &live {
                fds.push(PollFd::new(
                    self.nodes[i].pidfd.as_ref().unwrap(),
                    PollFlags::IN,
                ));
            }
            let cg_events = self.cgroup.as_ref().map(|c| c.events_fd());
            if let Some(ev) = &cg_events {
                fds.push(PollFd::new(ev, PollFlags::PRI));
            }
            let ts = rustix::time::Timespec {
                tv_sec: (timeout_ns / 1_000_000_000) as i64,
                tv_nsec: (timeout_ns % 1_000_000_000) as i64,
            };
            match poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Some(self.finish(
                        Verdict::Error,
                        Some(format!("poll: {e}")),
                        &rung,
                        0,
                        None,
                    ))
                }
            }
            if !fds[1].revents().is_empty() {
                return None; // the lab is gone: clean up and stop
            }
            let cgroup_event = cg_events.is_some() && !fds[fds.len() - 1].revents().is_empty();
            let died: Vec<usize> = live
                .iter()
                .enumerate()
                .filter(|(k, _)| !fds[k + 2].revents().is_empty())
                .map(|(_, &i)| i)
                .collect();
            drop(fds);
            if cgroup_event {
                // Reading cgroup.events re-arms its POLLPRI.
                let _ = self.cgroup.as_ref().map(|c| c.populated());
            }
            // A node's last reports are queued before its exit: read them
            // before judging its death.
            if reports_open && self.drain_reports(sup_end.as_fd()).is_err() {
                reports_open = false;
            }
            let now = monotonic_ns();
            for i in died {
                self.nodes[i].dead_ns = Some(now);
                if matches!(stage, Stage::Course) {
                    self.check_early_death(i);
                } else {
                    self.nodes[i].rung = Some(rung.clone());
                    max_gap = max_gap.max((now - last_death) / 1000);
                    last_death = now;
                }
            }
        }
    }

    /// Whether any node is exec'd as the lab's node program.
    fn needs_boot(&self) -> bool {
        let create = self.req.strategy.create;
        self.root_exec
            || self
                .plan()
                .nodes
                .iter()
                .any(|n| n.parent.is_some() && n.command.is_none() && create.execs(n.exec))
    }

    fn spawn_root(
        &self,
        node_end: BorrowedFd<'_>,
        gate_reads: &[(u32, OwnedFd)],
        boot: Option<&OwnedFd>,
    ) -> io::Result<ChildHandle> {
        let ctx = NodeCtx {
            plan: self.plan(),
            strategy: &self.req.strategy,
            report: node_end,
            gates: gate_reads.iter().map(|(n, fd)| (*n, fd.as_fd())).collect(),
            boot: boot.map(|b| b.as_fd()),
        };
        // Everything the root is handed sits at the lab's fd floor or above
        // (moved there when made), and so does the read end of a legacy
        // lifeline: a forked root drops only what lies below the floor.
        let handed: Vec<RawFd> = std::iter::once(node_end.as_raw_fd())
            .chain(gate_reads.iter().map(|(_, fd)| fd.as_raw_fd()))
            .chain(boot.map(|b| b.as_raw_fd()))
            .collect();
        debug_assert!(
            handed.iter().all(|&fd| fd >= lifeline::LAB_FD_FLOOR),
            "{handed:?}"
        );
        let procs = self.cgroup.as_ref().map(|c| c.procs_fd());
        // A forked root joins the trial's cgroup itself and drops the
        // supervisor's own fds (lab plumbing, not part of the experiment); a
        // cloned root starts in the cgroup and keeps only what it is given.
        let before = || {
            if let Some(p) = procs {
                let _ = rustix::io::write(p, b"0");
            }
            // The root leads the tree's process group (what a group
            // teardown signals on the legacy side).
            let _ = rustix::process::setpgid(None, None);
            if self.req.strategy.create != Create::Clone3 {
                legacy::close_plumbing();
            }
        };
        let cgroup = self.cgroup.as_ref().map(|c| c.dir());
        if self.root_exec {
            return ctx.exec_root(cgroup);
        }
        ctx.spawn(0, cgroup, &before, None)
    }

    fn drain_reports(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        while let Some(got) = phase::try_recv(fd)? {
            let rec = got.record;
            let Some(n) = self.nodes.get_mut(rec.node as usize) else {
                continue;
            };
            match rec.event {
                Event::Created => {
                    n.pid = rec.pid;
                    n.created_ns = Some(rec.time_ns);
                    n.pidfd = got.pidfd;
                    n.at_gate = (self.req.plan.nodes[rec.node as usize].gate
                        == Some(Phase::Created))
                    .then_some(Phase::Created);
                }
                Event::Armed => {
                    n.armed_ns = Some(rec.time_ns);
                    n.at_gate = (self.req.plan.nodes[rec.node as usize].gate == Some(Phase::Armed))
                        .then_some(Phase::Armed);
                }
                Event::Ready => n.ready = true,
                Event::Failed if rec.value == libc::EDEADLK as i64 => {
                    // The node's guards were off (with them on, the node
                    // panics where clone3 refused): the refusal is still
                    // the primitive's, and a panic.
                    let path = &self.req.plan.nodes[rec.node as usize].path;
                    self.panic.get_or_insert(GuardPanic::here(format!(
                        "refused at spawn time: node {path} is multithreaded and asked clone3 for a copy \
                         of itself (no exec); a copy would inherit locks and globals without their threads"
                    ), None));
                }
                Event::Failed => n.failed = Some(rec.value),
                Event::Exiting | Event::ParentGone => n.ended_itself = true,
                Event::Leak => self.leak(rec.node, rec.value),
                Event::Finding => self.findings.extend(Finding::from_value(rec.value)),
                Event::Panic => {
                    // It exits at once: its death is its own, the panic says why.
                    n.ended_itself = true;
                    if let Some(p) = got.panic {
                        self.panic.get_or_insert(p);
                    }
                }
            }
        }
        Ok(())
    }

    /// Name the holders of a leaked pipe, from the fd tables of the trial's
    /// processes.
    fn leak(&mut self, reader: u32, value: i64) {
        let inode = (value & ((1i64 << LEAK_INODE_BITS) - 1)) as u64;
        let child = (value >> LEAK_INODE_BITS) as usize;
        let pids = self.trial_pids();
        let holders: Vec<String> = forensics::pipe_holders(inode, &pids)
            .into_iter()
            .filter(|(_, f)| f.mode.contains('w'))
            .map(|(pid, f)| {
                let who = self
                    .nodes
                    .iter()
                    .position(|n| n.pid == pid)
                    .map_or("outside the plan".to_string(), |i| {
                        format!("node {}", self.plan().nodes[i].path)
                    });
                format!("pid {pid} fd {} (write), {who}", f.fd)
            })
            .collect();
        let nodes = &self.plan().nodes;
        self.leaks.push(format!(
            "node {} read the stdout of node {} (pipe:[{inode}]); after the child was reaped a writer still held it: {}",
            nodes[reader as usize].path,
            nodes.get(child).map_or("?", |n| n.path.as_str()),
            if holders.is_empty() {
                "gone by the time it was looked up".to_string()
            } else {
                holders.join("; ")
            }
        ));
    }

    fn reap_zombies(&self) -> io::Result<()> {
        while let Reaped::One(_) = lifeline::reap_any(false)? {}
        Ok(())
    }

    /// `(settled, tree_ready)`: settled when every node is dead, lingering
    /// after `ready`, or will never be born (its parent died before it was
    /// spawned); the tree is ready when every node is ready, dead or unborn.
    fn course_state(&self) -> (bool, bool) {
        let plan = self.plan();
        let mut settled = vec![false; self.nodes.len()];
        let mut ready = vec![false; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let dead = n.dead_ns.is_some();
            if n.created_ns.is_some() {
                settled[i] = dead || (n.ready && plan.nodes[i].linger);
                ready[i] = dead || n.ready;
            } else if let Some(p) = plan.nodes[i].parent {
                let p = p as usize;
                let pn = &self.nodes[p];
                let unborn =
                    settled[p] && !pn.ready && (pn.dead_ns.is_some() || pn.created_ns.is_none());
                settled[i] = unborn;
                ready[i] = unborn;
            }
        }
        (settled.iter().all(|&s| s), ready.iter().all(|&r| r))
    }

    fn run_kills(&mut self, now: u64) {
        for k in 0..self.kills.len() {
            let pk = self.plan().kills[k];
            let target = pk.target as usize;
            match self.kills[k] {
                KillState::Pending => {
                    let due = match pk.at {
                        PlanAt::Ready => self.ready_at.is_some(),
                        PlanAt::Gate { child, phase } => {
                            self.nodes[child as usize].at_gate == Some(phase)
                                && (self.nodes[target].ready
                                    || self.nodes[target].dead_ns.is_some())
                        }
                        PlanAt::Delay { after_ready_us } => self
                            .ready_at
                            .is_some_and(|r| now >= r + after_ready_us * 1000),
                    };
                    if due {
                        self.signal(target, pk.signal);
                        self.kills[k] = KillState::Sent;
                    }
                }
                KillState::Sent => {
                    let gone = match self.req.strategy.observe {
                        Observe::Pidfd => {
                            self.nodes[target].dead_ns.is_some()
                                || self.nodes[target]
                                    .pidfd
                                    .as_ref()
                                    .is_none_or(|p| p.has_exited())
                        }
                        Observe::Pid => !legacy::proc_alive(self.nodes[target].pid),
                    };
                    if gone || pk.signal != Sig::Kill {
                        if let PlanAt::Gate { child, .. } = pk.at {
                            self.release(child);
                        }
                        self.kills[k] = KillState::Done;
                    }
                }
                KillState::Done => {}
            }
        }
    }

    fn release(&mut self, child: u32) {
        if let Some((_, w)) = self.gates.iter().find(|(n, _)| *n == child) {
            let _ = rustix::io::write(w, &[1]);
        }
        self.nodes[child as usize].at_gate = None;
    }

    /// Send `sig` to node `i` the strategy's way: through its pidfd, or by
    /// PID. The legacy oracle then reads `/proc/PID/stat` at once, as a
    /// harness that judges by `/proc` would.
    fn signal(&mut self, i: usize, sig: Sig) {
        let n = &mut self.nodes[i];
        n.signalled = true;
        n.killed |= sig == Sig::Kill;
        match self.req.strategy.observe {
            Observe::Pidfd => {
                if let Some(p) = &n.pidfd {
                    let _ = p.send_signal(sig.signal());
                }
            }
            Observe::Pid if n.pid > 0 => {
                let _ = legacy::kill_pid(n.pid, sig.signal());
                if sig == Sig::Kill && legacy::proc_alive(n.pid) {
                    self.proc_alive_after_kill.push(i);
                }
            }
            Observe::Pid => {}
        }
    }

    /// Send rung `r` of the teardown ladder: to the root, or to the whole
    /// tree (legacy: its process group; canonical: `cgroup.kill` for SIGKILL
    /// where there is a cgroup, else every pidfd held). Returns its label.
    fn send_rung(&mut self, r: usize) -> String {
        let plan = self.plan();
        let sig = if r == 0 {
            plan.teardown
        } else {
            plan.escalate[r - 1]
        };
        let label = if !plan.teardown_group {
            self.signal(0, sig);
            format!("teardown-{}", sig.name())
        } else {
            for n in self.nodes.iter_mut() {
                n.signalled = true;
            }
            match self.req.strategy.observe {
                Observe::Pid => {
                    let _ = legacy::kill_group(self.nodes[0].pid, sig.signal());
                    format!("group-{}", sig.name())
                }
                Observe::Pidfd if sig == Sig::Kill && self.cgroup.is_some() => {
                    let _ = self.cgroup.as_ref().map(|c| c.kill());
                    self.cgroup_killed = true;
                    "cgroup.kill".to_string()
                }
                Observe::Pidfd => {
                    self.adopt();
                    let all = self.nodes.iter().filter_map(|n| n.pidfd.as_ref());
                    for p in all.chain(self.adopted.iter()) {
                        let _ = p.send_signal(sig.signal());
                    }
                    if sig == Sig::Kill {
                        self.nodes.iter_mut().for_each(|n| n.killed = true);
                    }
                    format!("pidfds-{}", sig.name())
                }
            }
        };
        self.rung = Some(label.clone());
        label
    }

    /// A node died during the course: unplanned unless it ended by itself,
    /// was signalled, is a command node, or its parent is already dead.
    fn check_early_death(&mut self, i: usize) {
        let plan = self.plan();
        let n = &self.nodes[i];
        if self.early.is_some() || n.ended_itself || n.signalled || plan.nodes[i].command.is_some()
        {
            return;
        }
        let parent_alive = match plan.nodes[i].parent {
            None => true,
            Some(p) => {
                let pn = &self.nodes[p as usize];
                pn.dead_ns.is_none() && pn.pidfd.as_ref().is_some_and(|f| !f.has_exited())
            }
        };
        if parent_alive {
            let parent = plan.nodes[i]
                .parent
                .map_or("the supervisor".to_string(), |p| {
                    format!("node {}", plan.nodes[p as usize].path)
                });
            self.early = Some(format!(
                "node {} died during the course while its parent ({parent}) was alive, \
                 without exiting by itself and without a signal from the plan",
                plan.nodes[i].path
            ));
        }
    }

    /// Whether nothing of the trial is alive: the cgroup is empty, or (without
    /// one) every node's pidfd and every adopted orphan's pidfd reports exit.
    fn empty(&mut self) -> bool {
        if self
            .nodes
            .iter()
            .any(|n| n.pidfd.is_some() && n.dead_ns.is_none())
        {
            return false;
        }
        if let Some(cg) = &self.cgroup {
            return !cg.populated().unwrap_or(true);
        }
        self.adopt();
        self.adopted.iter().all(|p| p.has_exited())
    }

    /// Pidfds on orphans that reparented to the supervisor but never reported
    /// (a node's own children outside the plan).
    fn adopt(&mut self) {
        let known: Vec<i32> = self.nodes.iter().map(|n| n.pid).collect();
        if let Ok(kids) = lifeline::adopt_children() {
            for k in kids {
                if !known.contains(&k.pid()) && !self.adopted.iter().any(|a| a.pid() == k.pid()) {
                    self.adopted.push(k);
                }
            }
        }
    }

    /// The cascade window (µs): four times the largest measured latency (the
    /// gap between successive deaths in the cascade, or a spawn hop of this
    /// trial: from a parent's `armed` report, after which it spawns, to its
    /// child's `created`), at least [`WINDOW_FLOOR_US`].
    fn window_us(&self, max_gap_us: u64) -> u64 {
        let plan = self.plan();
        let hop = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let from = match plan.nodes[i].parent {
                    Some(p) => self.nodes[p as usize].armed_ns?,
                    None => self.root_spawned_ns,
                };
                Some(n.created_ns?.saturating_sub(from) / 1000)
            })
            .max()
            .unwrap_or(0);
        (4 * hop.max(max_gap_us)).clamp(WINDOW_FLOOR_US, WINDOW_CEILING_US)
    }

    fn next_timeout(
        &self,
        stage: &Stage,
        deadline: u64,
        last_death: u64,
        max_gap: u64,
        now: u64,
    ) -> u64 {
        let mut t = match stage {
            Stage::Course => deadline.saturating_sub(now),
            Stage::Ladder { since, .. } => {
                (since + self.plan().rung_wait_us * 1000).saturating_sub(now)
            }
            Stage::Grace => (last_death + self.window_us(max_gap) * 1000).saturating_sub(now),
            Stage::Confirm { since } => {
                let w = self.window_us(max_gap) * 1000;
                (since + w).max(last_death + w).saturating_sub(now)
            }
            Stage::Dying { since } => (since + DYING_BOUND_US * 1000).saturating_sub(now),
        };
        let awaiting_proc =
            self.req.strategy.observe == Observe::Pid && self.kills.contains(&KillState::Sent);
        let awaiting_delay = self.plan().kills.iter().zip(&self.kills).any(|(k, s)| {
            *s == KillState::Pending
                && matches!(k.at, PlanAt::Delay { .. })
                && self.ready_at.is_some()
        });
        if awaiting_proc {
            t = t.min(PROC_POLL_US * 1000);
        }
        if awaiting_delay {
            let next = self
                .plan()
                .kills
                .iter()
                .filter_map(|k| match k.at {
                    PlanAt::Delay { after_ready_us } => {
                        self.ready_at.map(|r| r + after_ready_us * 1000)
                    }
                    _ => None,
                })
                .filter(|&d| d > now)
                .min();
            if let Some(d) = next {
                t = t.min(d - now);
            }
        }
        if self.cgroup.is_none() && !matches!(stage, Stage::Course) {
            // Without a cgroup, orphans outside the plan are only found by
            // listing children; look again at least every window floor.
            t = t.min(WINDOW_FLOOR_US * 1000);
        }
        t.max(1)
    }

    fn alive_paths(&self) -> Vec<String> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.pidfd.is_some() && n.dead_ns.is_none())
            .map(|(i, _)| self.plan().nodes[i].path.clone())
            .collect()
    }

    /// Live processes of the trial: the cgroup's members, or live nodes plus
    /// adopted orphans outside the plan.
    fn alive_count(&mut self) -> u32 {
        let nodes = self.alive_paths().len();
        if let Some(cg) = &self.cgroup {
            // Nodes are judged by their pidfds; the member list adds the
            // processes outside the plan (a node's own helpers, daemons).
            let known: Vec<i32> = self
                .nodes
                .iter()
                .filter(|n| n.created_ns.is_some())
                .map(|n| n.pid)
                .collect();
            let others = cg
                .members()
                .map_or(0, |m| m.iter().filter(|p| !known.contains(p)).count());
            return (nodes + others) as u32;
        }
        self.adopt();
        (nodes + self.adopted.iter().filter(|p| !p.has_exited()).count()) as u32
    }

    fn finish(
        &self,
        verdict: Verdict,
        reason: Option<String>,
        rung: &str,
        window_us: u64,
        slow: Option<u64>,
    ) -> Outcome {
        let failed = self.nodes.iter().enumerate().find_map(|(i, n)| {
            n.failed.map(|e| {
                format!(
                    "node {} could not spawn a child: {}",
                    self.plan().nodes[i].path,
                    io::Error::from_raw_os_error(e as i32)
                )
            })
        });
        let finding_error = self.findings.iter().find_map(|f| match f {
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
        let innocent = self.findings.contains(&Finding::InnocentKill).then(|| {
            "a signal sent by PID to a reaped process killed the bystander that was given its PID"
                .to_string()
        });
        // The most telling verdict wins: the lab's own failure, a guard's
        // refusal, a hang, then the harms, then what the cascade left.
        let (verdict, reason) = if let Some(f) = failed.or(finding_error) {
            (Verdict::Error, Some(f))
        } else if verdict == Verdict::Error {
            (verdict, reason)
        } else if let Some(p) = &self.panic {
            (Verdict::Panic, Some(p.reason.clone()))
        } else if verdict == Verdict::Hang {
            (verdict, reason)
        } else if let Some(i) = innocent {
            (Verdict::InnocentKill, Some(i))
        } else if let Some(e) = &self.early {
            (Verdict::EarlyDeath, Some(e.clone()))
        } else if !self.leaks.is_empty() {
            (Verdict::Leak, Some(self.leaks.join("\n")))
        } else {
            (verdict, reason)
        };
        let plan = self.plan();
        let node_rungs = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.rung
                    .as_ref()
                    .map(|r| format!("{}={r}", plan.nodes[i].path))
            })
            .collect();
        let false_orphans = self
            .proc_alive_after_kill
            .iter()
            .filter(|&&i| {
                let n = &self.nodes[i];
                n.dead_ns.is_some() || n.pidfd.as_ref().is_some_and(|p| p.has_exited())
            })
            .count() as u32;
        Outcome {
            verdict,
            orphans: 0,
            hung: 0,
            time_to_verdict_us: (monotonic_ns() - self.t0) / 1000,
            duration_us: 0,
            slow_cascade_us: slow,
            window_us,
            kill_rung: rung.to_string(),
            nodes_spawned: self.nodes.iter().filter(|n| n.created_ns.is_some()).count() as u32,
            cgroup: self.cgroup.is_some(),
            survivors: Vec::new(),
            reason,
            node_rungs,
            false_orphans,
            panic_site: self
                .panic
                .as_ref()
                .filter(|_| verdict == Verdict::Panic)
                .map(|p| p.site.clone()),
            signatures: self
                .panic
                .as_ref()
                .filter(|_| verdict == Verdict::Panic)
                .and_then(|p| p.signature.clone())
                .into_iter()
                .collect(),
            diagnosis: None,
            kept: false,
        }
    }

    fn finish_hang(&mut self, hung_paths: Vec<String>, hung: u32, rung: &str) -> Outcome {
        let plan = self.plan();
        let stuck: Vec<String> = self
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
            "the course did not finish within the deadline ({} ms); {}; {hung} processes alive",
            self.req.deadline_us / 1000,
            if stuck.is_empty() {
                "every live node had reported ready (a parent blocked waiting for its children)"
                    .to_string()
            } else {
                format!("not ready: {}", stuck.join(", "))
            }
        );
        let uses = plan
            .nodes
            .iter()
            .any(|n| n.attendant == AttendantAction::Use);
        if let (Some((pid, by)), true) = (&self.host_worker, uses) {
            let _ = write!(
                reason,
                "; the host (pid {pid}) runs an attendant worker started by {by}, and the root is \
                 a copy of the host (no exec): it inherited the attendant initialised but not \
                 its worker"
            );
        }
        let mut o = self.finish(Verdict::Hang, Some(reason), rung, 0, None);
        if o.verdict == Verdict::Hang {
            o.hung = hung;
            o.survivors = hung_paths;
            o.kill_rung = "cleanup".into();
            self.diagnose(&mut o);
        }
        o
    }

    /// The processes of the trial, for diagnosis (never for a verdict): the
    /// cgroup's members, or without one every descendant of the supervisor
    /// (its subreaper), plus every live node the list may have missed.
    fn trial_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = match &self.cgroup {
            Some(cg) => cg.members().unwrap_or_default(),
            None => forensics::descendants(std::process::id() as i32),
        };
        pids.extend(
            self.nodes
                .iter()
                .filter(|n| n.created_ns.is_some() && n.dead_ns.is_none())
                .map(|n| n.pid),
        );
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Let the failure speak: read the stuck state of every live process of
    /// the trial before anything is killed, and name its signatures.
    fn diagnose(&mut self, o: &mut Outcome) {
        let pids = self.trial_pids();
        // Every node that was born names its pid (a dead one may linger as
        // an unreaped zombie).
        let nodes: Vec<(i32, String)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.created_ns.is_some())
            .map(|(i, n)| (n.pid, self.plan().nodes[i].path.clone()))
            .collect();
        let req = self.req;
        let subject = forensics::Subject {
            verdict: o.verdict.name().into(),
            scenario: req.plan.scenario.clone(),
            seed: req.plan.seed,
            strategy: req.strategy.name.clone(),
            trial: req.trial,
            deadline_ms: req.deadline_us / 1000,
        };
        let d = forensics::capture(subject, &pids, &nodes, req.gdb);
        for name in d.signature_names() {
            if !o.signatures.contains(&name) {
                o.signatures.push(name);
            }
        }
        o.diagnosis = Some(d);
    }

    /// Whether everything still alive was SIGKILLed by the supervisor (so
    /// it is dying, not orphaned): after `cgroup.kill`, or when every live
    /// process is a node sent SIGKILL and none lives outside the plan.
    fn dying_only(&mut self) -> bool {
        if self.cgroup_killed {
            return true;
        }
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.dead_ns.is_none() && n.pidfd.as_ref().is_some_and(|p| !p.has_exited())
            })
            .collect();
        live.iter().all(|&i| self.nodes[i].killed) && self.alive_count() as usize == live.len()
    }

    /// Processes the supervisor SIGKILLed outlived [`DYING_BOUND_US`]: a
    /// `hang` (an uninterruptible sleep, say), diagnosed before the cleanup.
    fn finish_undying(&mut self, rung: &str, since_teardown_ms: u64) -> Outcome {
        let paths = self.alive_paths();
        let n = self.alive_count();
        let reason = format!(
            "SIGKILLed by the supervisor and still alive {since_teardown_ms} ms after the teardown \
             ({rung}): {}; a process that does not die of SIGKILL sleeps uninterruptibly (state D)",
            if paths.is_empty() {
                "processes outside the plan".to_string()
            } else {
                format!("nodes {}", paths.join(" "))
            }
        );
        let mut o = self.finish(Verdict::Hang, Some(reason), rung, 0, None);
        if o.verdict == Verdict::Hang {
            o.hung = n;
            o.survivors = paths;
            self.diagnose(&mut o);
        }
        o
    }

    fn finish_orphans(&mut self, rung: &str, window_us: u64) -> Outcome {
        let n = self.alive_count();
        let paths = self.alive_paths();
        let outside = n as usize - paths.len();
        // The window's length is in its own column: a reason that varies
        // with it would not group in the summary.
        let reason = format!(
            "alive after the teardown ({rung}) and both cascade windows: {}{}",
            if paths.is_empty() {
                "no node".to_string()
            } else {
                format!("nodes {}", paths.join(" "))
            },
            if outside > 0 {
                format!(" and {outside} processes outside the plan")
            } else {
                String::new()
            }
        );
        let mut o = self.finish(Verdict::Orphan, Some(reason), rung, window_us, None);
        if o.verdict == Verdict::Orphan {
            o.orphans = n;
            o.survivors = paths;
            self.diagnose(&mut o);
        }
        o
    }

    /// End every process of the trial and reap it: `cgroup.kill`, SIGKILL
    /// through every pidfd, then adopt and kill orphans as they reparent,
    /// reaping until the supervisor has no child left.
    fn cleanup(&mut self) {
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill();
        }
        for n in &self.nodes {
            if let Some(p) = &n.pidfd {
                let _ = p.send_signal(rustix::process::Signal::KILL);
            }
        }
        for p in self.adopted.drain(..) {
            let _ = p.send_signal(rustix::process::Signal::KILL);
        }
        loop {
            if let Ok(kids) = lifeline::adopt_children() {
                for k in kids {
                    let _ = k.send_signal(rustix::process::Signal::KILL);
                }
            }
            match lifeline::reap_any(true) {
                Ok(Reaped::One(_)) | Ok(Reaped::NoneReady) => continue,
                Ok(Reaped::NoChildren) | Err(_) => break,
            }
        }
        // Close the gates last: a node still held there saw SIGKILL first.
        self.gates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, BUILTIN};

    fn refusal_of(name: &str, strategy: &str) -> Option<GuardPanic> {
        let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
        let scenario = Scenario::parse(name, text).unwrap();
        refusal(
            &Plan::new(&scenario, 1),
            &Strategy::parse(strategy).unwrap(),
        )
    }

    #[test]
    fn a_copy_of_a_threaded_node_is_refused_only_under_clone3() {
        let refused = refusal_of("mt-fork-attendant", "canonical").unwrap();
        let r = refused.reason;
        assert!(
            r.contains("node 0 would be a copy") && r.contains("exec = true"),
            "{r}"
        );
        assert!(
            refused.site.starts_with("lab/src/trial.rs:"),
            "{}",
            refused.site
        );
        assert_eq!(refusal_of("mt-fork-attendant", "legacy"), None);
        // The primitive refuses whatever the guards switch says.
        let unguarded = "create=clone3,death=lifeline,observe=pidfd,guards=off";
        assert!(refusal_of("mt-fork-attendant", unguarded).is_some());
        // Its children exec: nothing to refuse.
        assert_eq!(refusal_of("mt-fork-mutex", "canonical"), None);
        assert_eq!(refusal_of("pdeathsig-thread", "canonical"), None);
        assert_eq!(refusal_of("nested", "canonical"), None);
    }
}
