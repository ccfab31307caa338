//! The teardown ladder: its rungs as a type ([`Rung`]), and how the
//! supervisor climbs it (send a rung, wait `rung_wait_us`, send the next).
//!
//! A plan's teardown is a signal, sent to the root or to the whole tree,
//! then its escalations (`escalate`), one rung each: `teardown-TERM` (the
//! root alone), `group-TERM` (the legacy process group), `pidfds-KILL` (every
//! pidfd the supervisor holds) or `cgroup.kill` (SIGKILL to the whole trial
//! cgroup). The rung in effect when a node died, and the one that ended the
//! tree, go to the outcome as these names.

use super::judge::Stage;
use super::Course;
use crate::signal::Sig;
use crate::strategy::Observe;
use crate::verdict::Rung;
use lifeline::legacy;

impl Course<'_> {
    /// The signal of rung `r`: the plan's teardown, then its escalations.
    fn rung_signal(&self, r: usize) -> Sig {
        let plan = self.plan();
        if r == 0 {
            plan.teardown
        } else {
            plan.escalate[r - 1]
        }
    }

    /// Send rung `r` of the teardown ladder: to the root, or to the whole
    /// tree (legacy: its process group; canonical: `cgroup.kill` for SIGKILL
    /// where there is a cgroup, else every pidfd held and every orphan
    /// adopted, now or later: a process outside the plan reparents to the
    /// supervisor only when its parent dies, often of this very rung).
    /// Returns the rung.
    pub(super) fn send_rung(&mut self, r: usize) -> Rung {
        let sig = self.rung_signal(r);
        if !self.plan().teardown_group {
            self.signal(0, sig);
            return Rung::Root(sig);
        }
        for n in self.seen.nodes.iter_mut() {
            n.signalled = true;
        }
        match self.req.strategy.observe {
            Observe::Pid => {
                // Without a PID namespace the group's number may name a
                // group outside the trial by now: its members are looked
                // at just before.
                let pgid = self.procs[0].pid;
                let outsiders = self.group_outsiders(pgid);
                let delivered = legacy::kill_group(pgid, sig.signal()).unwrap_or(false);
                self.judge_group_kill(sig, outsiders, delivered);
                Rung::Group(sig)
            }
            Observe::Pidfd if sig == Sig::Kill && self.cgroup.is_some() => {
                let _ = self.cgroup.as_mut().map(|c| c.kill());
                self.cgroup_killed = true;
                Rung::CgroupKill
            }
            Observe::Pidfd => {
                let all = self.procs.iter().filter_map(|n| n.pidfd.as_ref());
                for p in all.chain(self.adopted.iter()) {
                    let _ = p.send_signal(sig.signal());
                }
                // The rest of the tree: orphans not adopted yet, now and as
                // they reparent (`adopt`).
                self.group_signal = Some(sig);
                self.adopt();
                if sig == Sig::Kill {
                    self.seen.nodes.iter_mut().for_each(|n| n.killed = true);
                }
                Rung::Pidfds(sig)
            }
        }
    }

    /// On rung `r`, sent at `since` (ns): the next stage once the ladder is
    /// climbed (every rung sent, or nothing of the plan left alive: the
    /// cascade, judged from evidence), or the next rung once `rung_wait_us` has passed since
    /// this one (`rung` is then set to it). `None`: wait on this rung.
    pub(super) fn climb(
        &mut self,
        r: usize,
        since: u64,
        now: u64,
        rung: &mut Rung,
    ) -> Option<Stage> {
        let rungs = 1 + self.plan().escalate.len();
        if r + 1 >= rungs || self.alive_paths().is_empty() {
            return Some(Stage::Settle { since: now });
        }
        if now >= since + self.plan().rung_wait_us * 1000 {
            *rung = self.send_rung(r + 1);
            return Some(Stage::Ladder {
                rung: r + 1,
                since: now,
            });
        }
        None
    }
}
