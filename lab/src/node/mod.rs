//! The node: one process of a trial's tree. It reports its phases, waits at
//! its gate if the plan holds it there, arms its parent-death detection the
//! way the strategy says, spawns its children, and then lingers until its
//! parent dies or waits for its children and exits.
//!
//! A node is either a copy of its parent (clone3 or fork without exec) or a
//! fresh exec of the lab's node program ([`boot`]); a command node is an
//! external program its parent execs in its place. Copies of a
//! single-threaded parent may run ordinary code; copies of a threaded one
//! inherit its hazards (`hazard`), which is what casebook 4 is about.

mod audit;
pub mod boot;
mod create;
pub mod guard;
mod hazard;
pub mod pid_reuse;
mod wait;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{getppid, pidfd_open, PidfdFlags, Signal};

use create::Children;
pub use create::{ChildHandle, COMMAND_LIFELINE_FD};
pub use guard::EXIT_PANIC;
pub use wait::{EOF_BOUND, LEAK_INODE_BITS};

use crate::phase::{self, Event};
use crate::plan::{Plan, PlanNode};
use crate::scenario::{AttendantAction, Phase};
use crate::signal::Sig;
use crate::strategy::{ParentDeath, Strategy};
use lifeline::{LifelineReader, Pidfd};

/// Do `action` with the attendant global in the calling process, as the
/// **host** (the supervisor that runs the trial; in a suite, the test
/// process shared by every member), before it spawns the root. `scenario`
/// names the trial's scenario, recorded as the starter of a worker it
/// starts. The host's `use` is always answered: it starts the worker itself
/// when none was started.
pub fn host_attend(action: AttendantAction, scenario: &str) {
    hazard::attend(action, false, &format!("scenario {scenario}"), "the host");
}

/// Whose worker the calling process's attendant has, if one was started:
/// `(pid of the process that started it, who started it)` (`scenario
/// warm-cache`, `node root`).
pub fn host_attendant_worker() -> Option<(u32, String)> {
    hazard::attendant_worker()
}

/// Exit code of a node that could not go on (spawn failed, report lost).
pub const EXIT_FAILED: i32 = 70;
/// An exec'd node's phase channel (the lab's fds sit at
/// [`lifeline::LAB_FD_FLOOR`] and above, out of the scenario's way).
pub const REPORT_FD: RawFd = lifeline::LAB_FD_FLOOR;
/// An exec'd node's boot memfd.
pub const BOOT_FD: RawFd = lifeline::LAB_FD_FLOOR + 1;
/// An exec'd node's lifeline.
pub const LIFELINE_FD: RawFd = lifeline::LAB_FD_FLOOR + 2;
/// An exec'd node's armed notification.
pub const NOTIFY_FD: RawFd = lifeline::LAB_FD_FLOOR + 3;
/// An exec'd node's first gate.
pub const FIRST_GATE_FD: RawFd = lifeline::LAB_FD_FLOOR + 4;

/// What every node of one trial shares: the plan, the strategy, the report
/// channel, the gates and the boot record of exec'd nodes.
#[derive(Debug)]
pub struct NodeCtx<'a> {
    /// The plan of the trial.
    pub plan: &'a Plan,
    /// The strategy of the trial.
    pub strategy: &'a Strategy,
    /// The node end of the phase channel.
    pub report: BorrowedFd<'a>,
    /// Read end of the gate of each node that has one: `(node, fd)`.
    pub gates: Vec<(u32, BorrowedFd<'a>)>,
    /// The boot memfd of exec'd nodes ([`boot::Boot`]), when any node execs.
    pub boot: Option<BorrowedFd<'a>>,
    /// The log file of each node with `log = true`: `(node, fd)`.
    pub logs: Vec<(u32, BorrowedFd<'a>)>,
}

/// What a node starts with besides the shared context.
#[derive(Debug)]
pub struct Start<'f> {
    /// Its lifeline's read end, when the strategy gave it one.
    pub lifeline: Option<LifelineReader>,
    /// Its parent's PID as the parent saw it before the spawn (for the
    /// `getppid()` check).
    pub parent_pid: i32,
    /// Where to write one byte once parent-death detection is armed.
    pub notify: Option<BorrowedFd<'f>>,
}

