//! Who of the trial is alive, kernel-exact: the nodes through their pidfds,
//! the rest through the cgroup's member list or the orphans adopted by the
//! supervisor (its subreaper); and, for a hang or an orphan, the diagnosis
//! of what is stuck (read from `/proc`, never for a verdict) with the
//! holders of a leaked pipe.

use super::judge::{self, Alive, OrphanBy};
use super::Course;
use crate::forensics;
use crate::procfs;

/// The most characters of a plan's command line in a reason.
pub(super) use crate::lineage::COMMAND_MAX;
use crate::node::LEAK_INODE_BITS;
use crate::verdict::Rung;
use crate::verdict::{Outcome, Verdict};

impl Course<'_> {
    /// Paths of the live nodes (watched, and no exit taken from the poll or
    /// read by `look_at_exits`).
    pub(super) fn alive_paths(&self) -> Vec<String> {
        self.procs
            .iter()
            .zip(&self.seen.nodes)
            .enumerate()
            .filter(|(_, (p, n))| p.pidfd.is_some() && n.dead_ns.is_none() && !n.exited)
            .map(|(i, _)| self.plan().nodes[i].path.clone())
            .collect()
    }

    /// Live processes of the trial: the live nodes and those outside the
    /// plan ([`Course::outside`]).
    fn alive_count(&mut self) -> u32 {
        (self.alive_paths().len() + self.outside().len()) as u32
    }

    /// The live processes of the trial outside the plan (PIDs, sorted):
    /// the cgroup's members that no node holds, or without a cgroup every
    /// adopted orphan still alive and each live descendant of one (a
    /// grandchild whose parent lives never reparents to the supervisor:
    /// only the kernel's children lists of `/proc` show it, and a pidfd
    /// opened on it says whether it has exited).
    fn outside(&mut self) -> Vec<i32> {
        let known: Vec<i32> = self
            .procs
            .iter()
            .zip(&self.seen.nodes)
            .filter(|(_, n)| n.created_ns.is_some())
            .map(|(p, _)| p.pid)
            .collect();
        let mut pids = match &self.cgroup {
            Some(cg) => cg.members().unwrap_or_default(),
            None => {
                self.adopt();
                let mut pids = Vec::new();
                for orphan in self.adopted.iter().filter(|p| !p.has_exited()) {
                    pids.push(orphan.pid());
                    pids.extend(
                        procfs::descendants(orphan.pid())
                            .into_iter()
                            .filter(|&p| not_exited(p)),
                    );
                }
                pids
            }
        };
        pids.retain(|p| !known.contains(p));
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The live processes, for the judge: the nodes' paths and those
    /// outside the plan named one by one ([`Course::describe`]).
    fn alive(&mut self) -> Alive {
        let outside = self.outside();
        let paths = self.alive_paths();
        let count = (paths.len() + outside.len()) as u32;
        self.named_outside(paths, count, &outside)
    }

    /// `paths` and `count` as the judge takes them, with the processes
    /// outside the plan `outside` (PIDs) in words and by command line.
    fn named_outside(&self, paths: Vec<String>, count: u32, outside: &[i32]) -> Alive {
        Alive {
            paths,
            count,
            outside: outside.iter().map(|&p| self.describe(p)).collect(),
            outside_commands: outside
                .iter()
                .map(|&p| crate::lineage::command_of(p))
                .collect(),
        }
    }

    /// Process `pid` of the trial in words
    /// ([`crate::lineage::describe_process`]): the node it is, or ``pid N
    /// (`sleep 30`)`` and who started it.
    pub(super) fn describe(&self, pid: i32) -> String {
        let node = |p: i32| {
            let i = self.procs.iter().position(|n| n.pid == p)?;
            let node = &self.plan().nodes[i];
            Some((node.path.clone(), node.command_line()))
        };
        let started_by = |p: i32| self.lineage_of(p);
        crate::lineage::describe_process(
            pid,
            &crate::lineage::Known {
                node: &node,
                started_by: &started_by,
                shown: &crate::pidns::host_pid,
                supervisor: std::process::id() as i32,
            },
        )
    }

    /// With a command root that `capture`s (its stdout and stderr read to
    /// EOF, as a test runner does), once it has exited: a stream some
    /// process still holds open is a leak, its holders named.
    pub(super) fn check_output(&mut self) {
        let root_gone = self.seen.nodes[0].dead_ns.is_some() || self.seen.nodes[0].exited;
        let capture = self.plan().nodes[0].capture;
        let Some(out) = &mut self.output else {
            return;
        };
        out.drain();
        if !capture || !root_gone {
            return;
        }
        let held: Vec<(&str, u64)> = out.held().iter().map(|(n, s)| (*n, s.inode())).collect();
        if held.is_empty() {
            return;
        }
        let pids = self.trial_pids();
        for (name, inode) in held {
            let holders: Vec<String> = self.leak_holders(inode, &pids);
            let cmd = self.plan().nodes[0].command_line();
            self.seen.leaks.push(format!(
                "the {name} of `{}` (pipe:[{inode}]) was still held open after it exited: {}",
                cmd.unwrap_or_default(),
                if holders.is_empty() {
                    "by a process that was gone when it was looked up".to_string()
                } else {
                    holders.join("; ")
                }
            ));
        }
    }

    /// The holders of a write end of pipe `inode` among `pids`, each in
    /// words (``fd 1 of pid N (`sleep 30`), started by ...``), and each
    /// recorded as a survivor set names it ([`Observation::leak_holders`]).
    ///
    /// [`Observation::leak_holders`]: super::judge::Observation
    fn leak_holders(&mut self, inode: u64, pids: &[i32]) -> Vec<String> {
        let mut text = Vec::new();
        for (pid, f) in procfs::pipe_holders(inode, pids) {
            if !f.mode.contains('w') {
                continue;
            }
            text.push(format!("fd {} of {}", f.fd, self.describe(pid)));
            let name = match self.procs.iter().position(|n| n.pid == pid) {
                Some(i) => self.plan().nodes[i].path.clone(),
                None => crate::lineage::in_backticks(crate::lineage::command_of(pid)),
            };
            if !self.seen.leak_holders.contains(&name) {
                self.seen.leak_holders.push(name);
                self.seen.leak_holders.sort();
            }
        }
        text
    }

    /// Whether nothing of the trial is alive: the cgroup is empty, or (without
    /// one) every node's pidfd and every adopted orphan's pidfd reports exit
    /// (a node's exit taken from the poll, or read by `look_at_exits`).
    pub(super) fn empty(&mut self) -> bool {
        let live_node = self
            .procs
            .iter()
            .zip(&self.seen.nodes)
            .any(|(p, n)| p.pidfd.is_some() && n.dead_ns.is_none() && !n.exited);
        if live_node {
            return false;
        }
        if let Some(cg) = &self.cgroup {
            return !cg.populated().unwrap_or(true);
        }
        self.adopt();
        self.adopted.iter().all(|p| p.has_exited())
    }

    /// Take pidfds on orphans that reparented to the supervisor but never
    /// reported (a node's own children outside the plan). After a rung to
    /// the whole tree through pidfds, each one adopted gets its signal: it
    /// belonged to that tree, and reparented only once its parent died.
    pub(super) fn adopt(&mut self) {
        let known: Vec<i32> = self.procs.iter().map(|n| n.pid).collect();
        if let Ok(kids) = lifeline::adopt_children() {
            for k in kids {
                if !known.contains(&k.pid()) && !self.adopted.iter().any(|a| a.pid() == k.pid()) {
                    if let Some(sig) = self.group_signal {
                        let _ = k.send_signal(sig.signal());
                    }
                    self.adopted.push(k);
                }
            }
        }
    }

    /// Whether everything still alive was SIGKILLed by the supervisor (so
    /// it is dying, not orphaned): after `cgroup.kill`, or when every live
    /// process is a node sent SIGKILL and none lives outside the plan.
    pub(super) fn dying_only(&mut self) -> bool {
        if self.cgroup_killed {
            return true;
        }
        let live: Vec<usize> = (0..self.procs.len())
            .filter(|&i| {
                self.seen.nodes[i].dead_ns.is_none()
                    && self.procs[i]
                        .pidfd
                        .as_ref()
                        .is_some_and(|p| !p.has_exited())
            })
            .collect();
        live.iter().all(|&i| self.seen.nodes[i].killed) && self.alive_count() as usize == live.len()
    }

    /// The course missed its deadline with `blocked` asleep (PIDs; `None`
    /// when `/proc` could not tell): [`judge::hang`], diagnosed.
    pub(super) fn finish_hang(&mut self, rung: Rung, blocked: Option<&[i32]>) -> Outcome {
        self.look_at_exits();
        let alive = self.alive();
        let blocked = blocked.map(|pids| self.named(pids));
        let deadline_ms = self.req.deadline_us / 1000;
        let t = self.elapsed_us();
        let host_worker = self.host_worker.as_ref();
        let mut o = judge::hang(
            self.plan(),
            &self.seen,
            alive,
            blocked.as_ref(),
            deadline_ms,
            host_worker,
            rung,
            t,
        );
        self.diagnose_if(&mut o, Verdict::Hang);
        o
    }

    /// Process `pid` kept running past the deadline up to its cap:
    /// [`judge::spinning`], diagnosed.
    pub(super) fn finish_spinning(&mut self, rung: Rung, pid: i32) -> Outcome {
        self.look_at_exits();
        let alive = self.alive();
        let spinner = match self.procs.iter().position(|p| p.pid == pid) {
            Some(i) => format!("node {}", self.plan().nodes[i].path),
            None => "a process outside the plan".to_string(),
        };
        let t = self.elapsed_us();
        let mut o = judge::spinning(self.plan(), &self.seen, alive, &spinner, rung, t);
        self.diagnose_if(&mut o, Verdict::Hang);
        o
    }

    /// `pids` as the judge names them: the paths of those that are nodes,
    /// and the count of all.
    fn named(&self, pids: &[i32]) -> Alive {
        let paths = self
            .procs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.pid > 0 && pids.contains(&p.pid))
            .map(|(i, _)| self.plan().nodes[i].path.clone())
            .collect();
        let outside: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&p| !self.procs.iter().any(|n| n.pid == p))
            .collect();
        self.named_outside(paths, pids.len() as u32, &outside)
    }

    /// SIGKILLed processes did not die: [`judge::undying`], diagnosed.
    pub(super) fn finish_undying(&mut self, rung: Rung, since_teardown_ms: u64) -> Outcome {
        self.look_at_exits();
        let alive = self.alive();
        let t = self.elapsed_us();
        let mut o = judge::undying(self.plan(), &self.seen, alive, rung, since_teardown_ms, t);
        self.diagnose_if(&mut o, Verdict::Hang);
        o
    }

    /// Something outlived the teardown, judged `by` that evidence
    /// (`window_us`: the window used, 0 when none was): [`judge::orphans`],
    /// diagnosed.
    pub(super) fn finish_orphans(&mut self, rung: Rung, by: OrphanBy, window_us: u64) -> Outcome {
        self.look_at_exits();
        self.check_output();
        let alive = self.alive();
        let t = self.elapsed_us();
        let mut o = judge::orphans(self.plan(), &self.seen, alive, rung, by, window_us, t);
        self.diagnose_if(&mut o, Verdict::Orphan);
        o
    }

    /// The processes of the trial, for diagnosis (never for a verdict): the
    /// cgroup's members, or without one every descendant of the supervisor
    /// (its subreaper), plus every live node the list may have missed.
    fn trial_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = match &self.cgroup {
            Some(cg) => cg.members().unwrap_or_default(),
            None => procfs::descendants(std::process::id() as i32),
        };
        pids.extend(
            self.procs
                .iter()
                .zip(&self.seen.nodes)
                .filter(|(_, n)| n.created_ns.is_some() && n.dead_ns.is_none())
                .map(|(p, _)| p.pid),
        );
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Let the failure speak: when `o` is still a `verdict` (nothing
    /// outranked it), read the stuck state of every live process of the
    /// trial before anything is killed, and name its signatures.
    pub(super) fn diagnose_if(&mut self, o: &mut Outcome, verdict: Verdict) {
        if o.verdict != verdict {
            return;
        }
        let pids = self.trial_pids();
        // Every node that was born names its pid (a dead one may linger as
        // an unreaped zombie).
        let nodes: Vec<(i32, String)> = self
            .procs
            .iter()
            .zip(&self.seen.nodes)
            .enumerate()
            .filter(|(_, (_, n))| n.created_ns.is_some())
            .map(|(i, (p, _))| (p.pid, self.plan().nodes[i].path.clone()))
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
        let detail = if req.brief_verdicts.contains(&o.verdict) {
            forensics::Detail::Signatures
        } else {
            forensics::Detail::Full { gdb: req.gdb }
        };
        let mut d = forensics::capture(subject, &pids, &nodes, detail);
        if let Some(lineage) = &self.lineage {
            d.notes.push(format!(
                "lineage (who started each process) from {}",
                match lineage.source() {
                    crate::lineage::LineageSource::ProcConnector =>
                        "the kernel's process events (proc connector): exact forks, execs and exits",
                    crate::lineage::LineageSource::ProcScan =>
                        "/proc scans every 2 ms at most: a process born and gone between two is missed",
                }
            ));
        }
        for found in d.found() {
            if !o.signatures.contains(&found) {
                o.signatures.push(found);
            }
        }
        o.diagnosis = Some(d);
    }

    /// Node `reader` reported a leak (`value`: the child's index above
    /// [`LEAK_INODE_BITS`], the pipe's inode below): name the holders of
    /// the pipe's write end, from the fd tables of the trial's processes.
    pub(super) fn leak(&mut self, reader: u32, value: i64) {
        let inode = (value & ((1i64 << LEAK_INODE_BITS) - 1)) as u64;
        let child = (value >> LEAK_INODE_BITS) as usize;
        let pids = self.trial_pids();
        let holders = self.leak_holders(inode, &pids);
        let nodes = &self.plan().nodes;
        let leak = format!(
            "node {} read the stdout of node {} (pipe:[{inode}]); after the child was reaped a writer still held it: {}",
            nodes[reader as usize].path,
            nodes.get(child).map_or("?", |n| n.path.as_str()),
            if holders.is_empty() {
                "gone by the time it was looked up".to_string()
            } else {
                holders.join("; ")
            }
        );
        self.seen.leaks.push(leak);
    }
}

/// Whether `pid` names a process that has not exited: a pidfd opened on it
/// does not poll readable (it does once the process exited, a zombie
/// included). `false` when no pidfd can be opened (it is gone).
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
fn not_exited(pid: i32) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let Some(raw) = Pid::from_raw(pid) else {
        return false;
    };
    let Ok(fd) = pidfd_open(raw, PidfdFlags::empty()) else {
        return false;
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    matches!(
        poll(&mut fds, Some(&rustix::time::Timespec::default())),
        Ok(0)
    )
}
