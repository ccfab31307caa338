//! The trial's PID namespace, and its PIDs as the user sees them.
//!
//! Each supervisor runs as init (PID 1) of a PID namespace of its own
//! (`session::handle` starts it so), with its own `/proc`: every PID the
//! trial engine handles is local to that namespace. That is what the legacy
//! observe axis needs (a `kill(pid)` to a stale PID can reach only a process
//! of the same trial), but a PID printed for the user (`gdb -p PID`, the
//! diagnosis, `--keep-hung`) must name the process in the lab's namespace.
//!
//! The lab hands the supervisor its own `/proc` as a directory fd
//! ([`HOST_PROC_FD`]); the supervisor keeps it ([`claim_host_proc`]), and
//! the diagnosis translates every PID and TID through it while the
//! processes are alive ([`host_view`]): a pidfd of the process (opened
//! inside) read through the lab's `/proc` (`self/fdinfo/N`, whose `Pid:`
//! is given in the namespace of that `/proc`), then each thread's `NSpid:`
//! line under `/proc/HOSTPID/task/` of the lab's `/proc`.
//!
//! Without a namespace of its own (the fallback, said in every result) the
//! supervisor has no such fd and every PID is already the lab's; a kill by
//! PID can then reach a process outside the trial, which the trial engine
//! tells apart with [`pidfd_pid`] (an `innocent-kill`). That fallback
//! needs a `/proc` of the lab's own PID namespace ([`foreign_proc`]).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use crate::procfs::{self, status_field, ProcessState};

/// The fd at which a supervisor in a PID namespace of its own finds the
/// lab's `/proc` (a directory fd opened by the lab before the clone).
pub const HOST_PROC_FD: RawFd = 5;

static HOST_PROC: OnceLock<OwnedFd> = OnceLock::new();

/// The line that the header and the summary of a run, an exec and a soak
/// carry when their supervisors have no PID namespace of their own (the
/// `pid_namespace` column `none`): what that costs.
pub const FALLBACK_WARNING: &str = "pid namespace: none; a kill by PID can reach a process \
     outside the trial (judged innocent-kill)";

/// In the supervisor: take the lab's `/proc` from [`HOST_PROC_FD`] when it
/// was given (close-on-exec from then on). Returns whether it was.
pub fn claim_host_proc() -> bool {
    match lifeline::claim_inherited(HOST_PROC_FD) {
        Ok(fd) => keep_host_proc(fd),
        Err(_) => false,
    }
}

/// In a supervisor forked, not exec'd (`lab wrap`'s): keep `proc`, the
/// lab's `/proc` handed over at the fork. Returns whether it was kept (not
/// when one was kept already).
pub fn keep_host_proc(proc: OwnedFd) -> bool {
    HOST_PROC.set(proc).is_ok()
}

/// Whether this process is init of its PID namespace with the lab's `/proc`
/// in hand: PIDs here are not the lab's.
pub fn translating() -> bool {
    HOST_PROC.get().is_some() && rustix::process::getpid().as_raw_nonzero().get() == 1
}

/// This process's PID as the lab sees it: unique among the lab's
/// supervisors even though each of them is PID 1 of its own namespace (the
/// name of a trial's cgroup is made from it). `/proc/self` of the lab's
/// `/proc` when [`translating`], else [`std::process::id`].
pub fn host_self() -> u32 {
    static SELF: OnceLock<u32> = OnceLock::new();
    *SELF.get_or_init(|| {
        HOST_PROC
            .get()
            .filter(|_| translating())
            .and_then(|proc| procfs::self_at(proc.as_fd()))
            .unwrap_or_else(std::process::id)
    })
}

/// The command line of the process the lab knows as `host_pid`, read
/// through the lab's `/proc` when [`translating`] (else this `/proc`), as
/// [`procfs::read_cmdline`] gives it (at most 256 bytes); `None` when it is
/// gone or empty (a zombie).
pub fn host_cmdline(host_pid: i32) -> Option<String> {
    match HOST_PROC.get().filter(|_| translating()) {
        Some(proc) => procfs::cmdline_at(proc.as_fd(), host_pid),
        None => procfs::scan_cmdline(host_pid),
    }
}

/// Whether this process is init (PID 1) of a PID namespace: every PID it
/// handles names a process of that namespace (a supervisor in a namespace
/// of its own: a process of its trials), never one outside it.
pub fn own_namespace() -> bool {
    rustix::process::getpid().as_raw_nonzero().get() == 1
}

