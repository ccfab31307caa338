//! The node: one process of a trial's tree. It reports its phases, waits at
//! its gate if the plan holds it there, arms its parent-death detection the
//! way the strategy says, spawns its children, and then lingers until its
//! parent dies or waits for its children and exits.
//!
//! Nodes do not exec: each is a copy of its single-threaded parent (the
//! supervisor or another node), so every lock was free at the copy and
//! ordinary code is safe in the child.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{getpid, getppid, Signal};

use crate::plan::Plan;
use crate::report::{self, Event};
use crate::scenario::Phase;
use crate::strategy::{Create, Observe, ParentDeath, Strategy};
use crate::sys::{self, legacy, LifelineReader, Pidfd, Spawn};

/// Exit code of a node that could not go on (spawn failed, report lost).
pub const EXIT_FAILED: i32 = 70;

/// What every node of one trial shares: the plan, the strategy, the report
/// channel and the gates. Copied into each node by its creation.
#[derive(Debug)]
pub struct NodeCtx<'a> {
    /// The plan of the trial.
    pub plan: &'a Plan,
    /// The strategy of the trial.
    pub strategy: &'a Strategy,
    /// The node end of the report channel.
    pub report: BorrowedFd<'a>,
    /// Read end of the gate of each node that has one: `(node, fd)`.
    pub gates: Vec<(u32, BorrowedFd<'a>)>,
}

/// A child as its parent holds it, by the strategy's create axis.
#[derive(Debug)]
pub enum ChildHandle {
    /// From `clone3`: a pidfd and the lifeline's write end.
    Canonical(sys::Child),
    /// From `fork`: a PID.
    Forked(i32),
}

impl ChildHandle {
    /// The child's PID.
    pub fn pid(&self) -> i32 {
        match self {
            ChildHandle::Canonical(c) => c.pidfd().pid(),
            ChildHandle::Forked(pid) => *pid,
        }
    }
}

