//! The evidence the judge's quiescence rule reads: what every live process
//! of the trial can still do (`activity`), the re-check of survivors
//! against their pidfds (or the cgroup's member list) before an orphan
//! verdict, and the CPU time that tells a spinning trial from a starved one.

use super::activity::{self, CpuTime};
use super::judge::{self, Look, Stall};
use super::Course;
use crate::procfs;

use lifeline::monotonic_ns;

/// CPU times of the trial's processes, taken when a bound was first
/// reached (ns since boot, per process).
pub(super) type CpuSnapshot = (u64, Vec<(i32, CpuTime)>);

impl Course<'_> {
    /// Every process of the trial, for the quiescence rule: every process
    /// of the supervisor's PID namespace but itself, or (in the lab's
    /// namespace) its descendants (it is the trial's subreaper), which
    /// include processes still inside `do_exit` and zombies, unlike
    /// `cgroup.procs`; plus the cgroup's members and the live nodes, in
    /// case a walk missed one.
    fn every_pid(&self) -> Vec<i32> {
        let mut pids = if crate::pidns::translating() {
            // Init of a PID namespace of its own, with its own `/proc`:
            // every other process listed there is the trial's (one
            // directory read, cheaper than walking `children`).
            namespace_pids()
        } else {
            procfs::descendants(std::process::id() as i32)
        };
        if let Some(cg) = &self.cgroup {
            pids.extend(cg.members().unwrap_or_default());
        }
        pids.extend(
            self.procs
                .iter()
                .zip(&self.seen.nodes)
                .filter(|(p, n)| p.pid > 0 && n.dead_ns.is_none())
                .map(|(p, _)| p.pid),
        );
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// What the trial's live processes can still do: [`Look::Empty`] when
    /// nothing of it is alive (kernel-exact), [`Look::Unreadable`] when
    /// `/proc` does not show them.
    pub(super) fn look(&mut self) -> Look {
        self.look_at_exits();
        if self.empty() {
            return Look::Empty;
        }
        let unobserved_kills = self.unobserved_kills();
        // The nodes released from their gate since the last look the
        // course acted on ([`Course::looked`]): acting at this look only, so
        // that a node that then sleeps without a report is judged by what it
        // does.
        let released: Vec<i32> = self
            .procs
            .iter()
            .filter_map(|p| (p.released && p.pid > 0).then_some(p.pid))
            .collect();
        if !unobserved_kills.is_empty() {
            // A death the supervisor caused is still to come: the trial is
            // busy whatever `/proc` shows, so it need not be read yet (its
            // pidfd will say when).
            return Look::Seen(judge::quiescence(&[], &unobserved_kills, &released));
        }
        let plan = &self.req.plan;
        let model_node = |pid: i32| {
            self.procs
                .iter()
                .position(|p| p.pid == pid)
                .is_some_and(|i| plan.nodes[i].command.is_none())
        };
        let Ok(seen) = activity::look(&self.every_pid(), model_node) else {
            return Look::Unreadable;
        };
        Look::Seen(judge::quiescence(&seen, &unobserved_kills, &released))
    }

    /// The last look counted: a node released from its gate before it is
    /// judged by what it does from now on.
    pub(super) fn looked(&mut self) {
        for p in &mut self.procs {
            p.released = false;
        }
    }

    /// PIDs of the nodes the supervisor SIGKILLed whose exit no pidfd has
    /// reported yet.
    fn unobserved_kills(&self) -> Vec<i32> {
        self.procs
            .iter()
            .zip(&self.seen.nodes)
            .filter(|(p, n)| {
                n.killed && n.created_ns.is_some() && n.dead_ns.is_none() && !n.exited && p.pid > 0
            })
            .map(|(p, _)| p.pid)
            .collect()
    }

    /// Whether every one of `alive` (found alive in a quiescent trial) is
    /// still alive at the moment of the verdict: a node by its pidfd, a
    /// process outside the plan by the cgroup's member list or, without a
    /// cgroup, by the pidfd of an adopted orphan. An exited process (zombie
    /// or reaped) is never an orphan.
    pub(super) fn survivors_still_alive(&mut self, alive: &[i32]) -> bool {
        self.look_at_exits();
        let members = self
            .cgroup
            .as_ref()
            .map(|cg| cg.members().unwrap_or_default());
        if members.is_none() {
            self.adopt();
        }
        alive.iter().all(|&pid| {
            if let Some(i) = self.procs.iter().position(|p| p.pid == pid) {
                let n = &self.seen.nodes[i];
                return n.dead_ns.is_none() && !n.exited;
            }
            match &members {
                Some(m) => m.contains(&pid),
                None => self
                    .adopted
                    .iter()
                    .find(|a| a.pid() == pid)
                    .is_none_or(|a| !a.has_exited()),
            }
        })
    }

    /// Take the CPU times of the trial's processes, the first time a bound
    /// is reached.
    pub(super) fn snapshot_cpu(&mut self) {
        if self.cpu_at_bound.is_none() {
            self.cpu_at_bound = Some((monotonic_ns(), activity::cpu(&self.every_pid())));
        }
    }

    /// Spinning or starved ([`judge::stall`]), from the CPU time the
    /// trial's processes got since [`snapshot_cpu`](Self::snapshot_cpu),
    /// `acting` being the processes that keep it busy.
    pub(super) fn stall(&mut self, acting: &[i32]) -> Stall {
        self.snapshot_cpu();
        let (since, before) = self.cpu_at_bound.clone().unwrap_or_default();
        let after = activity::cpu(&self.every_pid());
        judge::stall(
            &before,
            &after,
            acting,
            monotonic_ns().saturating_sub(since),
        )
    }
}

/// Every process listed in this PID namespace's `/proc` but this one.
fn namespace_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").map_or_else(
        |_| Vec::new(),
        |dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| p != me)
                .collect()
        },
    )
}