/// Why `/proc` does not show this process's PID namespace, or `None` when
/// it does. `/proc/PID` then names another process than PID `PID` of this
/// namespace (under `unshare --pid --fork` without `--mount-proc`, say),
/// so every reader by PID (the legacy `/proc` oracle, the evidence of the
/// judge) would read the wrong processes. Told by `/proc/self` (a link to
/// this process's PID in the namespace of the `/proc` mount: another
/// number than `getpid()` when that namespace is not this process's) and
/// by the `NSpid:` line of `/proc/self/status` (one PID per namespace from
/// the mount's down to the process's: more than one when the mount's is
/// an ancestor).
///
/// # References
/// - [proc(5)](https://man7.org/linux/man-pages/man5/proc.5.html) (`/proc/self`, `NSpid`)
/// - [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html) (`/proc` and PID namespaces)
pub fn foreign_proc() -> Option<String> {
    let own = std::process::id();
    let seen = match std::fs::read_link("/proc/self") {
        Ok(link) => link.to_string_lossy().into_owned(),
        Err(e) => return Some(format!("/proc/self cannot be read ({e})")),
    };
    if seen != own.to_string() {
        return Some(format!(
            "/proc/self is {seen} but this process is {own} in its PID namespace"
        ));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let levels = status_field(&status, "NSpid:").map_or(1, |l| l.split_whitespace().count());
    (levels > 1).then(|| {
        format!(
            "/proc shows the PID namespace {} level(s) above this process's",
            levels - 1
        )
    })
}

/// The PID, in this process's `/proc` namespace, of the process that the
/// pidfd `fd` refers to, while it holds one: alive, or a zombie not yet
/// reaped. `None` once it has been reaped (its PID may then name another
/// process), or when `fd` is not a pidfd. From the `Pid:` line of
/// `/proc/self/fdinfo/FD` (`-1` once the process is reaped).
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html) (`/proc/PID/fdinfo`, `Pid:`)
/// - fs/pidfs.c (kernel/fork.c before Linux 6.9), `pidfd_show_fdinfo`
pub fn pidfd_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    status_field(&info, "Pid:")?.parse().ok().filter(|&p| p > 0)
}

/// The lab's PID of the live process `pid` of this namespace (`pid` itself
/// when not [`translating`], or when it is gone).
pub fn host_pid(pid: i32) -> i32 {
    lab_pid(pid).unwrap_or(pid)
}

/// The lab's PID of the live process `pid` of this namespace, from the
/// `Pid:` line of its pidfd's fdinfo read through the lab's `/proc`; `None`
/// when not [`translating`] or when it is gone.
fn lab_pid(pid: i32) -> Option<i32> {
    if !translating() || pid <= 0 {
        return None;
    }
    let proc = HOST_PROC.get()?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()?;
    let info = procfs::read_at(proc.as_fd(), &format!("self/fdinfo/{}", pidfd.as_raw_fd()))?;
    status_field(&info, "Pid:")?.parse().ok().filter(|&h| h > 0)
}

/// The lab's PID of process `pid` and its threads' TIDs (namespace TID →
/// lab TID), read while it is alive.
fn host_ids(pid: i32) -> Option<(i32, HashMap<i32, i32>)> {
    let host = lab_pid(pid)?;
    let proc = HOST_PROC.get()?;
    let tids = procfs::thread_nspids(proc.as_fd(), host);
    Some((host, tids))
}

/// Rewrite the PIDs, parent PIDs and TIDs of `processes` (read inside the
/// namespace) to the lab's, so that what the user reads (`gdb -p PID`,
/// `/proc/PID`) names the same processes from the lab's shell. Returns a
/// note for the diagnosis, or `None` when nothing needed translating.
pub fn host_view(processes: &mut [ProcessState]) -> Option<String> {
    if !translating() {
        return None;
    }
    let mut pids: HashMap<i32, i32> = HashMap::new();
    let mut tids: HashMap<i32, i32> = HashMap::new();
    let mut wanted: Vec<i32> = processes.iter().flat_map(|p| [p.pid, p.ppid]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    for pid in wanted {
        if let Some((h, t)) = host_ids(pid) {
            pids.insert(pid, h);
            tids.extend(t);
        }
    }
    let mut missed = 0;
    for p in processes.iter_mut() {
        match pids.get(&p.pid) {
            Some(&h) => p.pid = h,
            None => missed += 1,
        }
        if let Some(&h) = pids.get(&p.ppid) {
            p.ppid = h;
        }
        for t in &mut p.threads {
            if let Some(&h) = tids.get(&t.tid) {
                t.tid = h;
            }
        }
    }
    let mut note = "PIDs and TIDs are the lab's (the trial ran as init of a PID namespace of its own; translated through the lab's /proc)".to_string();
    if missed > 0 {
        note.push_str(&format!(
            "; {missed} process(es) ended before translation and keep their PID inside the namespace"
        ));
    }
    if procfs::in_user_namespace() {
        // Root of a user namespace reads no kernel stack: it needs
        // CAP_SYS_ADMIN in the host's user namespace.
        note.push_str("; kernel stacks need root of the host (the trial ran in a user namespace)");
    }
    Some(note)
}
