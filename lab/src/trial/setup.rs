//! Setting a trial up: its cgroup, the host's own action, the phase
//! channel, the gates, the boot record of exec'd nodes, and spawning the
//! root the strategy's way.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::pipe::{pipe_with, PipeFlags};

use super::output::{Stream, Streams};
use super::protocol::TrialRequest;
use super::Course;
use crate::cgroup::TrialCgroup;
use crate::node::boot::Boot;
use crate::node::{ChildHandle, NodeCtx};
use crate::phase;
use crate::plan::PlanAt;
use crate::strategy::Create;
use lifeline::{legacy, monotonic_ns, Stdio};

/// Why a trial could not be set up: the reason of its `error` outcome,
/// read as a chain ("cannot create a gate: Too many open files").
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The trial's cgroup could not be made under the lab's.
    #[error("cannot create the trial's cgroup under {}", parent.display())]
    Cgroup {
        /// The lab's cgroup.
        parent: std::path::PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The phase socket pair.
    #[error("cannot create the phase channel")]
    PhaseChannel(#[source] io::Error),
    /// A gate pipe.
    #[error("cannot create a gate")]
    Gate(#[source] io::Error),
    /// A node's log file.
    #[error("cannot create the log file {}", path.display())]
    Log {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The memfd of the boot record.
    #[error("cannot write the boot record")]
    BootRecord(#[source] io::Error),
    /// The root's spawn.
    #[error("cannot spawn the root")]
    Root(#[source] io::Error),
    /// The program of a command root could not be started.
    #[error("cannot start `{program}` (the program of the root; PATH={path})")]
    Program {
        /// The program as given.
        program: String,
        /// The `PATH` searched.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The trial's own cgroup under `req.cgroup_parent`, or `None` without one:
/// `spare`, the cgroup an earlier trial of this supervisor left empty, when
/// it sits under the same parent; else a new one. Reusing it spares a
/// `mkdir` and an `rmdir` (each makes or frees the cgroup's state in every
/// controller), and three opens and closes, per trial. Nothing of a trial
/// stays in it: its processes are all reaped, it was never killed
/// ([`TrialCgroup::reusable`]), and the lab writes no file of it but
/// `cgroup.procs` (a forked root joining) and `cgroup.kill`.
///
/// # Errors
/// [`SetupError::Cgroup`] when the cgroup cannot be made.
pub(super) fn cgroup(
    req: &TrialRequest,
    spare: &mut Option<TrialCgroup>,
) -> Result<Option<TrialCgroup>, SetupError> {
    let Some(parent) = &req.cgroup_parent else {
        return Ok(None);
    };
    if let Some(cg) = spare
        .take()
        .filter(|cg| cg.parent() == Some(parent.as_path()))
    {
        return Ok(Some(cg));
    }
    // The supervisor's own count of the cgroups it made keeps names apart.
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    // The supervisor's PID as the lab sees it: inside, every supervisor
    // is PID 1 of its own namespace.
    let name = format!("trial.{}.{seq}", crate::pidns::host_self());
    TrialCgroup::create(parent, &name)
        .map(Some)
        .map_err(|source| SetupError::Cgroup {
            parent: parent.clone(),
            source,
        })
}

/// A trial whose root runs.
pub(super) struct Started {
    /// The supervisor's end of the phase channel.
    pub phases: OwnedFd,
    /// The root. Held to the end of the course: under the canonical
    /// strategy the root's lifeline write end lives here, and closing it
    /// would tell the root that its parent died.
    pub root: ChildHandle,
}

impl Course<'_> {
    /// What the host (this supervisor: in a suite, the test process every
    /// member shares) does itself before the root: the plan's `[host]`
    /// action, when this trial's draw says so. Then how the root will be
    /// made: exec'd under `clone3` when the host has threads (a worker it
    /// started, now or in an earlier trial of the same supervisor), else a
    /// copy; and, for a copy, whose attendant worker it inherits without
    /// the thread.
    fn host(&mut self) {
        let plan = &self.req.plan;
        if plan.host.acts_in(plan.seed, self.req.trial) {
            crate::node::host_attend(plan.host.attendant, &plan.scenario);
        }
        self.root_exec = self.req.strategy.create == Create::Clone3
            && lifeline::thread_count().map_or(true, |n| n > 1);
        let me = std::process::id();
        self.host_worker = crate::node::host_attendant_worker()
            .filter(|(owner, _)| !self.root_exec && *owner == me);
    }

    /// The host's action, the phase channel, the gates and the boot record,
    /// then the root.
    ///
    /// # Errors
    /// A [`SetupError`] naming what could not be made.
    pub(super) fn start(&mut self) -> Result<Started, SetupError> {
        self.host();
        // The fds every node inherits sit at LAB_FD_FLOOR and above, where a
        // scenario's own fd numbers cannot reach them.
        let (phases, node_end) = phase::channel()
            .and_then(|(s, n)| Ok((s, lifeline::move_high(n)?)))
            .map_err(SetupError::PhaseChannel)?;
        let mut gate_reads = Vec::new();
        let req = self.req;
        for k in &req.plan.kills {
            if let PlanAt::Gate { child, .. } = k.at {
                let (r, w) = pipe_with(PipeFlags::CLOEXEC)
                    .map_err(io::Error::from)
                    .and_then(|(r, w)| Ok((lifeline::move_high(r)?, w)))
                    .map_err(SetupError::Gate)?;
                gate_reads.push((child, r));
                self.gates.push((child, w));
            }
        }
        let logs = self.open_logs()?;
        let boot = if self.needs_boot() {
            let b = Boot {
                plan: req.plan.clone(),
                strategy: req.strategy.clone(),
                gates: gate_reads.iter().map(|(n, _)| *n).collect(),
                logs: logs.iter().map(|(n, _)| *n).collect(),
            };
            let fd = b
                .to_memfd()
                .and_then(lifeline::move_high)
                .map_err(SetupError::BootRecord)?;
            Some(fd)
        } else {
            None
        };
        self.root_spawned_ns = monotonic_ns();
        let root = match &req.plan.nodes[0].command {
            Some(cmd) => self.spawn_program(cmd)?,
            None => self
                .spawn_root(node_end.as_fd(), &gate_reads, &logs, boot.as_ref())
                .map_err(SetupError::Root)?,
        };
        self.root_running_ns = monotonic_ns();
        Ok(Started { phases, root })
    }

    /// Start the root's `command` (the program `lab exec` runs) the
    /// canonical way whatever the strategy: `clone3` into the trial's
    /// cgroup (or under the supervisor's subreaper), the read end of the
    /// supervisor's lifeline at fd 3, stdin `/dev/null`, stdout and stderr
    /// pipes the course drains, the node's `env` and `cwd`. The supervisor
    /// reports its phases on its behalf: created, armed and ready at once.
    ///
    /// # Errors
    /// [`SetupError::Program`] naming the program and the `PATH` searched;
    /// [`SetupError::Root`] when its pipes cannot be made.
    fn spawn_program(&mut self, cmd: &[String]) -> Result<ChildHandle, SetupError> {
        let node = &self.req.plan.nodes[0];
        // A wrap trial (`lab wrap`): the program gets the supervisor's own
        // stdio, which is the lab's, untouched.
        let pipes = match self.control {
            Some(_) => None,
            None => Some((
                Stream::pipe().map_err(SetupError::Root)?,
                Stream::pipe().map_err(SetupError::Root)?,
            )),
        };
        let mut c = lifeline::Command::new(&cmd[0]).args(&cmd[1..]);
        if let Some(((_, out_w), (_, err_w))) = &pipes {
            c = c
                .stdin(Stdio::Null)
                .stdout(Stdio::Fd(out_w.as_fd()))
                .stderr(Stdio::Fd(err_w.as_fd()));
        }
        for var in &node.env {
            let (k, v) = var.split_once('=').unwrap_or((var, ""));
            c = c.env(k, v);
        }
        if let Some(dir) = &node.cwd {
            c = c.current_dir(dir);
        }
        if let Some(cg) = &self.cgroup {
            c = c.cgroup(cg.dir());
        }
        self.prepare_lineage();
        let child = c.spawn().map_err(|source| SetupError::Program {
            program: cmd[0].clone(),
            path: self.seen.path_env.clone(),
            source,
        })?;
        self.output = pipes.map(|((stdout, _), (stderr, _))| Streams { stdout, stderr });
        let now = monotonic_ns();
        let (pidfd, lifeline) = child.into_parts();
        let seen = &mut self.seen.nodes[0];
        seen.created_ns = Some(now);
        seen.armed_ns = Some(now);
        seen.ready = true;
        seen.watched = true;
        self.procs[0].pid = pidfd.pid();
        let root = ChildHandle::holding(pidfd.pid(), lifeline);
        self.start_lineage(pidfd.pid(), &cmd.join(" "), now);
        self.procs[0].pidfd = Some(pidfd);
        Ok(root)
    }

    /// The log file of each node with `log = true` (below the root, whose
    /// program's output is captured when it is a command), under the
    /// request's `log_dir`: `SCENARIO.PLAN.STRATEGY.TRIAL.NODE.log` (the
    /// plan hash's first 8 digits keep a sweep's values apart), created
    /// or truncated, never through a symlink, moved to the lab's fd floor.
    /// None without a `log_dir`: those nodes write to `/dev/null`.
    ///
    /// # Errors
    /// [`SetupError::Log`] naming the file that cannot be made.
    fn open_logs(&self) -> Result<Vec<(u32, OwnedFd)>, SetupError> {
        let req = self.req;
        let Some(dir) = &req.log_dir else {
            return Ok(Vec::new());
        };
        let logged: Vec<u32> = (0..req.plan.nodes.len() as u32)
            .filter(|&i| {
                req.plan.nodes[i as usize].log && !(i == 0 && req.plan.nodes[0].command.is_some())
            })
            .collect();
        if logged.is_empty() {
            return Ok(Vec::new());
        }
        let hash = req.plan.hash();
        let mut out = Vec::new();
        for i in logged {
            let node = &req.plan.nodes[i as usize];
            let name = format!(
                "{}.{}.{}.{}.{}.log",
                req.plan.scenario,
                &hash[..hash.len().min(8)],
                req.strategy.name,
                req.trial,
                node.path
            );
            let path = dir.join(name);
            let opened = std::fs::create_dir_all(dir)
                .and_then(|()| crate::record::files::open_log(&path))
                .and_then(|f| lifeline::move_high(OwnedFd::from(f)));
            match opened {
                Ok(fd) => out.push((i, fd)),
                Err(source) => return Err(SetupError::Log { path, source }),
            }
        }
        Ok(out)
    }

    /// Whether any node is exec'd as the lab's node program.
    fn needs_boot(&self) -> bool {
        let create = self.req.strategy.create;
        self.root_exec
            || self
                .plan()
                .nodes
                .iter()
                .any(|n| n.parent.is_some() && n.command.is_none() && create.execs(n.exec))
    }

    /// Spawn the root with the node end of the phase channel, the gates'
    /// read ends and the boot record: exec'd when [`Course::host`] said so,
    /// else a copy the strategy's way.
    fn spawn_root(
        &self,
        node_end: BorrowedFd<'_>,
        gate_reads: &[(u32, OwnedFd)],
        logs: &[(u32, OwnedFd)],
        boot: Option<&OwnedFd>,
    ) -> io::Result<ChildHandle> {
        let ctx = NodeCtx {
            plan: self.plan(),
            strategy: &self.req.strategy,
            report: node_end,
            gates: gate_reads.iter().map(|(n, fd)| (*n, fd.as_fd())).collect(),
            boot: boot.map(|b| b.as_fd()),
            logs: logs.iter().map(|(n, fd)| (*n, fd.as_fd())).collect(),
        };
        // Everything the root is handed sits at the lab's fd floor or above
        // (moved there when made), and so does the read end of a legacy
        // lifeline: a forked root drops only what lies below the floor.
        let handed: Vec<RawFd> = std::iter::once(node_end.as_raw_fd())
            .chain(gate_reads.iter().map(|(_, fd)| fd.as_raw_fd()))
            .chain(logs.iter().map(|(_, fd)| fd.as_raw_fd()))
            .chain(boot.map(|b| b.as_raw_fd()))
            .collect();
        debug_assert!(
            handed.iter().all(|&fd| fd >= lifeline::LAB_FD_FLOOR),
            "{handed:?}"
        );
        // A forked root joins the trial's cgroup itself and drops the
        // supervisor's own fds (lab plumbing, not part of the experiment); a
        // cloned root starts in the cgroup (`CLONE_INTO_CGROUP`) and keeps
        // only what it is given.
        let forked = self.req.strategy.create != Create::Clone3;
        let procs = self
            .cgroup
            .as_ref()
            .filter(|_| forked)
            .map(|c| c.procs_fd());
        // Runs in the child, between the clone (or fork) and anything else
        // it does: raw syscalls only (write, setpgid, close_range), no
        // allocation and no lock, so it is async-signal-safe.
        let in_child = || {
            if let Some(p) = procs {
                let _ = rustix::io::write(p, b"0");
            }
            // The root leads the tree's process group (what a group
            // teardown signals on the legacy side).
            let _ = rustix::process::setpgid(None, None);
            if forked {
                legacy::close_plumbing();
            }
        };
        let cgroup = self.cgroup.as_ref().map(|c| c.dir());
        if self.root_exec {
            return ctx.exec_root(cgroup);
        }
        ctx.spawn(0, cgroup, &in_child, None)
    }
}
