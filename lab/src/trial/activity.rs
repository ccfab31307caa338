//! What the live processes of a trial can still do by themselves, read from
//! `/proc` for the judge's quiescence rule (`docs/design.md`, section
//! "One trial"): per thread its scheduler state, whether a signal it does not block is
//! pending, whether SIGKILL is; per process whether its main thread sits in
//! a timed wait; and the CPU time its threads got (`schedstat`), which tells
//! a spinning process from a starved one.
//!
//! This reads live processes that may be stuck, which is what `/proc` is
//! for. Whether a process has *exited* never comes from here: it comes from
//! pidfds, `waitid` and the cgroup files.
//!
//! # References
//! - [proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html)
//!   (`State`, `PPid`, `SigPnd`, `ShdPnd`, `SigBlk`),
//!   [proc_pid_task(5)](https://man7.org/linux/man-pages/man5/proc_pid_task.5.html),
//!   `Documentation/scheduler/sched-stats.rst` (`/proc/PID/schedstat`: time
//!   on a CPU and time waiting on a runqueue, ns)

use std::fs;
use std::io;

use crate::procfs::{self, status_field};

/// `SIGKILL` as a bit of a `/proc` signal mask (bit `signo - 1`).
const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);

/// One thread of a live process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Task {
    /// Its TID.
    pub tid: i32,
    /// Its state letter (`R`, `S`, `D`, `T`, `t`, `Z`, `X`, `I`, ...).
    pub state: char,
    /// A signal is pending (for the thread or its process) that the thread
    /// does not block: it will be, or has just been, woken to take it.
    pub deliverable: bool,
    /// SIGKILL is pending: it is dying.
    pub sigkill: bool,
}

/// One live process of the trial, as `/proc` showed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Activity {
    /// Its PID (in the supervisor's namespace).
    pub pid: i32,
    /// Its parent's PID.
    pub ppid: i32,
    /// Its threads, the main thread first.
    pub tasks: Vec<Task>,
    /// It is one of the plan's model nodes (the lab's own node program,
    /// not a `command`): its main thread follows the plan, its other
    /// threads are the plan's background (hazard threads, an attendant's
    /// worker).
    pub model: bool,
    /// Its main thread sits in a system call with a timeout (read only for
    /// model nodes).
    pub timed_wait: bool,
}

/// The time one process's threads spent on a CPU, summed (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuTime {
    /// Time on a CPU.
    pub run_ns: u64,
}

/// Read what `pids` can still do. A process that is gone by the time it is
/// read (reaped before its `status` was opened, or between the open and the
/// read) is left out; `model(pid)` says which are model nodes (whose main
/// thread is checked for a timed wait).
///
/// # Errors
/// When `/proc` does not show a listed process although it exists (no
/// `/proc` of this namespace, `hidepid`, no permission): the judge then
/// falls back to windows.
pub(super) fn look(pids: &[i32], model: impl Fn(i32) -> bool) -> io::Result<Vec<Activity>> {
    let mut out = Vec::with_capacity(pids.len());
    for &pid in pids {
        // The process's own status is its main thread's; a process of one
        // thread (most of them) needs no more.
        let Some(main) = read_live(&format!("/proc/{pid}/status"))? else {
            continue;
        };
        let Some((task, ppid)) = parse_status(pid, &main) else {
            continue;
        };
        let mut a = Activity {
            pid,
            ppid,
            tasks: vec![task],
            model: model(pid),
            timed_wait: false,
        };
        if threads(&main) > 1 {
            let dir = match fs::read_dir(format!("/proc/{pid}/task")) {
                Ok(dir) => dir,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut tids: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&t| t != pid)
                .collect();
            tids.sort_unstable();
            for tid in tids {
                if let Some(text) = read_live(&format!("/proc/{pid}/task/{tid}/status"))? {
                    a.tasks.extend(parse_status(tid, &text).map(|(t, _)| t));
                }
            }
        }
        a.timed_wait = a.model && a.tasks[0].state == 'S' && procfs::in_timed_wait(pid, pid);
        out.push(a);
    }
    Ok(out)
}

