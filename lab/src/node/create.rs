//! Creating a child the strategy's way: the create axis (clone3, fork,
//! fork without exec, `std::process::Command`), with the parent-death axis's
//! part that belongs to creation (a lifeline made before the child exists,
//! or a leaky one), stdout capture, and exec of the lab's node program or of
//! an external command.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Stdio;

use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::getpid;

use super::{NodeCtx, Start, BOOT_FD, FIRST_GATE_FD, LIFELINE_FD, NOTIFY_FD, REPORT_FD};
use crate::phase::Event;
use crate::strategy::{Create, Observe, ParentDeath};
use lifeline::{legacy, LifelineReader, Pidfd, Spawn};

/// The fd at which a command node (an external program) finds the read end
/// of its lifeline under the canonical strategy.
pub const COMMAND_LIFELINE_FD: RawFd = 3;

/// A node's children, inline up to 4: spawning them allocates nothing (no
/// copy-on-write fault in the heap of a spawning copy).
pub(crate) type Children = smallvec::SmallVec<[ChildHandle; 4]>;

/// A child as its parent holds it.
#[derive(Debug)]
pub struct ChildHandle {
    /// Index of the child in the plan; `None` for a process outside it.
    pub node: Option<u32>,
    /// Its PID.
    pub pid: i32,
    /// Its pidfd: from clone3, or opened on the unreaped child (fork and
    /// std paths) when the strategy observes through pidfds.
    pub pidfd: Option<Pidfd>,
    /// The write end of its lifeline, held until the parent exits.
    pub lifeline: Option<OwnedFd>,
    /// The standard library's handle, for `std-command`.
    pub command: Option<std::process::Child>,
    /// The read end of its captured stdout.
    pub stdout: Option<OwnedFd>,
}

impl ChildHandle {
    fn new(node: Option<u32>, pid: i32) -> Self {
        ChildHandle {
            node,
            pid,
            pidfd: None,
            lifeline: None,
            command: None,
            stdout: None,
        }
    }

    /// A child whose pidfd its parent keeps elsewhere: only the write end
    /// of its lifeline is held here (the supervisor's handle on a program
    /// it runs as a trial's root).
    pub(crate) fn holding(pid: i32, lifeline: OwnedFd) -> Self {
        let mut h = ChildHandle::new(None, pid);
        h.lifeline = Some(lifeline);
        h
    }

    fn canonical(node: Option<u32>, child: lifeline::Child) -> Self {
        let (pidfd, lifeline) = child.into_parts();
        let mut h = ChildHandle::new(node, pidfd.pid());
        h.pidfd = Some(pidfd);
        h.lifeline = Some(lifeline);
        h
    }
}

