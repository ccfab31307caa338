//! One trial, as the supervisor runs it: set up the report channel, the gates
//! and the trial's cgroup, spawn the root the strategy's way, follow the
//! course (phase reports, pidfd exits, the kill schedule), tear down, judge
//! the cascade with two windows, and end with nothing of the trial alive.
//!
//! Every verdict comes from pidfds, `waitid` and the cgroup files. `/proc` is
//! read only by the legacy observe axis, whose defects the lab measures.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use serde::{Deserialize, Serialize};

use crate::cgroup::TrialCgroup;
use crate::node::{ChildHandle, NodeCtx};
use crate::plan::{Plan, PlanAt};
use crate::report::{self, Event};
use crate::scenario::{Phase, Sig};
use crate::strategy::{Observe, Strategy};
use crate::sys::{self, legacy, monotonic_ns, Pidfd, Reaped};
use crate::verdict::{Outcome, Verdict};

/// Shortest cascade window (µs), before measured latencies widen it.
const WINDOW_FLOOR_US: u64 = 2_000;
/// Longest cascade window (µs).
const WINDOW_CEILING_US: u64 = 1_000_000;
/// How often the legacy observe axis re-reads `/proc/PID/stat` (µs).
const PROC_POLL_US: u64 = 100;

/// What the lab asks a supervisor to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRequest {
    /// The plan.
    pub plan: Plan,
    /// The strategy.
    pub strategy: Strategy,
    /// Trial index within the run (names the cgroup).
    pub trial: u64,
    /// Deadline of the planned course (µs from the trial's start).
    pub deadline_us: u64,
    /// Parent directory for the trial's cgroup; `None`: subreaper alone.
    pub cgroup_parent: Option<PathBuf>,
}

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
}

#[derive(Debug, PartialEq)]
enum KillState {
    Pending,
    Sent,
    Done,
}

enum Stage {
    Course,
    Grace,
    Confirm { since: u64 },
}

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
}