/// The text of the `/proc` file `path` of a process or thread that may be
/// reaped meanwhile; `None` once it is gone: before the open (`ENOENT`), or
/// between the open and the read (`ESRCH`: `proc_single_show` in
/// fs/proc/base.c finds no task behind the open file).
///
/// # Errors
/// Any other error of the open or the read.
fn read_live(path: &str) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `e`, from a `/proc/PID` file, says the process is gone (`ENOENT`,
/// or `ESRCH` when it was reaped after the open), not that `/proc` cannot be
/// read.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// The `Threads:` count of a status text (1 when absent).
fn threads(status: &str) -> usize {
    status_field(status, "Threads:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// One thread's status: its [`Task`] and its process's parent PID. `None`
/// when the text lacks a `State:` line.
pub(super) fn parse_status(tid: i32, text: &str) -> Option<(Task, i32)> {
    let field = |name: &str| status_field(text, name);
    let mask = |name: &str| {
        field(name)
            .and_then(|v| u64::from_str_radix(v, 16).ok())
            .unwrap_or(0)
    };
    let state = field("State:")?.chars().next()?;
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    let blocked = mask("SigBlk:");
    let task = Task {
        tid,
        state,
        deliverable: pending & !blocked != 0,
        sigkill: pending & SIGKILL_BIT != 0,
    };
    Some((task, field("PPid:")?.parse().ok()?))
}

/// The CPU time of each of `pids` that is still there, summed over its
/// threads.
pub(super) fn cpu(pids: &[i32]) -> Vec<(i32, CpuTime)> {
    pids.iter()
        .filter_map(|&pid| {
            let dir = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
            let mut t = CpuTime::default();
            for e in dir.flatten() {
                let Ok(text) = fs::read_to_string(e.path().join("schedstat")) else {
                    continue;
                };
                // `schedstat`: time on a CPU, time waiting for one, slices.
                t.run_ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            Some((pid, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASLEEP: &str = "Name:\tlab\nState:\tS (sleeping)\nPPid:\t1\nSigPnd:\t0000000000000000\n\
        ShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n";

    #[test]
    fn status_gives_state_parent_and_pending_signals() {
        let (t, ppid) = parse_status(7, ASLEEP).unwrap();
        assert_eq!((t.tid, t.state, ppid), (7, 'S', 1));
        assert!(!t.deliverable && !t.sigkill);
        // SIGKILL pending for the process (bit 8).
        let dying = ASLEEP.replace("ShdPnd:\t0000000000000000", "ShdPnd:\t0000000000000100");
        let (t, _) = parse_status(7, &dying).unwrap();
        assert!(t.deliverable && t.sigkill);
        // SIGTERM (bit 14) pending but blocked: it will not wake the thread.
        let blocked = ASLEEP
            .replace("SigPnd:\t0000000000000000", "SigPnd:\t0000000000004000")
            .replace("SigBlk:\t0000000000000000", "SigBlk:\t0000000000004000");
        let (t, _) = parse_status(7, &blocked).unwrap();
        assert!(!t.deliverable && !t.sigkill);
        assert_eq!(parse_status(7, "Name:\tx\n"), None);
    }

    #[test]
    fn looks_at_a_sleeping_child_and_a_gone_one() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Wait until the child sleeps (its exec done): its state is read
        // until it is `S`, which is what is being tested, not a guess.
        let seen = loop {
            let seen = look(&[pid, i32::MAX - 1], |_| true).unwrap();
            if seen
                .first()
                .is_some_and(|a| a.tasks[0].state == 'S' && a.timed_wait)
            {
                break seen;
            }
            std::thread::yield_now();
        };
        assert_eq!(seen.len(), 1, "the PID that does not exist is left out");
        assert_eq!(seen[0].ppid, std::process::id() as i32);
        assert!(!seen[0].tasks[0].deliverable);
        assert_eq!(cpu(&[pid]).len(), 1);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(look(&[pid], |_| true).unwrap().is_empty());
    }

    #[test]
    fn a_process_reaped_between_the_open_and_the_read_is_gone_not_unreadable() {
        use std::io::Read;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut status = fs::File::open(format!("/proc/{}/status", child.id())).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // The kernel's answer once the task behind the open file is reaped.
        let err = status.read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
        assert!(gone(&err));
        assert!(gone(&io::Error::from(io::ErrorKind::NotFound)));
        assert!(!gone(&io::Error::from_raw_os_error(libc::EACCES)));
        assert_eq!(
            read_live(&format!("/proc/{}/status", i32::MAX - 1)).unwrap(),
            None
        );
    }
}