impl NodeCtx<'_> {
    /// Create node `idx` as a child of the calling process, the strategy's
    /// way. `before` runs first in the child (the supervisor uses it to put a
    /// forked root into the trial's cgroup); `cgroup` places a cloned child
    /// into that cgroup directory from its first instruction.
    ///
    /// # Errors
    /// Errors of clone3 or fork (`EAGAIN`, `ENOMEM`, `EDEADLK` from a
    /// multithreaded caller under clone3).
    pub fn spawn(
        &self,
        idx: u32,
        cgroup: Option<BorrowedFd<'_>>,
        before: &dyn Fn(),
    ) -> io::Result<ChildHandle> {
        match self.strategy.create {
            Create::Clone3 => {
                let mut sp = Spawn::default().keep(self.report);
                for (_, fd) in &self.gates {
                    sp = sp.keep(*fd);
                }
                if let Some(dir) = cgroup {
                    sp = sp.into_cgroup(dir);
                }
                let child = sp.run(|fds| {
                    before();
                    self.run(idx, Some(fds.lifeline), 0)
                })?;
                Ok(ChildHandle::Canonical(child))
            }
            Create::Fork => {
                let parent = getpid().as_raw_nonzero().get();
                let pid = legacy::fork_run(|| {
                    before();
                    self.run(idx, None, parent)
                })?;
                Ok(ChildHandle::Forked(pid))
            }
        }
    }

    /// The life of node `idx`, in the child; returns its exit code.
    /// `parent_pid` is the parent's PID as the parent saw it before the fork
    /// (for the `getppid()` check).
    fn run(&self, idx: u32, lifeline: Option<LifelineReader>, parent_pid: i32) -> i32 {
        let node = &self.plan.nodes[idx as usize];
        let Ok(me) = Pidfd::open_self() else {
            return EXIT_FAILED;
        };
        if self.send(idx, Event::Created, 0, Some(&me)).is_err() {
            return EXIT_FAILED;
        }
        drop(me);
        if node.gate == Some(Phase::Created) {
            self.wait_gate(idx);
        }
        if self.arm(lifeline.as_ref(), parent_pid) {
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        let _ = self.send(idx, Event::Armed, 0, None);
        if node.gate == Some(Phase::Armed) {
            self.wait_gate(idx);
        }
        let mut children = Vec::with_capacity(node.children.len());
        for &c in &node.children {
            match self.spawn(c, None, &|| {}) {
                Ok(h) => children.push(h),
                Err(e) => {
                    let _ = self.send(
                        idx,
                        Event::Failed,
                        e.raw_os_error().unwrap_or(0) as i64,
                        None,
                    );
                    return EXIT_FAILED;
                }
            }
        }
        let _ = self.send(idx, Event::Ready, 0, None);
        if node.linger {
            self.wait_parent_death(lifeline.as_ref());
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        if !self.wait_children(children, lifeline.as_ref()) {
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        if node.exit_delay_us > 0 {
            let delay = Duration::from_micros(node.exit_delay_us);
            match &lifeline {
                Some(l) if l.wait_parent_gone(Some(delay)) => {
                    let _ = self.send(idx, Event::ParentGone, 0, None);
                    return 0;
                }
                Some(_) => {}
                None => std::thread::sleep(delay),
            }
        }
        let _ = self.send(idx, Event::Exiting, node.exit_code as i64, None);
        node.exit_code as i32
    }

    fn send(&self, idx: u32, event: Event, value: i64, pidfd: Option<&Pidfd>) -> io::Result<()> {
        report::send(self.report, idx, event, value, pidfd)
    }

    /// Block at the gate until the supervisor writes a byte; if the
    /// supervisor is gone (EOF), end here.
    fn wait_gate(&self, idx: u32) {
        let Some((_, fd)) = self.gates.iter().find(|(n, _)| *n == idx) else {
            return;
        };
        let mut byte = [0u8; 1];
        loop {
            match rustix::io::read(fd, &mut byte) {
                Ok(1) => return,
                Err(rustix::io::Errno::INTR) => continue,
                _ => sys::exit_now(EXIT_FAILED),
            }
        }
    }

    /// Arm parent-death detection; returns true when the parent is already
    /// known to be gone.
    fn arm(&self, lifeline: Option<&LifelineReader>, parent_pid: i32) -> bool {
        match self.strategy.death {
            ParentDeath::Lifeline => lifeline.is_some_and(|l| l.parent_gone()),
            ParentDeath::Pdeathsig => {
                let _ = sys::arm_pdeathsig(Signal::KILL);
                false
            }
            ParentDeath::PdeathsigChecked => {
                let _ = sys::arm_pdeathsig(Signal::KILL);
                getppid().map_or(0, |p| p.as_raw_nonzero().get()) != parent_pid
            }
            ParentDeath::None => false,
        }
    }

    /// Linger: return once the parent's death is detected. With PDEATHSIG or
    /// nothing, only a signal ends the wait.
    fn wait_parent_death(&self, lifeline: Option<&LifelineReader>) {
        match (self.strategy.death, lifeline) {
            (ParentDeath::Lifeline, Some(l)) => {
                l.wait_parent_gone(None);
            }
            _ => sys::block_forever(),
        }
    }

    /// Wait for every child to exit and reap it, the strategy's way. Returns
    /// false when the lifeline reported the parent's death first.
    fn wait_children(&self, children: Vec<ChildHandle>, lifeline: Option<&LifelineReader>) -> bool {
        match self.strategy.observe {
            Observe::Pid => {
                for c in &children {
                    let _ = legacy::waitpid_blocking(c.pid());
                }
                true
            }
            Observe::Pidfd => {
                let mut live: Vec<sys::Child> = children
                    .into_iter()
                    .filter_map(|c| match c {
                        ChildHandle::Canonical(c) => Some(c),
                        ChildHandle::Forked(pid) => {
                            let _ = legacy::waitpid_blocking(pid);
                            None
                        }
                    })
                    .collect();
                while !live.is_empty() {
                    let mut fds: Vec<PollFd<'_>> = live
                        .iter()
                        .map(|c| PollFd::new(c.pidfd(), PollFlags::IN))
                        .collect();
                    if let Some(l) = lifeline {
                        fds.push(PollFd::new(l, PollFlags::empty()));
                    }
                    if poll(&mut fds, None).is_err() {
                        continue;
                    }
                    if lifeline.is_some() && !fds[live.len()].revents().is_empty() {
                        return false;
                    }
                    let exited: Vec<bool> = fds[..live.len()]
                        .iter()
                        .map(|f| !f.revents().is_empty())
                        .collect();
                    drop(fds);
                    let mut i = 0;
                    live.retain(|c| {
                        let keep = !exited[i] || c.pidfd().try_wait().map_or(true, |s| s.is_none());
                        i += 1;
                        keep
                    });
                }
                true
            }
        }
    }
}