impl NodeCtx<'_> {
    /// The life of node `idx`, in the node's process; returns its exit code.
    pub(crate) fn run(&self, idx: u32, start: Start<'_>) -> i32 {
        // From here a panic is reported as this node's and never unwinds.
        guard::install_hook(idx, self.report);
        let node = &self.plan.nodes[idx as usize];
        name_process(&node.path);
        let Ok(me) = Pidfd::open_self() else {
            return EXIT_FAILED;
        };
        if self.send(idx, Event::Created, 0, Some(&me)).is_err() {
            return EXIT_FAILED;
        }
        drop(me);
        self.take_its_place(idx, node);
        if node.gate == Some(Phase::Created) {
            self.wait_gate(idx);
        }
        if node.startup_us > 0 {
            start_up(Duration::from_micros(node.startup_us));
        }
        let lifeline = start.lifeline;
        if self.arm(idx, lifeline.as_ref(), start.parent_pid) {
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        let _ = self.send(idx, Event::Armed, 0, None);
        if let Some(n) = start.notify {
            let _ = rustix::io::write(n, &[1]);
        }
        if node.gate == Some(Phase::Armed) {
            self.wait_gate(idx);
        }
        if node.pid_reuse {
            self.pid_reuse(idx);
        }
        let outside = self.spawn_outside_the_plan(node);
        self.attend(node);
        hazard::start(node);
        let Some(children) = self.spawn_children(idx, node) else {
            return EXIT_FAILED;
        };
        let _ = self.send(idx, Event::Ready, 0, None);
        if node.spin {
            // A livelock: on a CPU for good, no report, no wait (the
            // supervisor's cleanup ends it with SIGKILL).
            loop {
                std::hint::spin_loop();
            }
        }
        if node.linger {
            self.wait_parent_death(lifeline.as_ref());
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        if !self.wait_children(idx, children, lifeline.as_ref()) {
            let _ = self.send(idx, Event::ParentGone, 0, None);
            return 0;
        }
        drop(outside);
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
        if self.strategy.guards {
            self.audit_stdio(idx, "before it exits");
        }
        write_output(node.output_bytes);
        let _ = self.send(idx, Event::Exiting, node.exit_code as i64, None);
        node.exit_code as i32
    }

    /// What node `idx` sets up in its own process before its gates: the signals
    /// it ignores (exactly its own), its log file, a duplicated stdout, and
    /// its parent's hazard touched (a copy inherits its state).
    fn take_its_place(&self, idx: u32, node: &PlanNode) {
        if self.plan.nodes.iter().any(|n| !n.ignore.is_empty()) {
            // Exact per node: what it ignores, and nothing it inherited.
            for sig in Sig::CATCHABLE {
                let _ = lifeline::set_ignored(sig.signal(), node.ignore.contains(&sig));
            }
        }
        if let Some((_, log)) = self.logs.iter().find(|(n, _)| *n == idx) {
            // Its own log file: stderr, and stdout unless a parent
            // captures it through a pipe.
            if !node.capture {
                let _ = rustix::stdio::dup2_stdout(log);
            }
            let _ = rustix::stdio::dup2_stderr(log);
        }
        if let Some(fd) = node.dup_stdout {
            let _ = lifeline::dup_to_free(std::io::stdout().as_fd(), fd).map(std::mem::forget);
        }
        // A child uses its parent's hazard (a copy inherits its state).
        if let Some(p) = node.parent {
            let parent = &self.plan.nodes[p as usize];
            hazard::touch(
                parent.hazard,
                self.strategy.guards,
                &node.path,
                &parent.path,
            );
        }
    }

    /// The processes outside the plan that `node` starts: a helper that
    /// keeps whatever it was given, and a daemon that leaves the session.
    /// The helpers' handles are kept until the node exits.
    fn spawn_outside_the_plan(&self, node: &PlanNode) -> Vec<ChildHandle> {
        let mut outside = Vec::new();
        if node.helper {
            outside.extend(self.spawn_outside(|| lifeline::block_forever()).ok());
        }
        if node.daemon {
            if let Ok(mut first) = self.spawn_outside(|| {
                let _ = rustix::process::setsid();
                self.spawn_outside(|| lifeline::block_forever())
                    .map_or(EXIT_FAILED, |_| 0)
            }) {
                wait::reap(&mut first);
            }
        }
        outside
    }

    /// Use the host's attendant as `node`'s rule says.
    fn attend(&self, node: &PlanNode) {
        // The names are only formatted for a node that attends: no
        // allocation (and no copy-on-write fault in a copy's heap) otherwise.
        if node.attendant != AttendantAction::None {
            let copy_of = match node.parent {
                Some(p) => format!("node {}", self.plan.nodes[p as usize].path),
                None => "the host (the process that runs the trial)".to_string(),
            };
            hazard::attend(
                node.attendant,
                self.strategy.guards,
                &format!("node {}", node.path),
                &copy_of,
            );
        }
    }

    /// Spawn every child of `node` (from a thread of its own when the rule
    /// says so); `None` once a spawn failed, reported as [`Event::Failed`].
    fn spawn_children(&self, idx: u32, node: &PlanNode) -> Option<Children> {
        let mut children = Children::new();
        for &c in &node.children {
            let spawned = if node.spawn_from_thread {
                self.spawn_from_ended_thread(c)
            } else {
                self.spawn(c, None, &|| {}, None)
            };
            match spawned {
                Ok(h) => children.push(h),
                Err(e) => {
                    let _ = self.send(
                        idx,
                        Event::Failed,
                        e.raw_os_error().unwrap_or(0) as i64,
                        None,
                    );
                    return None;
                }
            }
        }
        Some(children)
    }

    /// Spawn child `c` from a thread of its own ([`NodeCtx::spawn_from_thread`])
    /// and return once that thread's exit is complete in the kernel, and,
    /// when its end sent the child a SIGKILL (the child's PDEATHSIG, armed
    /// while the thread lived), once the child is dead.
    ///
    /// `join` returns as soon as the thread's TID is cleared, before the
    /// kernel reparents the thread's children and sends their parent-death
    /// signals (`exit_notify`); a node that reported `ready` in between could
    /// see the trial torn down before its child died (legacy passed about 1
    /// trial in 2,000 of `pdeathsig-thread` that way). A pidfd of the thread
    /// (`PIDFD_THREAD`, Linux 6.9) is readable once that is done; on an older
    /// kernel the node goes on after the join, as before.
    fn spawn_from_ended_thread(&self, c: u32) -> io::Result<ChildHandle> {
        let (child, thread) = std::thread::scope(|s| {
            s.spawn(|| {
                // Opened by the thread on itself, while it lives.
                let me = pidfd_open(rustix::thread::gettid(), thread_pidfd_flag()).ok();
                (self.spawn_from_thread(c), me)
            })
            .join()
            .unwrap_or_else(|_| (Err(io::Error::other("spawner thread panicked")), None))
        });
        let child = child?;
        if let Some(thread) = thread {
            wait_readable(thread.as_fd());
            let opened;
            let pidfd = match &child.pidfd {
                Some(p) => Some(p),
                None => {
                    opened = lifeline::legacy::pidfd_of_child(child.pid).ok();
                    opened.as_ref()
                }
            };
            if let Some(p) = pidfd.filter(|p| kill_pending(p.as_fd())) {
                wait_readable(p.as_fd());
            }
        }
        Ok(child)
    }

    /// Spawn child `c` from a thread of its own that ends once the child has
    /// armed its parent-death detection (or died): PDEATHSIG follows that
    /// thread, not the process (casebook 1, second trap).
    fn spawn_from_thread(&self, c: u32) -> io::Result<ChildHandle> {
        let (armed_read, armed_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let armed_write = lifeline::move_high(armed_write)?;
        let child = self.spawn(c, None, &|| {}, Some(armed_write.as_fd()))?;
        drop(armed_write);
        let mut byte = [0u8; 1];
        loop {
            match rustix::io::read(&armed_read, &mut byte) {
                Err(rustix::io::Errno::INTR) => continue,
                _ => return Ok(child),
            }
        }
    }

    fn send(&self, idx: u32, event: Event, value: i64, pidfd: Option<&Pidfd>) -> io::Result<()> {
        phase::send(self.report, idx, event, value, pidfd)
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
                _ => lifeline::exit_now(EXIT_FAILED),
            }
        }
    }

    /// Arm parent-death detection of node `idx`; returns true when the
    /// parent is already known to be gone. With the guards on, a lifeline is
    /// first audited: the node must hold no write end of it.
    fn arm(&self, idx: u32, lifeline: Option<&LifelineReader>, parent_pid: i32) -> bool {
        match self.strategy.death {
            ParentDeath::Lifeline => lifeline.is_some_and(|l| {
                if self.strategy.guards {
                    self.audit_lifeline(idx, l);
                }
                l.parent_gone()
            }),
            ParentDeath::Pdeathsig => {
                let _ = lifeline::arm_pdeathsig(Signal::KILL);
                false
            }
            ParentDeath::PdeathsigChecked => {
                let _ = lifeline::arm_pdeathsig(Signal::KILL);
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
            _ => lifeline::block_forever(),
        }
    }
}

/// Name this process `node PATH` (its `comm`, at most 15 bytes: a deep
/// path keeps its last characters), so that `ps`, `top` and the diagnoses
/// show which node of the plan it is. Best effort.
///
/// # References
/// - [PR_SET_NAME(2const)](https://man7.org/linux/man-pages/man2/PR_SET_NAME.2const.html)
fn name_process(path: &str) {
    const COMM_MAX: usize = 15;
    const PREFIX: &[u8] = b"node ";
    let room = COMM_MAX - PREFIX.len();
    let tail = &path.as_bytes()[path.len().saturating_sub(room)..];
    // Built on the stack: a node names itself first thing, before any
    // allocation of its own.
    let mut name = [0u8; COMM_MAX + 1];
    name[..PREFIX.len()].copy_from_slice(PREFIX);
    name[PREFIX.len()..PREFIX.len() + tail.len()].copy_from_slice(tail);
    if let Ok(name) = std::ffi::CStr::from_bytes_until_nul(&name) {
        let _ = rustix::thread::set_name(name);
    }
}

/// `PIDFD_THREAD` (`O_EXCL`): a pidfd of one thread, readable once that
/// thread has exited.
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
fn thread_pidfd_flag() -> PidfdFlags {
    PidfdFlags::from_bits_retain(libc::O_EXCL as u32)
}

/// Block until `fd` polls readable (a pidfd: its process or thread exited).
fn wait_readable(fd: BorrowedFd<'_>) {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    while let Err(rustix::io::Errno::INTR) = poll(&mut fds, None) {}
}

/// Whether the process of `pidfd` has a SIGKILL pending for the whole
/// process (it is dying, or dead and not reaped): bit 9 of `ShdPnd:`. A
/// parent-death signal is sent to the process, so it lands there, and stays
/// there until the process is reaped. The PID is the one the pidfd's
/// `fdinfo` gives in the namespace of this `/proc` (a node's PID namespace
/// may not be the one `/proc` shows).
///
/// # References
/// - [proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html),
///   [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html) (`fdinfo`)
fn kill_pending(pidfd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let read = |path: String| std::fs::read_to_string(path).ok();
    let Some(pid) = read(format!("/proc/thread-self/fdinfo/{}", pidfd.as_raw_fd()))
        .and_then(|t| crate::procfs::status_field(&t, "Pid:")?.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    read(format!("/proc/{pid}/status")).is_some_and(|t| {
        crate::procfs::status_field(&t, "ShdPnd:")
            .and_then(|m| u64::from_str_radix(m, 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGKILL - 1)) != 0)
    })
}

/// An exec'd program's start-up before it arms its parent-death detection
/// (`startup`): work on a CPU until the calling thread has used `cpu` of CPU
/// time since the call. Under load that takes longer in wall time, as a
/// runtime's start-up does.
///
/// # References
/// - [clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)
///   (`CLOCK_THREAD_CPUTIME_ID`)
fn start_up(cpu: Duration) {
    let used = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let end = used() + cpu;
    while used() < end {
        std::hint::spin_loop();
    }
}

/// Write `bytes` zero bytes to stdout (blocking while the pipe is full).
///
/// Nothing is touched when there is nothing to write: not std's `Stdout`
/// (whose first use allocates its buffer) nor any buffer on the stack, whose
/// pages a node, a copy of its parent, would fault in (copy on write) in
/// every trial. The zeros are a static in read-only data.
fn write_output(mut bytes: u64) {
    static ZEROS: [u8; 16384] = [0; 16384];
    if bytes == 0 {
        return;
    }
    let out = std::io::stdout();
    while bytes > 0 {
        let n = bytes.min(ZEROS.len() as u64) as usize;
        match rustix::io::write(out.as_fd(), &ZEROS[..n]) {
            Ok(w) => bytes -= w as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `fd` polls readable within 10 s.
    fn readable_soon(fd: BorrowedFd<'_>) -> bool {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let ten = rustix::time::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&ten)).is_ok_and(|n| n == 1)
    }

    /// A thread's pidfd (`PIDFD_THREAD`) polls readable once the thread
    /// has exited, and not while it lives.
    #[test]
    fn a_thread_pidfd_is_readable_once_the_thread_is_gone() {
        let (go_read, go_write) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let me = pidfd_open(rustix::thread::gettid(), thread_pidfd_flag()).unwrap();
            tx.send(me).unwrap();
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&go_read, &mut b);
        });
        let me = rx.recv().unwrap();
        // It waits for a byte: alive, not readable.
        assert!(lifeline::poll_now(me.as_fd(), PollFlags::IN)
            .unwrap()
            .is_empty());
        rustix::io::write(&go_write, &[1]).unwrap();
        h.join().unwrap();
        assert!(
            readable_soon(me.as_fd()),
            "the thread's pidfd never became readable"
        );
    }

    /// A process with a SIGKILL sent to it reads as such until it is
    /// reaped; a live one that was sent nothing does not.
    #[test]
    fn a_pending_sigkill_is_seen_until_the_process_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).unwrap();
        assert!(!kill_pending(pidfd.as_fd()));
        rustix::process::pidfd_send_signal(&pidfd, Signal::KILL).unwrap();
        assert!(
            readable_soon(pidfd.as_fd()),
            "the killed child never exited"
        );
        // Dead and not reaped: the signal is still recorded.
        assert!(kill_pending(pidfd.as_fd()));
        child.wait().unwrap();
        assert!(!kill_pending(pidfd.as_fd()));
    }
}
