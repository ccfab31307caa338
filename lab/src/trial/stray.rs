//! Kills by PID that reach outside the trial: the `innocent-kill` of the
//! fallback without a PID namespace.
//!
//! A supervisor that is init of a PID namespace of its own sends the legacy
//! `kill(pid)` into that namespace, where every PID names a process of its
//! trial. Without one (`LAB_PID_NAMESPACE=off`, or where none can be made)
//! the same kill goes to whatever process of the lab's namespace holds the
//! number: once a node has been reaped, that can be any process of the
//! machine. The kill is still sent by PID (that is the legacy behaviour
//! measured); this module finds out whom it could reach, and the judge
//! calls a kill that reached a process outside the trial an
//! `innocent-kill`.
//!
//! Just before the kill, [`Course::holder`] reads the node's own pidfd
//! (which the node sent with its `created` report): while the node is
//! alive or a zombie not yet reaped, its PID is its own and nobody else's
//! (`Pid:` of the pidfd's fdinfo, [`pidns::pidfd_pid`]). Once it has been
//! reaped, the supervisor opens a pidfd on the PID (`pidfd_open`): any
//! process it finds is not the node. Whether that process is of the trial
//! is read from the pidfds of the other nodes and of the adopted orphans,
//! the trial cgroup's member list, and its ancestry (a process of the
//! trial descends from the supervisor, its subreaper); what is read is
//! trusted only if the opened pidfd still holds the PID afterwards. After
//! the kill, [`Course::judge_kill`] records a stray kill when the kill was
//! delivered to a PID whose node was reaped and whose holder is outside
//! the trial (looking again when the PID was free at the look: a process
//! took it in between).
//!
//! What is not seen: a node reaped, and its PID taken, in the microseconds
//! between the look at its pidfd and the kill (the kill is then taken to
//! have reached the node); a holder that exits and is reaped between the
//! kill and the second look of a PID that was free at the first.
//!
//! The legacy group teardown, `kill(-pgid)` to the root's process group,
//! is looked at the same way: just before it, [`Course::group_outsiders`]
//! lists the members of the group ([`procfs::group_members`]) that are not
//! of the trial. Once the root has been reaped and its group has emptied,
//! the number is free, and a process outside the trial that is given it
//! and makes itself a group leader (`setsid`), or the members it leaves in
//! that group, receive the teardown. A process that joins the group
//! between the look and the kill is not seen.

use std::os::fd::AsFd;

use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::Course;
use crate::pidns;
use crate::procfs;
use crate::signal::Sig;

/// Who held a node's PID just before a kill by PID was sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Holder {
    /// The node itself (alive, or a zombie not reaped yet).
    Node,
    /// Nobody: the node was reaped and the PID was free.
    Free,
    /// Another process of the trial.
    Trial,
    /// A process outside the trial, in words.
    Outside(String),
}

/// How many parents [`Course::descends_from_supervisor`] climbs at most.
const MAX_ANCESTRY: usize = 64;

