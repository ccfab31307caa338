//! Following the plan: the main poll loop of a trial. It reads phase
//! reports and pidfd exits into the observation, runs the kill schedule
//! (opening gates once a kill is done), starts the teardown once the course
//! has settled, and asks the judge what the cascade came to.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::event::{poll, PollFd, PollFlags};

use super::judge::{self, Clock, Ending, OrphanBy, Stage, Step, WINDOW_FLOOR_US};
use super::settle::{Deaths, Settled};
use super::{error_outcome, Course, KillState};
use crate::node::pid_reuse::Finding;
use crate::phase::{self, Event};
use crate::plan::PlanAt;
use crate::scenario::Phase;
use crate::signal::Sig;
use crate::strategy::Observe;
use crate::verdict::Rung;
use crate::verdict::{GuardPanic, Outcome, Verdict};
use lifeline::{legacy, monotonic_ns};

/// How often the legacy observe axis re-reads `/proc/PID/stat` (µs).
const PROC_POLL_US: u64 = 100;

impl Course<'_> {
    /// Everything from spawning the root to the verdict; `None` when the
    /// lab died (its lifeline, `lab_lifeline`, hung up).
    pub(super) fn follow(&mut self, lab_lifeline: BorrowedFd<'_>) -> Option<Outcome> {
        let started = match self.start() {
            Ok(s) => s,
            Err(e) => return Some(error_outcome(self.t0, crate::error::chain(&e))),
        };
        let (sup_end, _root) = (started.phases, started.root);
        let mut deadline = self.t0 + self.req.deadline_us * 1000;
        let mut stage = Stage::Course;
        let mut deaths = Deaths::default();
        let mut rung = Rung::None;
        let mut phases_open = true;
        // The course looked, without waiting, for deaths already signalled
        // before it ends (see below).
        let mut looked = false;
        loop {
            if let Some(broken) = self.read_phases(sup_end.as_fd(), &mut phases_open, rung) {
                return Some(broken);
            }
            self.reap();
            self.scan_lineage();
            if let Some(out) = &mut self.output {
                out.drain();
            }
            if self.seen.panic.is_some() {
                return Some(self.finish(Ending::new(Verdict::Pass, None, rung)));
            }
            let now = monotonic_ns();
            match stage {
                Stage::Course => {
                    let (settled, tree_ready) = judge::course_state(self.plan(), &self.seen.nodes);
                    if tree_ready && self.ready_at.is_none() {
                        self.ready_at = Some(now);
                    }
                    self.run_kills(now);
                    let done = settled && self.kills.iter().all(|k| *k == KillState::Done);
                    // Reports are read before deaths: a supervisor that fell
                    // behind reads a node's last reports (its `ready`, sent
                    // once a child it watched had died) before that death.
                    // It looks for deaths already signalled before it ends
                    // the course, or such a death would count as the
                    // teardown's.
                    if !done || !looked {
                        looked = done;
                    } else {
                        deaths.teardown_at = monotonic_ns();
                        deaths.last = deaths.teardown_at;
                        self.teardown_at = Some(deaths.teardown_at);
                        stage =
                            if self.seen.nodes[0].dead_ns.is_none() || self.plan().teardown_group {
                                rung = self.send_rung(0);
                                Stage::Ladder {
                                    rung: 0,
                                    since: deaths.teardown_at,
                                }
                            } else {
                                Stage::Settle {
                                    since: deaths.teardown_at,
                                }
                            };
                        continue;
                    }
                    if now >= deadline {
                        let phases = phases_open.then(|| sup_end.as_fd());
                        match self.overdue(now, phases) {
                            ControlFlow::Continue(extended) => deadline = extended,
                            ControlFlow::Break(outcome) => return Some(outcome),
                        }
                    }
                }
                Stage::Settle { since } => match self.settle(since, now, &mut deaths, rung) {
                    Settled::Wait => {}
                    Settled::Again => continue,
                    Settled::Next(next) => {
                        stage = next;
                        continue;
                    }
                    Settled::Done(outcome) => return Some(*outcome),
                },
                Stage::Ladder { rung: r, since } => {
                    if let Some(next) = self.climb(r, since, now, &mut rung) {
                        stage = next;
                        continue;
                    }
                }
                Stage::Grace | Stage::Confirm { .. } | Stage::Dying { .. } => {
                    match self.judge_windows(stage, now, &deaths, rung) {
                        ControlFlow::Continue(None) => {}
                        ControlFlow::Continue(Some(next)) => {
                            stage = next;
                            continue;
                        }
                        ControlFlow::Break(outcome) => return Some(outcome),
                    }
                }
            }
            // Wait for the next event: a report, a death, the cgroup emptying,
            // the lab's death, or the next timer.
            let timeout_ns = if looked && matches!(stage, Stage::Course) {
                0
            } else {
                self.next_timeout(stage, deadline, &deaths, now)
            };
            let died =
                match self.wait_event(lab_lifeline, sup_end.as_fd(), phases_open, timeout_ns, rung)
                {
                    Ok(died) => died,
                    Err(end) => return end.map(|o| *o),
                };
            // A node's last reports are queued before its exit: read them
            // before judging its death.
            if let Some(broken) = self.read_phases(sup_end.as_fd(), &mut phases_open, rung) {
                return Some(broken);
            }
            // The root's status, when it died, is evidence for its death.
            self.reap();
            let now = monotonic_ns();
            for i in died {
                self.seen.nodes[i].dead_ns = Some(now);
                if matches!(stage, Stage::Course) {
                    self.check_early_death(i);
                } else {
                    self.seen.nodes[i].rung = Some(rung);
                    deaths.max_gap_us = deaths.max_gap_us.max((now - deaths.last) / 1000);
                    deaths.last = now;
                }
            }
        }
    }

    /// One step of the cascade judged by windows (grace, confirm, dying) at
    /// `now`: the next stage to go on to (`None`: wait), or the outcome.
    fn judge_windows(
        &mut self,
        stage: Stage,
        now: u64,
        deaths: &Deaths,
        rung: Rung,
    ) -> ControlFlow<Outcome, Option<Stage>> {
        let window_us = self.window_us(deaths.max_gap_us);
        let clock = Clock {
            now,
            teardown_at: deaths.teardown_at,
            last_death: deaths.last,
            window_us,
        };
        let empty = self.empty();
        match judge::cascade(stage, clock, empty, || self.dying_only()) {
            Step::Wait => ControlFlow::Continue(None),
            Step::Next(next) => ControlFlow::Continue(Some(next)),
            Step::Pass { slow_us } => {
                let end = Ending {
                    window_us,
                    slow_us,
                    ..Ending::new(Verdict::Pass, None, rung)
                };
                ControlFlow::Break(self.finish(end))
            }
            Step::Orphan => {
                ControlFlow::Break(self.finish_orphans(rung, OrphanBy::Windows, window_us))
            }
            Step::Undying { since_teardown_ms } => {
                ControlFlow::Break(self.finish_undying(rung, since_teardown_ms))
            }
            // Windows never stall: they end in an orphan.
            Step::Stalled => ControlFlow::Continue(None),
        }
    }

    /// Wait at most `timeout_ns` for the next event: a report on the phase
    /// channel `phases` (while `phases_open`), a death, the cgroup emptying,
    /// the program's output, or the lab's death (`lab_lifeline` hung up).
    /// Returns the nodes whose pidfds reported their exit; `Err(None)` when
    /// the lab is gone, `Err(Some(outcome))` when the poll failed (boxed: an
    /// outcome is large).
    fn wait_event(
        &mut self,
        lab_lifeline: BorrowedFd<'_>,
        phases: BorrowedFd<'_>,
        phases_open: bool,
        timeout_ns: u64,
        rung: Rung,
    ) -> Result<Vec<usize>, Option<Box<Outcome>>> {
        let live: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.seen.nodes[i].dead_ns.is_none() && self.procs[i].pidfd.is_some())
            .collect();
        let mut fds = Vec::with_capacity(live.len() + 5);
        fds.push(PollFd::new(&lab_lifeline, PollFlags::empty()));
        // A hung-up socket reports POLLHUP whatever was asked: once every
        // node end is closed, the phase channel leaves the set, or the
        // poll would return at once until the verdict.
        if phases_open {
            fds.push(PollFd::new(&phases, PollFlags::IN));
        }
        let first_pidfd = fds.len();
        for &i in &live {
            let pidfd = self.procs[i]
                .pidfd
                .as_ref()
                .expect("a live node is watched");
            fds.push(PollFd::new(pidfd, PollFlags::IN));
        }
        // The program's stdout and stderr, until EOF (drained at the
        // top of the loop).
        if let Some(out) = &self.output {
            for s in [&out.stdout, &out.stderr].into_iter().filter(|s| !s.eof) {
                fds.push(PollFd::from_borrowed_fd(s.fd(), PollFlags::IN));
            }
        }
        // A wrap trial's control pipe: the signals the lab forwards.
        let control_at = self.control.map(|c| {
            fds.push(PollFd::from_borrowed_fd(c, PollFlags::IN));
            fds.len() - 1
        });
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
                let reason = Some(format!("poll: {e}"));
                return Err(Some(Box::new(self.finish(Ending::new(
                    Verdict::Error,
                    reason,
                    rung,
                )))));
            }
        }
        if !fds[0].revents().is_empty() {
            return Err(None); // the lab is gone: clean up and stop
        }
        let cgroup_event = cg_events.is_some() && !fds[fds.len() - 1].revents().is_empty();
        let died: Vec<usize> = live
            .iter()
            .enumerate()
            .filter(|(k, _)| !fds[k + first_pidfd].revents().is_empty())
            .map(|(_, &i)| i)
            .collect();
        let control = control_at.is_some_and(|k| !fds[k].revents().is_empty());
        drop(fds);
        if control {
            self.read_control();
        }
        if cgroup_event {
            // Reading cgroup.events re-arms its POLLPRI.
            let _ = self.cgroup.as_ref().map(|c| c.populated());
        }
        Ok(died)
    }

    /// Take the exit of every node whose pidfd reads as exited but whose
    /// death the poll has not reported yet, as the poll would: at `now`,
    /// under `rung`.
    pub(super) fn take_exits(&mut self, now: u64, rung: Rung) {
        for (n, p) in self.seen.nodes.iter_mut().zip(&self.procs) {
            if n.dead_ns.is_none() && p.pidfd.as_ref().is_some_and(|f| f.has_exited()) {
                n.dead_ns = Some(now);
                n.rung = Some(rung);
            }
        }
    }

    /// Read every queued phase report while the channel is `open`; at its
    /// end (every node end closed) mark it closed. Any other receive error
    /// ends the trial as an `error` naming it, returned here: a verdict is
    /// never read from part of the reports.
    fn read_phases(&mut self, fd: BorrowedFd<'_>, open: &mut bool, rung: Rung) -> Option<Outcome> {
        if !*open {
            return None;
        }
        match self.drain_phases(fd) {
            Ok(()) => None,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                *open = false;
                None
            }
            Err(e) => {
                let reason = Some(format!("phase channel: {e}"));
                Some(self.finish(Ending::new(Verdict::Error, reason, rung)))
            }
        }
    }

    /// Read every queued phase report into the observation.
    ///
    /// # Errors
    /// `UnexpectedEof` once every node end is closed; any other receive
    /// error.
    fn drain_phases(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        while let Some(got) = phase::try_recv(fd)? {
            self.reports += 1;
            let rec = got.record;
            let i = rec.node as usize;
            let (Some(n), Some(p)) = (self.seen.nodes.get_mut(i), self.procs.get_mut(i)) else {
                continue;
            };
            let gate = self.req.plan.nodes[i].gate;
            match rec.event {
                Event::Created => {
                    p.pid = rec.pid;
                    n.created_ns = Some(rec.time_ns);
                    n.watched = got.pidfd.is_some();
                    p.pidfd = got.pidfd;
                    p.at_gate = (gate == Some(Phase::Created)).then_some(Phase::Created);
                }
                Event::Armed => {
                    n.armed_ns = Some(rec.time_ns);
                    p.at_gate = (gate == Some(Phase::Armed)).then_some(Phase::Armed);
                }
                Event::Ready => n.ready = true,
                Event::Failed if rec.value == libc::EDEADLK as i64 => {
                    // The node's guards were off (with them on, the node
                    // panics where clone3 refused): the refusal is still
                    // the primitive's, and a panic.
                    let path = &self.req.plan.nodes[i].path;
                    self.seen.panic.get_or_insert(GuardPanic::here(format!(
                        "refused at spawn time: node {path} is multithreaded and asked clone3 for a copy \
                         of itself (no exec); a copy would inherit locks and globals without their threads"
                    ), None));
                }
                Event::Failed => n.failed = Some(rec.value),
                Event::Exiting | Event::ParentGone => n.ended_itself = true,
                Event::Exited => n.exit = Some(rec.value),
                Event::Leak => self.leak(rec.node, rec.value),
                Event::Finding => self.seen.findings.extend(Finding::from_value(rec.value)),
                Event::Panic => {
                    // It exits at once: its death is its own, the panic says why.
                    n.ended_itself = true;
                    if let Some(panic) = got.panic {
                        self.seen.panic.get_or_insert(panic);
                    }
                }
            }
        }
        Ok(())
    }

    /// Start every planned kill that is due, climb the ladders of those
    /// sent, and close those done: a kill is done once its target is gone,
    /// or once its last signal is sent when that is not SIGKILL; a gated
    /// kill's gate opens then.
    fn run_kills(&mut self, now: u64) {
        // A gate kill waits until every fate the plan fixes is known
        // ([`judge::fates_fixed`]); the held nodes count as known.
        let held: Vec<bool> = self.procs.iter().map(|p| p.at_gate.is_some()).collect();
        for k in 0..self.kills.len() {
            let pk = &self.req.plan.kills[k];
            let target = pk.target as usize;
            match self.kills[k] {
                KillState::Pending => {
                    let t = &self.seen.nodes[target];
                    // Timed from a birth, the target ended first: nothing
                    // to kill, and the kill is done.
                    let ended_first =
                        matches!(pk.at, PlanAt::Birth { .. } | PlanAt::ChildBirth { .. })
                            && t.dead_ns.is_some();
                    // Held at the gate of a child that will never be
                    // there: it died, or it will never be born (its parent,
                    // the target, died first or will never be born itself;
                    // a node whose parent died before it armed exits
                    // without spawning). Nothing is held, and the kill is
                    // done without a signal; its gate
                    // is opened all the same, so that a child spawned just
                    // before its parent died, whose `created` report is
                    // still on its way, is not held there for ever.
                    let never_held = match pk.at {
                        PlanAt::Gate { child, .. } => {
                            self.procs[child as usize].at_gate.is_none()
                                && (self.seen.nodes[child as usize].dead_ns.is_some()
                                    || self.never_born(child as usize))
                        }
                        _ => false,
                    };
                    let due = match pk.at {
                        PlanAt::Ready => self.ready_at.is_some(),
                        PlanAt::Gate { child, phase } => {
                            self.procs[child as usize].at_gate == Some(phase)
                                && (t.ready || t.dead_ns.is_some())
                                && judge::fates_fixed(self.plan(), &self.seen.nodes, &held)
                        }
                        PlanAt::Delay { .. } | PlanAt::Birth { .. } | PlanAt::ChildBirth { .. } => {
                            // A timed kill of a target that will never be
                            // born (an ancestor died first) fires at once,
                            // at nothing, and is done.
                            self.never_born(target) || self.kill_time(k).is_some_and(|at| now >= at)
                        }
                    };
                    if never_held {
                        if let PlanAt::Gate { child, .. } = pk.at {
                            self.release(child);
                        }
                        self.kills[k] = KillState::Done;
                    } else if ended_first {
                        self.kills[k] = KillState::Done;
                    } else if due {
                        if k == 0 {
                            self.first_kill_sent_ns = Some(monotonic_ns());
                        }
                        self.signal(target, pk.signal);
                        self.kills[k] = KillState::Sent {
                            rung: 0,
                            at_ns: now,
                        };
                    }
                }
                KillState::Sent { rung, at_ns } => {
                    let gone = match self.req.strategy.observe {
                        Observe::Pidfd => {
                            self.seen.nodes[target].dead_ns.is_some()
                                || self.procs[target]
                                    .pidfd
                                    .as_ref()
                                    .is_none_or(|p| p.has_exited())
                        }
                        Observe::Pid => !legacy::proc_alive(self.procs[target].pid),
                    };
                    let next = pk.rung(rung + 1);
                    let last = pk.rung(rung).unwrap_or(Sig::Kill);
                    if let (false, Some(sig)) = (gone, next) {
                        if now >= at_ns + pk.grace_us * 1000 {
                            self.signal(target, sig);
                            self.kills[k] = KillState::Sent {
                                rung: rung + 1,
                                at_ns: now,
                            };
                        }
                    } else if gone || last != Sig::Kill {
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

    /// Whether node `i` will never be born: it has not reported `created`,
    /// and its parent died, or will never be born itself.
    fn never_born(&self, i: usize) -> bool {
        self.seen.nodes[i].created_ns.is_none()
            && self.plan().nodes[i].parent.is_some_and(|p| {
                self.seen.nodes[p as usize].dead_ns.is_some() || self.never_born(p as usize)
            })
    }

    /// When the next rung of a sent kill ladder is due (ns), if any.
    fn next_rung_time(&self) -> Option<u64> {
        self.kills
            .iter()
            .zip(&self.req.plan.kills)
            .filter_map(|(state, pk)| match *state {
                KillState::Sent { rung, at_ns } if pk.rung(rung + 1).is_some() => {
                    Some(at_ns + pk.grace_us * 1000)
                }
                _ => None,
            })
            .min()
    }

    /// When timed kill `k` is due (ns): its delay after the tree was ready,
    /// or after its target's `created` report; `None` before that moment is
    /// known, or for a kill that is not timed.
    fn kill_time(&self, k: usize) -> Option<u64> {
        let pk = &self.plan().kills[k];
        match pk.at {
            PlanAt::Delay { after_ready_us } => self.ready_at.map(|r| r + after_ready_us * 1000),
            PlanAt::Birth { after_created_us } => self.seen.nodes[pk.target as usize]
                .created_ns
                .map(|c| c + after_created_us * 1000),
            PlanAt::ChildBirth {
                child,
                after_created_us,
            } => self.seen.nodes[child as usize]
                .created_ns
                .map(|c| c + after_created_us * 1000),
            PlanAt::Ready | PlanAt::Gate { .. } => None,
        }
    }

    /// The plan's first kill: when it was due and when its first signal was
    /// sent, µs after its target's spawn (its `created` report), for the
    /// trial's record; `None` where either is unknown.
    pub(super) fn first_kill_moments(&self) -> (Option<u64>, Option<u64>) {
        let Some(pk) = self.plan().kills.first() else {
            return (None, None);
        };
        let Some(spawn) = self.seen.nodes[pk.target as usize].created_ns else {
            return (None, None);
        };
        let since = |ns: u64| ns.saturating_sub(spawn) / 1000;
        (
            self.kill_time(0).map(since),
            self.first_kill_sent_ns.map(since),
        )
    }

    /// Open the gate of node `child`.
    fn release(&mut self, child: u32) {
        if let Some((_, w)) = self.gates.iter().find(|(n, _)| *n == child) {
            let _ = rustix::io::write(w, &[1]);
        }
        let p = &mut self.procs[child as usize];
        p.at_gate = None;
        p.released = true;
    }

    /// Send `sig` to node `i` the strategy's way: through its pidfd, or by
    /// PID. The legacy oracle then reads `/proc/PID/stat` at once, as a
    /// harness that judges by `/proc` would.
    pub(super) fn signal(&mut self, i: usize, sig: Sig) {
        self.signals_sent.push((monotonic_ns(), sig));
        let n = &mut self.seen.nodes[i];
        n.signalled = true;
        n.killed |= sig == Sig::Kill;
        let p = &self.procs[i];
        match self.req.strategy.observe {
            Observe::Pidfd => {
                if let Some(f) = &p.pidfd {
                    let _ = f.send_signal(sig.signal());
                }
            }
            Observe::Pid if p.pid > 0 => {
                // Without a PID namespace the PID may name a process outside
                // the trial by now: who holds it is looked at just before.
                let holder = self.holder(i);
                let pid = self.procs[i].pid;
                let delivered = legacy::kill_pid(pid, sig.signal()).unwrap_or(false);
                if sig == Sig::Kill && legacy::proc_alive(pid) {
                    self.seen.proc_alive_after_kill.push(i);
                }
                self.judge_kill(i, sig, holder, delivered);
            }
            Observe::Pid => {}
        }
    }

    /// Node `i` died during the course: record the first unplanned death
    /// ([`judge::early_death`]), after reading its parent's pidfd.
    fn check_early_death(&mut self, i: usize) {
        if self.seen.early.is_some() {
            return;
        }
        if let Some(p) = self.plan().nodes[i].parent {
            let p = p as usize;
            self.seen.nodes[p].exited =
                self.procs[p].pidfd.as_ref().is_some_and(|f| f.has_exited());
        }
        self.seen.early = judge::early_death(self.plan(), &self.seen.nodes, i);
    }

    /// The cascade window (µs), [`judge::window_us`].
    pub(super) fn window_us(&self, max_gap_us: u64) -> u64 {
        judge::window_us(
            self.plan(),
            &self.seen.nodes,
            self.root_spawned_ns,
            max_gap_us,
        )
    }

    /// How long to poll (ns, at least 1): until the stage's next timer, a
    /// delayed kill, the next `/proc` look of the legacy oracle, or (without
    /// a cgroup, after the course) the next look for adopted orphans.
    fn next_timeout(&self, stage: Stage, deadline: u64, deaths: &Deaths, now: u64) -> u64 {
        let window = || self.window_us(deaths.max_gap_us) * 1000;
        let mut t = match stage {
            Stage::Course => deadline.saturating_sub(now),
            Stage::Ladder { since, .. } => {
                (since + self.plan().rung_wait_us * 1000).saturating_sub(now)
            }
            Stage::Settle { .. } => deaths.next_look_at().saturating_sub(now),
            Stage::Grace => (deaths.last + window()).saturating_sub(now),
            Stage::Confirm { since } => {
                let w = window();
                (since + w).max(deaths.last + w).saturating_sub(now)
            }
            Stage::Dying { since } => (since + judge::DYING_BOUND_US * 1000).saturating_sub(now),
        };
        let sent = self
            .kills
            .iter()
            .any(|k| matches!(k, KillState::Sent { .. }));
        if self.req.strategy.observe == Observe::Pid && sent {
            t = t.min(PROC_POLL_US * 1000);
        }
        if let Some(at) = self.next_rung_time() {
            t = t.min(at.saturating_sub(now));
        }
        if self.lineage.is_some() {
            // Scan for new processes of a program's tree at least this often.
            t = t.min(super::lineage_watch::SCAN_US * 1000);
        }
        let next_kill = (0..self.kills.len())
            .filter(|&k| self.kills[k] == KillState::Pending)
            .filter_map(|k| self.kill_time(k))
            .filter(|&at| at > now)
            .min();
        if let Some(at) = next_kill {
            t = t.min(at - now);
        }
        if self.cgroup.is_none() && !matches!(stage, Stage::Course) {
            // Without a cgroup, orphans outside the plan are only found by
            // listing children; look again at least every window floor.
            t = t.min(WINDOW_FLOOR_US * 1000);
        }
        t.max(1)
    }

    /// Reap every child of the supervisor that has exited; the exit
    /// status of the root, whose parent the supervisor is, is kept for the
    /// judge (a command root's, the program `lab exec` runs, is its result;
    /// any root's is evidence of how it died, [`judge::early_death`]).
    fn reap(&mut self) {
        while let Ok(Some((pid, status))) = lifeline::reap_exited() {
            if pid == self.procs[0].pid {
                self.seen.nodes[0].exit = Some(phase::exit_value(status));
                if self.plan().nodes[0].command.is_some() {
                    self.lineage_root_exit(status);
                }
            }
        }
    }
}