/// Run one trial. `lab_lifeline` is the supervisor's lifeline to the lab: if
/// the lab dies mid-trial, the trial is cleaned up and `None` is returned.
pub fn run(req: &TrialRequest, lab_lifeline: BorrowedFd<'_>) -> Option<Outcome> {
    let t0 = monotonic_ns();
    let cgroup = match &req.cgroup_parent {
        Some(parent) => {
            let name = format!("trial.{}.{}", std::process::id(), req.trial);
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
    };
    let result = trial.course(lab_lifeline);
    trial.cleanup();
    let end = monotonic_ns();
    drop(trial.cgroup.take());
    result.map(|mut o| {
        o.duration_us = (end - t0) / 1000;
        o
    })
}

fn error_outcome(t0: u64, reason: String) -> Outcome {
    Outcome::error(reason, (monotonic_ns() - t0) / 1000)
}

impl Trial<'_> {
    fn plan(&self) -> &Plan {
        &self.req.plan
    }

    /// Everything from spawning the root to the verdict.
    fn course(&mut self, lab_lifeline: BorrowedFd<'_>) -> Option<Outcome> {
        let (sup_end, node_end) = match report::channel() {
            Ok(p) => p,
            Err(e) => {
                return Some(error_outcome(
                    self.t0,
                    format!("cannot create the report channel: {e}"),
                ))
            }
        };
        let mut gate_reads = Vec::new();
        let req = self.req;
        for k in &req.plan.kills {
            if let PlanAt::Gate { child, .. } = k.at {
                match pipe_with(PipeFlags::CLOEXEC) {
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
        self.root_spawned_ns = monotonic_ns();
        // Held to the end of the course: under the canonical strategy the
        // root's lifeline write end lives here, and closing it would tell the
        // root that its parent died.
        let _root = match self.spawn_root(node_end.as_fd(), &gate_reads) {
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
                    Some(format!("report channel: {e}")),
                    &rung,
                    0,
                    None,
                ));
            }
            let _ = self.reap_zombies();
            let now = monotonic_ns();
            match stage {
                Stage::Course => {
                    let (settled, tree_ready) = self.course_state();
                    if tree_ready && self.ready_at.is_none() {
                        self.ready_at = Some(now);
                    }
                    self.run_kills(now);
                    if settled && self.kills.iter().all(|k| *k == KillState::Done) {
                        if self.nodes[0].dead_ns.is_none() {
                            self.signal(0, self.plan().teardown);
                            rung = format!("teardown-{}", self.plan().teardown.name());
                        }
                        teardown_at = monotonic_ns();
                        last_death = teardown_at;
                        stage = Stage::Grace;
                        continue;
                    }
                    if now >= deadline {
                        let hung = self.alive_paths();
                        let n = self.alive_count();
                        return Some(self.finish_hang(hung, n, &rung));
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
                                return Some(self.finish_orphans(&rung, w));
                            }
                            _ => {}
                        }
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
            let now = monotonic_ns();
            for i in died {
                self.nodes[i].dead_ns = Some(now);
                if !matches!(stage, Stage::Course) {
                    max_gap = max_gap.max((now - last_death) / 1000);
                    last_death = now;
                }
            }
        }
    }

    fn spawn_root(
        &self,
        node_end: BorrowedFd<'_>,
        gate_reads: &[(u32, OwnedFd)],
    ) -> io::Result<ChildHandle> {
        let ctx = NodeCtx {
            plan: self.plan(),
            strategy: &self.req.strategy,
            report: node_end,
            gates: gate_reads.iter().map(|(n, fd)| (*n, fd.as_fd())).collect(),
        };
        let mut keep: Vec<RawFd> = vec![0, 1, 2, node_end.as_raw_fd()];
        keep.extend(gate_reads.iter().map(|(_, fd)| fd.as_raw_fd()));
        keep.sort_unstable();
        let procs = self.cgroup.as_ref().map(|c| c.procs_fd());
        // A forked root joins the trial's cgroup itself and drops the
        // supervisor's own fds (lab plumbing, not part of the experiment); a
        // cloned root starts in the cgroup and keeps only what it is given.
        let before = || {
            if let Some(p) = procs {
                let _ = rustix::io::write(p, b"0");
            }
            if self.req.strategy.create == crate::strategy::Create::Fork {
                legacy::close_all_except(&keep);
            }
        };
        ctx.spawn(0, self.cgroup.as_ref().map(|c| c.dir()), &before)
    }

    fn drain_reports(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        while let Some((rec, pidfd)) = report::try_recv(fd)? {
            let Some(n) = self.nodes.get_mut(rec.node as usize) else {
                continue;
            };
            match rec.event {
                Event::Created => {
                    n.pid = rec.pid;
                    n.created_ns = Some(rec.time_ns);
                    n.pidfd = pidfd;
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
                Event::Failed => n.failed = Some(rec.value),
                Event::Exiting | Event::ParentGone => {}
            }
        }
        Ok(())
    }

    fn reap_zombies(&self) -> io::Result<()> {
        while let Reaped::One(_) = sys::reap_any(false)? {}
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

    /// Send `sig` to node `i` the strategy's way: through its pidfd, or by PID.
    fn signal(&self, i: usize, sig: Sig) {
        let n = &self.nodes[i];
        match self.req.strategy.observe {
            Observe::Pidfd => {
                if let Some(p) = &n.pidfd {
                    let _ = p.send_signal(sig.signal());
                }
            }
            Observe::Pid if n.pid > 0 => {
                let _ = legacy::kill_pid(n.pid, sig.signal());
            }
            Observe::Pid => {}
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
        if let Ok(kids) = sys::adopt_children() {
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
            Stage::Grace => (last_death + self.window_us(max_gap) * 1000).saturating_sub(now),
            Stage::Confirm { since } => {
                let w = self.window_us(max_gap) * 1000;
                (since + w).max(last_death + w).saturating_sub(now)
            }
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
        let (verdict, reason) = match (verdict, failed) {
            (Verdict::Pass | Verdict::Orphan | Verdict::Hang, Some(f)) => (Verdict::Error, Some(f)),
            (v, _) => (v, reason),
        };
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
        }
    }

    fn finish_hang(&self, hung_paths: Vec<String>, hung: u32, rung: &str) -> Outcome {
        let mut o = self.finish(Verdict::Hang, None, rung, 0, None);
        if o.verdict == Verdict::Hang {
            o.hung = hung;
            o.survivors = hung_paths;
            o.kill_rung = "cleanup".into();
        }
        o
    }

    fn finish_orphans(&mut self, rung: &str, window_us: u64) -> Outcome {
        let n = self.alive_count();
        let paths = self.alive_paths();
        let mut o = self.finish(Verdict::Orphan, None, rung, window_us, None);
        if o.verdict == Verdict::Orphan {
            o.orphans = n;
            o.survivors = paths;
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
            if let Ok(kids) = sys::adopt_children() {
                for k in kids {
                    let _ = k.send_signal(rustix::process::Signal::KILL);
                }
            }
            match sys::reap_any(true) {
                Ok(Reaped::One(_)) | Ok(Reaped::NoneReady) => continue,
                Ok(Reaped::NoChildren) | Err(_) => break,
            }
        }
        // Close the gates last: a node still held there saw SIGKILL first.
        self.gates.clear();
    }
}