impl Course<'_> {
    /// Who holds node `i`'s PID now, just before a kill by PID; `None` when
    /// nothing outside the trial can hold it (the supervisor is init of a
    /// PID namespace of its own) or the node has no PID or pidfd yet.
    pub(super) fn holder(&self, i: usize) -> Option<Holder> {
        if pidns::own_namespace() {
            return None;
        }
        let pid = self.procs[i].pid;
        let node = self.procs[i].pidfd.as_ref()?;
        if pidns::pidfd_pid(node.as_fd()) == Some(pid) {
            return Some(Holder::Node);
        }
        Some(self.holder_of(pid))
    }

    /// Who holds `pid`, which no node of the trial holds as its own any
    /// more (it was reaped): [`Holder::Free`], [`Holder::Trial`] or
    /// [`Holder::Outside`].
    fn holder_of(&self, pid: i32) -> Holder {
        let Some(raw) = Pid::from_raw(pid) else {
            return Holder::Free;
        };
        let Ok(held) = pidfd_open(raw, PidfdFlags::empty()) else {
            return Holder::Free;
        };
        let holder = if self.of_trial(pid) {
            Holder::Trial
        } else {
            Holder::Outside(describe(pid))
        };
        // What /proc said is about the process the pidfd names only if it
        // still holds the PID.
        if pidns::pidfd_pid(held.as_fd()) == Some(pid) {
            holder
        } else {
            Holder::Free
        }
    }

    /// Whether `pid` is a process of this trial: a node or an adopted
    /// orphan (by its pidfd), a member of the trial cgroup, or a
    /// descendant of the supervisor.
    fn of_trial(&self, pid: i32) -> bool {
        let pidfds = self.procs.iter().filter_map(|p| p.pidfd.as_ref());
        pidfds
            .chain(self.adopted.iter())
            .any(|f| pidns::pidfd_pid(f.as_fd()) == Some(pid))
            || self
                .cgroup
                .as_ref()
                .and_then(|c| c.members().ok())
                .is_some_and(|m| m.contains(&pid))
            || descends_from_supervisor(pid)
    }

    /// After a kill by PID of `sig` to node `i`, seen held by `holder`
    /// just before it and `delivered` (`kill` did not answer `ESRCH`):
    /// record a kill that reached a process outside the trial.
    pub(super) fn judge_kill(
        &mut self,
        i: usize,
        sig: Sig,
        holder: Option<Holder>,
        delivered: bool,
    ) {
        let pid = self.procs[i].pid;
        let whom = match holder {
            Some(Holder::Outside(whom)) if delivered => whom,
            Some(Holder::Free) if delivered => match self.holder_of(pid) {
                Holder::Outside(whom) => format!("{whom}, which took the PID just before the kill"),
                _ => return,
            },
            _ => return,
        };
        let path = &self.plan().nodes[i].path;
        self.seen.stray_kills.push(format!(
            "a signal sent by PID ({}) to node {path}, reaped by then, reached pid {pid}: {whom}, \
             a process outside the trial (no PID namespace)",
            sig.name()
        ));
    }
}

impl Course<'_> {
    /// The members of process group `pgid` outside the trial, in words,
    /// just before a `kill(-pgid)`; empty when the supervisor is init of a
    /// PID namespace of its own (the group can hold only the trial's
    /// processes).
    pub(super) fn group_outsiders(&self, pgid: i32) -> Vec<String> {
        if pgid <= 0 || pidns::own_namespace() {
            return Vec::new();
        }
        let members = procfs::group_members(pgid).into_iter();
        members
            .filter(|&p| !self.of_trial(p))
            .map(|p| format!("pid {p}: {}", describe(p)))
            .collect()
    }

    /// After a `kill(-pgid)` of `sig` to the root's process group, which
    /// held `outsiders` ([`Course::group_outsiders`]) just before it and
    /// was `delivered` (`kill` did not answer `ESRCH`): record each
    /// process outside the trial that it reached.
    pub(super) fn judge_group_kill(&mut self, sig: Sig, outsiders: Vec<String>, delivered: bool) {
        if !delivered {
            return;
        }
        for whom in outsiders {
            self.seen.stray_kills.push(format!(
                "a signal sent to the root's process group ({}) reached {whom}, \
                 a process outside the trial (no PID namespace)",
                sig.name()
            ));
        }
    }
}

/// `pid` in words: its command line (else its name) and its parent.
fn describe(pid: i32) -> String {
    match procfs::scan_process(pid) {
        Some(p) => format!("`{}` (parent {})", p.cmdline.unwrap_or(p.comm), p.ppid),
        None => "a process that has ended since".to_string(),
    }
}

/// Whether the supervisor (this process) is an ancestor of `pid`: every
/// process of a trial descends from it, orphans included (they reparent to
/// it, the subreaper).
fn descends_from_supervisor(pid: i32) -> bool {
    let me = std::process::id() as i32;
    let mut p = pid;
    for _ in 0..MAX_ANCESTRY {
        match procfs::scan_process(p) {
            Some(s) if s.ppid == me => return true,
            Some(s) if s.ppid > 1 => p = s.ppid,
            _ => return false,
        }
    }
    false
}