impl NodeCtx<'_> {
    /// Create node `idx` as a child of the calling process, the strategy's
    /// way. `cgroup` places a cloned child there from its first instruction;
    /// `notify` is handed to the child, which writes one byte to it once its
    /// parent-death detection is armed.
    ///
    /// `in_child` runs **in the child, after the fork/clone**, never in the
    /// caller, and only when the node is a copy of the caller (no exec; an
    /// exec'd node or a command ignores it). It runs first, before the node's
    /// life (the supervisor uses it to put a forked root into the trial's
    /// cgroup and to make it a process group leader). Under `clone3` the
    /// caller is single-threaded (checked by the canonical primitive), and
    /// the fds not kept are already closed; under the legacy fork paths the
    /// copy may come from a multithreaded process and holds every fd. So it
    /// may only make raw, async-signal-safe syscalls (`write` to an fd it
    /// borrows, `setpgid`, `close_range` of fds whose owners the child never
    /// uses again): no allocation, no lock, no drop of a value of the caller.
    ///
    /// # Errors
    /// Errors of clone3, fork, exec or pipe; `EDEADLK` when the canonical
    /// primitive is asked for a copy (no exec) of a multithreaded caller.
    pub fn spawn(
        &self,
        idx: u32,
        cgroup: Option<BorrowedFd<'_>>,
        in_child: &dyn Fn(),
        notify: Option<BorrowedFd<'_>>,
    ) -> io::Result<ChildHandle> {
        let node = &self.plan.nodes[idx as usize];
        let capture = if node.capture {
            let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
            Some((lifeline::move_high(r)?, lifeline::move_high(w)?))
        } else {
            None
        };
        let (out_read, out_write) = match capture {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let mut handle = if let Some(cmd) = &node.command {
            let h = self.spawn_command(idx, cmd, out_write)?;
            self.report_command(idx, &h);
            h
        } else if node.parent.is_some() && self.strategy.create.execs(node.exec) {
            self.spawn_exec(idx, out_write, notify, None)?
        } else {
            self.spawn_copy(idx, cgroup, in_child, out_write, notify)?
        };
        if handle.pidfd.is_none() && self.strategy.observe == Observe::Pidfd {
            handle.pidfd = Some(legacy::pidfd_of_child(handle.pid)?);
        }
        handle.stdout = out_read;
        Ok(handle)
    }

    /// The root as a fresh exec of the lab's node program, created with
    /// clone3 (into `cgroup` when given) and the canonical lifeline: how the
    /// `clone3` create axis starts the root from a host that has threads (a
    /// suite's test process after a member started a worker there), where a
    /// copy would inherit the host's globals without their threads and
    /// clone3 refuses to make one (`EDEADLK`).
    ///
    /// # Errors
    /// Errors of clone3, exec or pipe; `EINVAL` when the strategy's create
    /// axis is not `clone3` or no boot record was made.
    pub fn exec_root(&self, cgroup: Option<BorrowedFd<'_>>) -> io::Result<ChildHandle> {
        if self.strategy.create != Create::Clone3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only the clone3 create axis execs the root",
            ));
        }
        self.spawn_exec(0, None, None, cgroup)
    }

    /// A process outside the plan that runs `f` as a copy of the caller,
    /// created the strategy's way (helpers and daemons). Under the canonical
    /// strategy it has a lifeline like every child; what it does with it is
    /// up to `f`.
    ///
    /// # Errors
    /// As [`NodeCtx::spawn`].
    pub(super) fn spawn_outside<F: FnOnce() -> i32>(&self, f: F) -> io::Result<ChildHandle> {
        match self.strategy.create {
            Create::Clone3 => Ok(ChildHandle::canonical(None, Spawn::default().run(|_| f())?)),
            _ => {
                let pid = legacy::fork_run(f)?;
                let mut h = ChildHandle::new(None, pid);
                if self.strategy.observe == Observe::Pidfd {
                    h.pidfd = Some(legacy::pidfd_of_child(pid)?);
                }
                Ok(h)
            }
        }
    }

    /// A copy of the caller that runs node `idx`; `in_child` runs first in
    /// the child (see [`NodeCtx::spawn`] for what it may do).
    fn spawn_copy(
        &self,
        idx: u32,
        cgroup: Option<BorrowedFd<'_>>,
        in_child: &dyn Fn(),
        out_write: Option<OwnedFd>,
        notify: Option<BorrowedFd<'_>>,
    ) -> io::Result<ChildHandle> {
        let parent_pid = getpid().as_raw_nonzero().get();
        // Runs in the child (a copy), never in the caller.
        let body = |lifeline: Option<LifelineReader>| {
            in_child();
            self.run(
                idx,
                Start {
                    lifeline,
                    parent_pid,
                    notify,
                },
            )
        };
        // In a forked child: the captured pipe becomes stdout, and the
        // original fd is closed.
        let redirect = |w: Option<OwnedFd>| {
            if let Some(w) = w {
                let _ = rustix::stdio::dup2_stdout(&w);
            }
        };
        match (self.strategy.create, self.strategy.death) {
            (Create::Clone3, _) => {
                let mut sp = self.keep_all(Spawn::default());
                if let Some(w) = &out_write {
                    sp = sp.stdout(w.as_fd());
                }
                if let Some(n) = notify {
                    sp = sp.keep(n);
                }
                if let Some(dir) = cgroup {
                    sp = sp.into_cgroup(dir);
                }
                let child = match sp.run(|fds| body(Some(fds.lifeline))) {
                    Err(e) if e.raw_os_error() == Some(libc::EDEADLK) && self.strategy.guards => {
                        self.refused_at_spawn(idx)
                    }
                    spawned => spawned?,
                };
                Ok(ChildHandle::canonical(Some(idx), child))
            }
            (_, ParentDeath::Lifeline) => {
                let child = legacy::fork_with_leaky_lifeline(|lifeline| {
                    redirect(out_write);
                    body(Some(lifeline))
                })?;
                Ok(ChildHandle::canonical(Some(idx), child))
            }
            _ => {
                let pid = legacy::fork_run(|| {
                    redirect(out_write);
                    body(None)
                })?;
                Ok(ChildHandle::new(Some(idx), pid))
            }
        }
    }

    /// The spawn-time guard: clone3 refused (`EDEADLK`) to make node `idx` a
    /// copy of the calling node, which has more threads than the plan says
    /// (an exec'd node that started an attendant of its own, say). Panics
    /// here, in the node, so the verdict names this site.
    fn refused_at_spawn(&self, idx: u32) -> ! {
        let nodes = &self.plan.nodes;
        let child = &nodes[idx as usize];
        let parent = child
            .parent
            .map_or("the supervisor", |p| nodes[p as usize].path.as_str());
        let threads =
            lifeline::thread_count().map_or_else(|_| "several".to_string(), |n| n.to_string());
        // No signature: nothing is stuck yet, the refusal prevents it.
        panic!(
            "refused at spawn time: node {parent} is multithreaded ({threads} threads) and asked \
             clone3 for a copy of itself (no exec) as node {}; a copy would inherit locks and \
             globals without their threads. Set exec = true on {}",
            child.path, child.path
        )
    }

    fn keep_all<'s>(&'s self, mut sp: Spawn<'s>) -> Spawn<'s> {
        sp = sp.keep(self.report);
        for (_, fd) in self.gates.iter().chain(&self.logs) {
            sp = sp.keep(*fd);
        }
        if let Some(b) = self.boot {
            sp = sp.keep(b);
        }
        sp
    }

    /// Node `idx` as a fresh exec of the lab's node program, with the fds
    /// of the exec'd node layout (see [`super::boot`]); under `clone3`, it
    /// starts in `cgroup` when one is given.
    fn spawn_exec(
        &self,
        idx: u32,
        out_write: Option<OwnedFd>,
        notify: Option<BorrowedFd<'_>>,
        cgroup: Option<BorrowedFd<'_>>,
    ) -> io::Result<ChildHandle> {
        let boot = self.boot.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no boot fd for an exec'd node")
        })?;
        let parent_pid = getpid().as_raw_nonzero().get();
        let mut map: Vec<(BorrowedFd<'_>, RawFd)> = vec![(self.report, REPORT_FD), (boot, BOOT_FD)];
        for (k, (_, fd)) in self.gates.iter().chain(&self.logs).enumerate() {
            map.push((*fd, FIRST_GATE_FD + k as RawFd));
        }
        if let Some(n) = notify {
            map.push((n, NOTIFY_FD));
        }
        let lifeline = self.strategy.death == ParentDeath::Lifeline;
        let mut args = vec![
            "lab".to_string(),
            super::boot::MODE_ARG.to_string(),
            idx.to_string(),
            parent_pid.to_string(),
        ];
        if lifeline {
            args.push("--lifeline".into());
        }
        if notify.is_some() {
            args.push("--notify".into());
        }
        let program = CString::new("/proc/self/exe").expect("no NUL");
        let cargs = cstrings(&args);
        let refs: Vec<&std::ffi::CStr> = cargs.iter().map(|c| c.as_c_str()).collect();
        match self.strategy.create {
            Create::Clone3 => {
                if let Some(w) = &out_write {
                    map.push((w.as_fd(), 1));
                }
                let mut sp = Spawn::default();
                if let Some(dir) = cgroup {
                    sp = sp.into_cgroup(dir);
                }
                let child = sp.exec(&program, &refs, &map, LIFELINE_FD)?;
                Ok(ChildHandle::canonical(Some(idx), child))
            }
            Create::StdCommand => {
                let mut cmd = std::process::Command::new("/proc/self/exe");
                cmd.args(&args[1..]);
                let pipe = lifeline
                    .then(|| pipe_with(PipeFlags::CLOEXEC))
                    .transpose()?;
                let mut raw = raw_map(&map);
                if let Some((r, _)) = &pipe {
                    raw.push((r.as_raw_fd(), LIFELINE_FD));
                }
                if let Some(w) = out_write {
                    cmd.stdout(Stdio::from(w));
                }
                let child = legacy::command_spawn(&mut cmd, raw)?;
                let mut h = ChildHandle::new(Some(idx), child.id() as i32);
                h.command = Some(child);
                h.lifeline = pipe.map(|(_, w)| w);
                Ok(h)
            }
            Create::Fork | Create::ForkNoexec => {
                // The legacy lifeline: made without close-on-exec, so the
                // write end goes through the exec too.
                let leaky = lifeline
                    .then(|| pipe_with(PipeFlags::empty()))
                    .transpose()?;
                let leaky = leaky
                    .map(|(r, w)| Ok::<_, io::Error>((lifeline::move_high(r)?, w)))
                    .transpose()?;
                let mut raw = raw_map(&map);
                if let Some((r, _)) = &leaky {
                    raw.push((r.as_raw_fd(), LIFELINE_FD));
                }
                if let Some(w) = &out_write {
                    raw.push((w.as_raw_fd(), 1));
                }
                let pid = legacy::fork_exec(&program, &refs, &raw, None, None)?;
                let mut h = ChildHandle::new(Some(idx), pid);
                h.lifeline = leaky.map(|(_, w)| w);
                Ok(h)
            }
        }
    }

    /// A command node: exec the external program `cmd` in its place.
    fn spawn_command(
        &self,
        idx: u32,
        cmd: &[String],
        out_write: Option<OwnedFd>,
    ) -> io::Result<ChildHandle> {
        let program = lifeline::resolve_program(&cmd[0])?;
        let cargs = cstrings(cmd);
        let refs: Vec<&std::ffi::CStr> = cargs.iter().map(|c| c.as_c_str()).collect();
        let parent_pid = getpid().as_raw_nonzero().get();
        // Its log file, when it has one: stderr, and stdout unless captured.
        let log = self.logs.iter().find(|(n, _)| *n == idx).map(|(_, fd)| *fd);
        let stdout = out_write.as_ref().map(|w| w.as_fd()).or(log);
        let mut streams: Vec<(BorrowedFd<'_>, RawFd)> = stdout.iter().map(|f| (*f, 1)).collect();
        streams.extend(log.map(|f| (f, 2)));
        match (self.strategy.create, self.strategy.death) {
            (Create::Clone3, _) => {
                let child =
                    Spawn::default().exec(&program, &refs, &streams, COMMAND_LIFELINE_FD)?;
                Ok(ChildHandle::canonical(Some(idx), child))
            }
            (Create::StdCommand, _) => {
                let mut c = std::process::Command::new(&cmd[0]);
                c.args(&cmd[1..]);
                if let Some(w) = out_write {
                    c.stdout(Stdio::from(w));
                } else if let Some(l) = log {
                    c.stdout(Stdio::from(l.try_clone_to_owned()?));
                }
                if let Some(l) = log {
                    c.stderr(Stdio::from(l.try_clone_to_owned()?));
                }
                let child = c.spawn()?;
                let mut h = ChildHandle::new(Some(idx), child.id() as i32);
                h.command = Some(child);
                Ok(h)
            }
            (_, death) => {
                let mut map = raw_map(&streams);
                let leaky = (death == ParentDeath::Lifeline)
                    .then(|| pipe_with(PipeFlags::empty()))
                    .transpose()?;
                if let Some((r, _)) = &leaky {
                    map.push((r.as_raw_fd(), COMMAND_LIFELINE_FD));
                }
                let (sig, expect) = match death {
                    ParentDeath::Pdeathsig => (Some(rustix::process::Signal::KILL), None),
                    ParentDeath::PdeathsigChecked => {
                        (Some(rustix::process::Signal::KILL), Some(parent_pid))
                    }
                    _ => (None, None),
                };
                let pid = legacy::fork_exec(&program, &refs, &map, sig, expect)?;
                let mut h = ChildHandle::new(Some(idx), pid);
                h.lifeline = leaky.map(|(_, w)| w);
                Ok(h)
            }
        }
    }

    /// Report a command node's phases on its behalf: it cannot. It is
    /// created, armed (whatever its creation gave it) and ready at once.
    fn report_command(&self, idx: u32, h: &ChildHandle) {
        let opened;
        let pidfd = match &h.pidfd {
            Some(p) => Some(p),
            None => {
                opened = legacy::pidfd_of_child(h.pid).ok();
                opened.as_ref()
            }
        };
        for ev in [Event::Created, Event::Armed, Event::Ready] {
            let fd = if ev == Event::Created { pidfd } else { None };
            let _ = crate::phase::send_as(self.report, idx, h.pid, ev, 0, fd);
        }
    }
}

fn raw_map(map: &[(BorrowedFd<'_>, RawFd)]) -> Vec<(RawFd, RawFd)> {
    map.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect()
}

fn cstrings(args: &[String]) -> Vec<CString> {
    args.iter()
        .map(|a| CString::new(a.as_bytes()).expect("arguments are checked for NUL"))
        .collect()
}
