//! Ending a trial with nothing of it alive: `cgroup.kill`, SIGKILL through
//! every pidfd, then adopting and killing orphans as they reparent, reaping
//! until the supervisor has no child left.

use super::Course;
use lifeline::Reaped;
use rustix::process::Signal;

impl Course<'_> {
    /// End every process of the trial and reap it: `cgroup.kill`, SIGKILL
    /// through the pidfd of every node not seen dead, then adopt and kill
    /// orphans as they reparent, reaping until the supervisor has no child
    /// left. The gates close last.
    ///
    /// After a `cgroup.kill` that the kernel took, or with the cgroup
    /// already empty, every process of the trial is dying or dead (and any
    /// it forks meanwhile is killed too): the orphans need no adopting,
    /// only reaping as they reparent.
    pub(super) fn cleanup(&mut self) {
        // An empty cgroup is left unkilled, so the next trial can reuse it
        // (`TrialCgroup::reusable`): nothing can join it meanwhile but what
        // this supervisor puts there.
        let all_killed = self
            .cgroup
            .as_mut()
            .is_some_and(|cg| cg.populated().is_ok_and(|p| !p) || cg.kill().is_ok());
        // A node whose pidfd showed its exit (`dead_ns`) has nothing left
        // to kill.
        let live = self.procs.iter().zip(&self.seen.nodes);
        for (p, _) in live.filter(|(_, n)| n.dead_ns.is_none()) {
            let _ = p.pidfd.as_ref().map(|f| f.send_signal(Signal::KILL));
        }
        for p in self.adopted.drain(..) {
            let _ = p.send_signal(Signal::KILL);
        }
        loop {
            if !all_killed {
                if let Ok(kids) = lifeline::adopt_children() {
                    for k in kids {
                        let _ = k.send_signal(Signal::KILL);
                    }
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
