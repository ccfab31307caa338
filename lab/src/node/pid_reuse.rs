//! The PID-reuse experiment (casebook 8), run by a node in a private PID
//! namespace so that the reused PID can only ever name the lab's bystander.
//!
//! The node spawns a helper that unshares a new PID namespace and spawns its
//! init (PID 1 there). The init spawns a victim, lets it exit and reaps it,
//! writes `ns_last_pid` so that the next PID is the victim's, spawns a
//! bystander with that PID, and then signals the victim "again" the
//! strategy's way: `kill(pid)` (legacy) reaches the bystander;
//! `pidfd_send_signal` on the victim's pidfd (canonical) fails with `ESRCH`.
//! It then ends the bystander with SIGTERM through a pidfd and reads how it
//! died: by SIGKILL means the stale signal hit it.

use rustix::process::Signal;

use super::NodeCtx;
use crate::phase::Event;
use crate::strategy::Observe;
use lifeline::{legacy, Pidfd};

/// What the experiment found (the value of a `finding` report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The stale signal killed the bystander that got the reused PID.
    InnocentKill = 1,
    /// The stale signal was refused (`ESRCH`); the bystander was unharmed.
    Unharmed = 2,
    /// The PID was not handed out again; the experiment proves nothing.
    NoReuse = 3,
    /// No private PID namespace could be made (no privilege).
    NoPrivilege = 4,
}

impl Finding {
    /// From a report's value.
    pub fn from_value(v: i64) -> Option<Finding> {
        Some(match v {
            1 => Finding::InnocentKill,
            2 => Finding::Unharmed,
            3 => Finding::NoReuse,
            4 => Finding::NoPrivilege,
            _ => return None,
        })
    }
}

impl NodeCtx<'_> {
    /// Run the experiment for node `idx`; the finding is reported to the
    /// supervisor by the namespace's init.
    pub(super) fn pid_reuse(&self, idx: u32) {
        let Ok(mut helper) = self.spawn_outside(|| {
            let root = rustix::process::geteuid().is_root();
            if lifeline::unshare_pid_namespace(!root).is_err() {
                let _ = self.report_finding(idx, Finding::NoPrivilege);
                return 0;
            }
            match self.spawn_outside(|| self.ns_init(idx)) {
                Ok(mut init) => {
                    super::wait::reap(&mut init);
                    0
                }
                Err(_) => 1,
            }
        }) else {
            return;
        };
        super::wait::reap(&mut helper);
    }

    fn report_finding(&self, idx: u32, f: Finding) -> std::io::Result<()> {
        crate::phase::send(self.report, idx, Event::Finding, f as i64, None)
    }

    /// PID 1 of the private namespace: the experiment itself.
    fn ns_init(&self, idx: u32) -> i32 {
        let Ok(mut victim) = self.spawn_outside(|| 0) else {
            return 1;
        };
        let victim_pid = victim.pid;
        // Canonical: keep the victim's pidfd after the reap; legacy: its PID.
        let stale: Option<Pidfd> = victim.pidfd.take();
        match &stale {
            Some(p) => {
                let _ = p.wait();
            }
            None => {
                let _ = legacy::waitpid_blocking(victim_pid);
            }
        }
        if std::fs::write("/proc/sys/kernel/ns_last_pid", (victim_pid - 1).to_string()).is_err() {
            let _ = self.report_finding(idx, Finding::NoPrivilege);
            return 0;
        }
        let Ok(bystander) = self.spawn_outside(|| lifeline::block_forever()) else {
            return 1;
        };
        let Ok(watch) = legacy::pidfd_of_child(bystander.pid) else {
            return 1;
        };
        if bystander.pid != victim_pid {
            let _ = watch.send_signal(Signal::KILL);
            let _ = watch.wait();
            let _ = self.report_finding(idx, Finding::NoReuse);
            return 0;
        }
        match (self.strategy.observe, &stale) {
            (Observe::Pidfd, Some(p)) => {
                let _ = p.send_signal(Signal::KILL);
            }
            _ => {
                let _ = legacy::kill_pid(victim_pid, Signal::KILL);
            }
        }
        let _ = watch.send_signal(Signal::TERM);
        let finding = match watch.wait() {
            Ok(lifeline::ExitStatus::Signaled(9)) => Finding::InnocentKill,
            _ => Finding::Unharmed,
        };
        let _ = self.report_finding(idx, finding);
        0
    }
}
