//! Waiting for children, the observe axis's way, and reading their captured
//! stdout with the read discipline that goes with it.
//!
//! - `pidfd` (canonical): poll the children's pidfds, their stdout pipes and
//!   the node's lifeline together; read whatever arrives while waiting; once a
//!   child is reaped, wait at most [`EOF_BOUND`] for its pipe's EOF and, if a
//!   writer still holds it, report a leak and stop reading.
//! - `proc` (legacy): one child after the other, `waitpid` and blocking
//!   reads in the order the scenario's `read` says.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use super::create::{ChildHandle, Children};
use super::NodeCtx;
use crate::phase::Event;
use crate::scenario::ReadDiscipline;
use crate::strategy::Observe;
use lifeline::{legacy, LifelineReader};

/// How long the canonical read discipline waits for a reaped child's stdout
/// to reach EOF before it calls the remaining writer a leak.
pub const EOF_BOUND: Duration = Duration::from_millis(20);

/// The bits of a leak report's value that hold the pipe's inode; the child's
/// node index sits above them.
pub const LEAK_INODE_BITS: u32 = 40;

impl NodeCtx<'_> {
    /// Wait for every child to exit and reap it, reading captured stdout.
    /// Returns false when the lifeline reported the parent's death first.
    pub(super) fn wait_children(
        &self,
        idx: u32,
        children: Children,
        lifeline: Option<&LifelineReader>,
    ) -> bool {
        match self.strategy.observe {
            Observe::Pid => {
                let read = self.plan.nodes[idx as usize].read;
                for mut c in children {
                    if read == ReadDiscipline::ToEof {
                        self.audit_before_eof(idx, &c);
                        drain_blocking(c.stdout.take());
                    }
                    let status = reap(&mut c);
                    self.report_exit(&c, status);
                    self.audit_before_eof(idx, &c);
                    drain_blocking(c.stdout.take());
                }
                true
            }
            Observe::Pidfd => self.wait_polling(idx, children, lifeline),
        }
    }

    fn wait_polling(
        &self,
        idx: u32,
        mut children: Children,
        lifeline: Option<&LifelineReader>,
    ) -> bool {
        // Per child: reaped yet, and since when its pipe waits for EOF.
        let mut reaped = vec![false; children.len()];
        let mut eof_wait: Vec<Option<Instant>> = vec![None; children.len()];
        loop {
            let open: Vec<usize> = (0..children.len())
                .filter(|&i| !reaped[i] || children[i].stdout.is_some())
                .collect();
            if open.is_empty() {
                return true;
            }
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            let mut what: Vec<(usize, bool)> = Vec::new(); // (child, is_pipe)
            for &i in &open {
                let c = &children[i];
                if !reaped[i] {
                    if let Some(p) = &c.pidfd {
                        fds.push(PollFd::new(p, PollFlags::IN));
                        what.push((i, false));
                    }
                }
                if let Some(out) = &c.stdout {
                    fds.push(PollFd::new(out, PollFlags::IN));
                    what.push((i, true));
                }
            }
            if let Some(l) = lifeline {
                fds.push(PollFd::new(l, PollFlags::empty()));
            }
            let timeout = eof_wait
                .iter()
                .flatten()
                .map(|t| (*t + EOF_BOUND).saturating_duration_since(Instant::now()))
                .min();
            let ts = timeout.map(|d| rustix::time::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as i64,
            });
            if let Err(e) = poll(&mut fds, ts.as_ref()) {
                if e != rustix::io::Errno::INTR {
                    return true;
                }
                continue;
            }
            if lifeline.is_some() && !fds[what.len()].revents().is_empty() {
                return false;
            }
            let ready: Vec<(usize, bool)> = what
                .iter()
                .zip(fds.iter())
                .filter(|(_, f)| !f.revents().is_empty())
                .map(|(w, _)| *w)
                .collect();
            drop(fds);
            for (i, is_pipe) in ready {
                let c = &mut children[i];
                if is_pipe {
                    if !read_some(c.stdout.as_ref().expect("polled")) {
                        c.stdout = None; // EOF: every writer is gone
                    }
                } else if let Some(status) =
                    c.pidfd.as_ref().and_then(|p| p.try_wait().ok().flatten())
                {
                    reaped[i] = true;
                    self.report_exit(c, Some(status));
                    if c.stdout.is_some() {
                        self.audit_before_eof(idx, c);
                        eof_wait[i] = Some(Instant::now());
                    }
                }
            }
            for i in 0..children.len() {
                let Some(since) = eof_wait[i] else { continue };
                if children[i].stdout.is_none() {
                    eof_wait[i] = None;
                } else if since.elapsed() >= EOF_BOUND {
                    let out = children[i].stdout.take().expect("checked");
                    if !writers_gone(&out) {
                        self.report_leak(idx, children[i].node, &out);
                    }
                    eof_wait[i] = None;
                }
            }
        }
    }

    /// With the guards on, the audit before node `idx` waits for the EOF of
    /// child `c`'s captured stdout (if it has one): see
    /// [`NodeCtx::audit_capture`].
    fn audit_before_eof(&self, idx: u32, c: &ChildHandle) {
        if let (true, Some(out)) = (self.strategy.guards, &c.stdout) {
            self.audit_capture(idx, c.node, out);
        }
    }

    /// A reaped child that is a command node: report how it ended on its
    /// behalf (the supervisor judges its status against `expect_exit`).
    fn report_exit(&self, c: &ChildHandle, status: Option<lifeline::ExitStatus>) {
        let (Some(node), Some(status)) = (c.node, status) else {
            return;
        };
        if self.plan.nodes[node as usize].command.is_some() {
            let value = crate::phase::exit_value(status);
            let _ = crate::phase::send_as(self.report, node, c.pid, Event::Exited, value, None);
        }
    }

    /// A reaped child's stdout still has a writer: report the pipe's inode
    /// (the supervisor names the holders) and stop reading it.
    fn report_leak(&self, idx: u32, child: Option<u32>, out: &OwnedFd) {
        let inode = rustix::fs::fstat(out).map_or(0, |st| st.st_ino);
        let value = ((child.unwrap_or(0) as i64) << LEAK_INODE_BITS)
            | (inode as i64 & ((1i64 << LEAK_INODE_BITS) - 1));
        let _ = crate::phase::send(self.report, idx, Event::Leak, value, None);
    }
}

