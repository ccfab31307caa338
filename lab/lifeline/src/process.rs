//! Process-wide syscalls: subreaper, PDEATHSIG, reaping, exit, the clock.

use std::io;

use rustix::process::{
    getpid, pidfd_open, set_child_subreaper, set_parent_process_death_signal, wait, Pid,
    PidfdFlags, Signal, WaitOptions,
};

use super::pidfd::{ExitStatus, Pidfd};

/// End the calling process at once with `code`: `_exit(2)`. Runs no atexit
/// handler and flushes no buffer, which is what a copied (forked or cloned)
/// process must do: buffers belong to the original. Async-signal-safe.
///
/// # References
/// - [_exit(2)](https://man7.org/linux/man-pages/man2/_exit.2.html)
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Sleep until a signal ends the process (`poll` on no fds, forever). Used by
/// nodes whose only way out is a signal (PDEATHSIG, a kill).
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
pub fn block_forever() -> ! {
    loop {
        let _ = rustix::event::poll(&mut [], None);
    }
}

/// Make the calling process the subreaper of its descendants
/// (`PR_SET_CHILD_SUBREAPER`): every orphan below it is reparented to it, not
/// to PID 1.
///
/// # Errors
/// `EINVAL` on kernels before 3.4.
///
/// # References
/// - [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html), `PR_SET_CHILD_SUBREAPER`
pub fn become_subreaper() -> io::Result<()> {
    Ok(set_child_subreaper(Some(getpid()))?)
}

/// Ask for `signal` when the parent *thread* dies (`PR_SET_PDEATHSIG`). Arming
/// it after the parent already died does nothing: the race of casebook 1.
///
/// # Errors
/// `EINVAL` for an invalid signal.
///
/// # References
/// - [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html), `PR_SET_PDEATHSIG`
pub fn arm_pdeathsig(signal: Signal) -> io::Result<()> {
    Ok(set_parent_process_death_signal(Some(signal))?)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of every phase record.
///
/// # References
/// - [clock_gettime(2)](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// What [`reap_any`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reaped {
    /// A child was reaped (its PID).
    One(i32),
    /// Children exist but none has exited (only with `block = false`).
    NoneReady,
    /// The caller has no children left (`ECHILD`).
    NoChildren,
}

/// Reap any one exited child: `waitpid(-1, WNOHANG?)`. With `block`, wait for
/// one to exit.
///
/// # Errors
/// Only unexpected errors; `ECHILD` is [`Reaped::NoChildren`], `EINTR` is retried.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn reap_any(block: bool) -> io::Result<Reaped> {
    let opts = if block {
        WaitOptions::empty()
    } else {
        WaitOptions::NOHANG
    };
    loop {
        return match wait(opts) {
            Ok(Some((pid, _))) => Ok(Reaped::One(pid.as_raw_nonzero().get())),
            Ok(None) => Ok(Reaped::NoneReady),
            Err(rustix::io::Errno::CHILD) => Ok(Reaped::NoChildren),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Reap one exited child without blocking, with how it ended:
/// `waitpid(-1, WNOHANG)`. `Ok(None)` when no child has exited (or there is
/// none). The supervisor reaps this way so that the exit status of a
/// program it runs as a trial's root is not lost to a reap of "any child".
///
/// # Errors
/// Only unexpected errors; `ECHILD` is `Ok(None)`, `EINTR` is retried.
///
/// # References
/// - [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn reap_exited() -> io::Result<Option<(i32, ExitStatus)>> {
    loop {
        return match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, st))) => {
                let status = match (st.exit_status(), st.terminating_signal()) {
                    (Some(code), _) => ExitStatus::Exited(code),
                    (None, Some(sig)) => ExitStatus::Signaled(sig),
                    // Without WUNTRACED or WCONTINUED only exits are reported.
                    (None, None) => ExitStatus::Exited(0),
                };
                Ok(Some((pid.as_raw_nonzero().get(), status)))
            }
            Ok(None) | Err(rustix::io::Errno::CHILD) => Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Pidfds on every live child of the calling process, as listed in
