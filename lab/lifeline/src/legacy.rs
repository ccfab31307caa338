//! The legacy paths the lab measures against the canonical primitive:
//! `fork()`, signals by PID, `waitpid(pid)`, and liveness read from
//! `/proc/PID/stat`. Private to the crate: users of the library cannot write
//! these shapes; the strategies that reproduce the casebook can.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{kill_process, pidfd_open, waitpid, Pid, PidfdFlags, Signal, WaitOptions};

use super::execve::{current_env, exec_result, ExecPrep, PreExec};
use super::lifeline::LifelineReader;
use super::pidfd::ExitStatus;
use super::pidfd::Pidfd;
use super::process::exit_now;
use super::spawn::Child;

/// `fork()`, then run `f` in the child and `_exit` with its return value.
/// Returns the child's PID: no pidfd, no lifeline, every fd inherited.
///
/// From a multithreaded caller the child is a copy of every lock and global,
/// held or not: the `fork-noexec` strategy does that on purpose to show what
/// goes wrong (casebook 4).
///
/// # Errors
/// `EAGAIN`/`ENOMEM` from fork.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
pub fn fork_run<F: FnOnce() -> i32>(f: F) -> io::Result<i32> {
    // SAFETY: fork has no memory preconditions; the child gets a copy of the
    // address space. In the child only `f` runs and the process ends with
    // `_exit`. From a single-threaded caller every lock was free at the fork;
    // from a multithreaded one (the fork-noexec strategy) `f` may block on a
    // copied lock forever, which is the defect measured, not memory unsafety.
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
pub fn kill_pid(pid: i32, signal: Signal) -> io::Result<bool> {
    let Some(pid) = Pid::from_raw(pid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    match kill_process(pid, signal) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `kill(-pgid, signal)`: signal every process of the process group `pgid`.
/// A process that called `setsid` (a daemon) is not in it any more.
/// `Ok(false)` on `ESRCH`.
///
/// # References
/// - [kill(2)](https://man7.org/linux/man-pages/man2/kill.2.html)
pub fn kill_group(pgid: i32, signal: Signal) -> io::Result<bool> {
    let Some(pgid) = Pid::from_raw(pgid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    match rustix::process::kill_process_group(pgid, signal) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `waitpid(pid, 0)`: block until that child exits, reap it, and return
/// how it ended (`None` for a status that is neither an exit nor a signal).
///
/// # Errors
/// `ECHILD` when `pid` is not an unreaped child of the caller.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn waitpid_blocking(pid: i32) -> io::Result<Option<ExitStatus>> {
    let Some(pid) = Pid::from_raw(pid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, s))) => {
                return Ok(match (s.exit_status(), s.terminating_signal()) {
                    (Some(code), _) => Some(ExitStatus::Exited(code)),
                    (_, Some(sig)) => Some(ExitStatus::Signaled(sig)),
                    _ => None,
                })
            }
            Ok(None) => return Ok(None),
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
pub fn proc_alive(pid: i32) -> bool {
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

/// Close every fd from 3 up to [`LAB_FD_FLOOR`](super::LAB_FD_FLOOR) - 1:
/// what a forked root does to drop the supervisor's plumbing (its request
/// and result pipes, the report channel's supervisor end, gate write ends,
/// cgroup fds), which all lie below the floor. It keeps stdio and everything
/// the lab moved to the floor or above for the node: the report channel's
/// node end, the gates, the boot record, and its lifeline's read end, which
/// the node still owns (closing that one would leave an `OwnedFd` whose
/// number the next open reuses). Async-signal-safe (one `close_range`). Fds
/// closed here may still be named by values of the parent's stack frames in
/// this copy; the caller never returns into them (it ends with `_exit`).
///
/// Legacy on purpose: a safe function that closes fds some value may own.
/// Call it only in a forked child that never uses or drops the parent's
/// values owning fds in that range.
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
pub fn close_plumbing() {
    // SAFETY: not guaranteed by the type system: this legacy helper is only
    // meant for a forked copy that never uses the values owning these fds
    // (see above), which is how the lab uses it.
    let _ = unsafe { super::fds::close_range(3, super::fds::LAB_FD_FLOOR - 1, 0) };
}

/// `fork()` with a lifeline the legacy way: the pipe is made without
/// close-on-exec and nothing closes it in the child, so the child (and every
/// process it forks) holds the write end of its own lifeline: "the child is
/// its own lifeline keeper" (casebook 2). Returns the child with a pidfd
/// opened on it.
///
/// # Errors
/// As [`fork_run`] and [`pidfd_of_child`].
pub fn fork_with_leaky_lifeline<F: FnOnce(LifelineReader) -> i32>(f: F) -> io::Result<Child> {
    let (read, write) = pipe_with(PipeFlags::empty())?;
    let read = super::fds::move_high(read)?;
    // In the parent the closure (and with it the read end) is dropped when
    // fork_run returns.
    let pid = fork_run(move || f(LifelineReader::from_pipe(read)))?;
    let pidfd = pidfd_of_child(pid)?;
    Ok(Child::from_parts(pidfd, write))
}

/// A pidfd on `pid`, an unreaped child of the caller (`pidfd_open`).
/// Race-free: a child's PID cannot be reused before its parent reaps it, and
/// the caller has not.
///
/// # Errors
/// `ESRCH` when `pid` is gone (it was reaped); `EMFILE`.
///
/// # References
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
pub fn pidfd_of_child(pid: i32) -> io::Result<Pidfd> {
    let raw = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(Pidfd::from_kernel(
        pidfd_open(raw, PidfdFlags::empty())?,
        pid,
    ))
}

/// `fork()` then exec `program` with `args`, the legacy way: each
/// `(source, target)` of `map` is duplicated to its target and every other
/// fd that is not close-on-exec is inherited. `pdeathsig` arms
/// `PR_SET_PDEATHSIG` between fork and exec, with `expect_parent` the
/// `getppid()` check of the fixed recipe. Safe from a multithreaded caller:
/// the child makes only async-signal-safe syscalls before the exec.
///
/// # Errors
/// The exec's errno (through a close-on-exec error pipe); fork's errors.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
/// - [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html)
pub fn fork_exec(
    program: &CStr,
    args: &[&CStr],
    map: &[(RawFd, RawFd)],
    pdeathsig: Option<Signal>,
    expect_parent: Option<i32>,
) -> io::Result<i32> {
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
    // argv, envp (a copy of the environment) and the moves are allocated
    // here, before the fork: the child allocates nothing.
    let mut prep = ExecPrep::new(program, args, current_env(), None, map.to_vec());
    let pre = PreExec {
        hygiene: false,
        pdeathsig: pdeathsig.map(|s| s.as_raw()),
        expect_parent,
        sigmask: None,
    };
    // SAFETY: fork has no memory preconditions. The child only runs
    // `exec_in_child`, which is async-signal-safe (raw syscalls on memory
    // prepared before the fork), so it is sound even when the caller has
    // other threads.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: we are the child just created by fork, `err_write` is the
        // close-on-exec write end whose read end the parent reads, and the
        // fds of `map` are the caller's open fds.
        0 => unsafe { prep.exec_in_child(err_write.as_raw_fd(), pre) },
        pid => {
            drop(err_write);
            if let Err(e) = exec_result(&err_read) {
                let _ = kill_pid(pid, Signal::KILL);
                let _ = waitpid_blocking(pid);
                return Err(e);
            }
            Ok(pid)
        }
    }
}

/// Spawn `cmd` with `std::process::Command`, moving each `(source, target)`
/// of `map` into place between fork and exec (a `pre_exec` hook of `dup2`
/// calls only; std's own error pipe is left alone, see the section on traps
/// of docs/design.md).
///
/// # Errors
/// The spawn's error (a failed exec included: std reports it).
///
/// # References
/// - [`std::os::unix::process::CommandExt::pre_exec`](https://doc.rust-lang.org/std/os/unix/process/trait.CommandExt.html#tymethod.pre_exec)
pub fn command_spawn(
    cmd: &mut std::process::Command,
    map: Vec<(RawFd, RawFd)>,
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let floor = map.iter().map(|&(f, t)| f.max(t)).max().unwrap_or(2) + 1;
    let mut parked = map.clone();
    // SAFETY: the hook runs in the child between fork and exec; it calls only
    // fcntl and dup2 (async-signal-safe) and writes only into `parked`, a
    // vector allocated before the fork whose length does not change.
    unsafe {
        cmd.pre_exec(move || {
            for (i, &(src, _)) in map.iter().enumerate() {
                let p = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, floor);
                if p < 0 {
                    return Err(io::Error::last_os_error());
                }
                parked[i].0 = p;
            }
            for &(src, target) in parked.iter() {
                if libc::dup2(src, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    cmd.spawn()
}