/// Read what is there without blocking past it; false at EOF.
///
/// Never inlined: its 16 KiB buffer would otherwise sit in the frame of
/// [`NodeCtx::run`], whose stack probe then touches (copy-on-write faults)
/// four stack pages in every node, reading or not.
#[inline(never)]
fn read_some(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 16384];
    match rustix::io::read(fd, &mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => true,
        Err(_) => false,
    }
}

/// Whether every write end of the pipe is closed: the kernel reports
/// `POLLHUP` on the read end exactly then.
fn writers_gone(fd: &OwnedFd) -> bool {
    lifeline::poll_now(fd.as_fd(), PollFlags::IN).is_ok_and(|r| r.contains(PollFlags::HUP))
}

/// Read the pipe to EOF, blocking as long as any writer holds it. Never
/// inlined, as [`read_some`].
#[inline(never)]
fn drain_blocking(fd: Option<OwnedFd>) {
    let Some(fd) = fd else { return };
    let mut buf = [0u8; 16384];
    loop {
        match rustix::io::read(fd.as_fd(), &mut buf) {
            Ok(0) => return,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Wait for one child and reap it: through its pidfd if it has one, else
/// the legacy way (std's `wait`, or `waitpid`). Returns how it ended, when
/// that is known.
pub(super) fn reap(c: &mut ChildHandle) -> Option<lifeline::ExitStatus> {
    if let Some(cmd) = &mut c.command {
        use std::os::unix::process::ExitStatusExt;
        let s = cmd.wait().ok()?;
        return match (s.code(), s.signal()) {
            (Some(code), _) => Some(lifeline::ExitStatus::Exited(code)),
            (_, Some(sig)) => Some(lifeline::ExitStatus::Signaled(sig)),
            _ => None,
        };
    }
    if let Some(p) = &c.pidfd {
        return p.wait().ok();
    }
    // ECHILD: not a child of ours any more, nothing to reap.
    legacy::waitpid_blocking(c.pid).ok().flatten()
}
