//! The legacy paths the lab measures against the canonical primitive:
//! `fork()`, signals by PID, `waitpid(pid)`, and liveness read from
//! `/proc/PID/stat`. Private to the crate: users of the library cannot write
//! these shapes; the strategies that reproduce the casebook can.

use std::io;

use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};

use super::process::exit_now;

/// `fork()`, then run `f` in the child and `_exit` with its return value.
/// Returns the child's PID: no pidfd, no lifeline, every fd inherited.
///
/// Run `f` only from a single-threaded caller unless the point is to show
/// what goes wrong (casebook 4): the child is a copy of every lock.
///
/// # Errors
/// `EAGAIN`/`ENOMEM` from fork.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
pub(crate) fn fork_run<F: FnOnce() -> i32>(f: F) -> io::Result<i32> {
    // SAFETY: fork has no memory preconditions. In the child only `f` runs and
    // the process ends with `_exit`; callers fork from single-threaded
    // processes (nodes, the supervisor), where every lock was free at the fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            exit_now(code.unwrap_or(101))
        }
        pid => Ok(pid),
    }
}

/// `kill(pid, signal)`. `Ok(false)` on `ESRCH`. The PID may already name
/// another process (casebook 8): that is the defect this path carries.
///
/// # References
/// - [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)
pub(crate) fn kill_pid(pid: i32, signal: Signal) -> io::Result<bool> {
    let Some(pid) = Pid::from_raw(pid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    match kill_process(pid, signal) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `waitpid(pid, 0)`: block until that child exits, and reap it.
///
/// # Errors
/// `ECHILD` when `pid` is not an unreaped child of the caller.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub(crate) fn waitpid_blocking(pid: i32) -> io::Result<()> {
    let Some(pid) = Pid::from_raw(pid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Liveness as `/proc/PID/stat` shows it: the legacy oracle. `true` while the
/// state letter is anything but `Z` (zombie) or `X` (dead) and the file
/// exists. A process that is still dying reads as alive (casebook 7), and a
/// reused PID reads as the wrong process (casebook 8).
///
/// # References
/// - [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)
pub(crate) fn proc_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Close every fd except `keep` (sorted, 0, 1, 2 included as wanted): what a
/// forked root does to drop the supervisor's plumbing. Async-signal-safe.
/// Fds closed here may still be named by values of the parent's stack frames
/// in this copy; the caller never returns into them (it ends with `_exit`).
pub(crate) fn close_all_except(keep: &[std::os::fd::RawFd]) {
    let _ = super::fds::close_all_except(keep);
}