/// `/proc/self/task/*/children`: for a subreaper, the orphans that came to it.
///
/// Race-free because a child's PID cannot be reused until its parent reaps it:
/// the caller must be the only thread that reaps (the supervisor is
/// single-threaded), and a PID listed here is still its unreaped child when
/// `pidfd_open` runs. A child that exits in between yields a pidfd on its
/// zombie, which is correct.
///
/// # Errors
/// Errors reading `/proc/self/task`; `ENOENT` on kernels without
/// `CONFIG_PROC_CHILDREN`.
///
/// # References
/// - [proc_pid_task(5)](https://man7.org/linux/man-pages/man5/proc_pid_task.5.html) (`children`)
/// - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
pub fn adopt_children() -> io::Result<Vec<Pidfd>> {
    let mut out = Vec::new();
    // No child at all (the common end of a trial): nothing to list, and
    // `/proc` is not read.
    if !has_children()? {
        return Ok(out);
    }
    for task in std::fs::read_dir("/proc/self/task")? {
        let children = std::fs::read_to_string(task?.path().join("children"))?;
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let Some(raw) = Pid::from_raw(pid) else {
                continue;
            };
            match pidfd_open(raw, PidfdFlags::empty()) {
                Ok(fd) => out.push(Pidfd::from_kernel(fd, pid)),
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// Whether the calling process has any child, live or zombie:
/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)` fails with `ECHILD` exactly
/// when it has none, and reaps nothing either way (`WNOWAIT`).
///
/// # Errors
/// Only unexpected errors; `EINTR` is retried.
///
/// # References
/// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html)
fn has_children() -> io::Result<bool> {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    loop {
        return match waitid(WaitId::All, opts) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::CHILD) => Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// The number of threads of the calling process.
///
/// A single-threaded process is answered with one syscall
/// (`unshare(CLONE_THREAD)`, about 1 µs); a multithreaded one, or where
/// that syscall is filtered, from `/proc/self/stat` (field 20, `num_threads`;
/// about 15 µs).
///
/// # Errors
/// Errors reading `/proc/self/stat`.
///
/// # References
/// - [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)
pub fn thread_count() -> io::Result<usize> {
    if single_threaded() == Some(true) {
        return Ok(1);
    }
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command (field 2) may hold spaces; fields after its closing ')' are plain.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after
        .split_whitespace()
        .nth(17)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/self/stat"))
}

/// Whether the calling process has exactly one thread, from the kernel in
/// one syscall: `unshare(CLONE_THREAD)`. The kernel refuses it with `EINVAL`
/// when the caller's thread group has another thread, and otherwise accepts
/// it as a no-op ("pretend it works if there is nothing to unshare":
/// `check_unshare_flags` in kernel/fork.c tests `thread_group_empty`, and
/// `ksys_unshare` unshares nothing for `CLONE_THREAD` alone), so nothing
/// about the process changes either way. `None` when the answer is neither
/// (a seccomp filter that refuses `unshare` with `EPERM`, say): ask
/// `/proc` then.
///
/// Async-signal-safe: one raw syscall, no allocation.
///
/// # References
/// - [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
///   (`EINVAL`: "CLONE_THREAD, CLONE_SIGHAND, or CLONE_VM was specified in
///   flags, and the caller is multithreaded")
pub(crate) fn single_threaded() -> Option<bool> {
    // SAFETY: unshare takes an integer and touches no memory of ours; with
    // CLONE_THREAD alone it changes nothing (see above), it only checks.
    let rc = unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_THREAD as libc::c_long) };
    if rc == 0 {
        return Some(true);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EINVAL) => Some(false),
        _ => None,
    }
}

/// Ignore `signal` (`SIG_IGN`), or give it back its default action
/// (`SIG_DFL`). An ignored signal stays ignored in children and across exec
/// (and through `CLONE_CLEAR_SIGHAND`, which resets only handlers).
///
/// # Errors
/// `EINVAL` for `SIGKILL`/`SIGSTOP`.
///
/// # References
/// - [signal(2)](https://man7.org/linux/man-pages/man2/signal.2.html)
pub fn set_ignored(signal: Signal, ignored: bool) -> io::Result<()> {
    let action = if ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    // SAFETY: installing SIG_IGN or SIG_DFL runs no code of ours in signal
    // context.
    if unsafe { libc::signal(signal.as_raw(), action) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Move the calling process's future children into a new PID namespace
/// (`unshare(CLONE_NEWPID)`, with `CLONE_NEWUSER` when `user`, which lets an
/// unprivileged process do it). The next child becomes PID 1 there.
///
/// # Errors
/// `EPERM` without privileges (and no user namespace), `EINVAL` when the
/// caller is multithreaded and `user` is set.
///
/// # References
/// - [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
/// - [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)
pub fn unshare_pid_namespace(user: bool) -> io::Result<()> {
    let mut flags = libc::CLONE_NEWPID;
    if user {
        flags |= libc::CLONE_NEWUSER;
    }
    // SAFETY: unshare takes flags only; CLONE_NEWPID and CLONE_NEWUSER change
    // no memory or fd of the calling process.
    if unsafe { libc::unshare(flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
