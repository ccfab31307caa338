//! What the lab's own process and machine must offer before trials run, and
//! the last sweep after them: the lab a subreaper with no stray inherited
//! fds, the privileges a scenario needs, and the orphans of dead
//! supervisors ended.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::LabError;
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::signal::Sig;

/// The lab cgroups of this process's open sessions: removed when a signal
/// ends the lab.
static ON_SIGNAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Whether an interruption (SIGINT or SIGTERM) stops the starting of
/// trials instead of ending the lab ([`stop_on_interrupt`]).
static GRACEFUL: AtomicBool = AtomicBool::new(false);
/// The signal number of the first interruption that came while
/// [`GRACEFUL`] was set; 0 while none came.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// The signals that interrupt a command gracefully once
/// [`stop_on_interrupt`] was called: SIGINT (Ctrl-C) and SIGTERM (what a
/// CI system sends when a job is cancelled).
pub const INTERRUPTIONS: [Sig; 2] = [Sig::Int, Sig::Term];

/// From now on, the first SIGINT (Ctrl-C) or SIGTERM does not end the lab:
/// no trial starts after it ([`interrupted`] is true; the pool asks for no
/// more), the trials in flight finish, and the command prints what it has
/// and exits with 128 + the signal ([`crate::error::Exit::Interrupted`]).
/// A second one, or a SIGHUP, ends the lab at once as before (the
/// supervisors see their lifelines close and end their trials). For the
/// commands whose partial results mean something (`lab run`, `lab exec`,
/// `lab soak`, `lab fuzz`, `lab suite`, `lab bisect`).
pub fn stop_on_interrupt() {
    GRACEFUL.store(true, Ordering::SeqCst);
}

/// Whether a SIGINT or SIGTERM asked the lab to stop starting trials (see
/// [`stop_on_interrupt`]).
pub fn interrupted() -> bool {
    interruption().is_some()
}

/// The signal that asked the lab to stop starting trials (see
/// [`stop_on_interrupt`]), `None` while none did.
pub fn interruption() -> Option<Sig> {
    let raw = INTERRUPTED.load(Ordering::SeqCst);
    INTERRUPTIONS
        .into_iter()
        .find(|s| raw != 0 && s.signal().as_raw() == raw)
}

/// Prepare the lab process itself: open files enough for trials
/// ([`ensure_fd_limit`]), SIGCHLD's default action back, stray inherited
/// fds close-on-exec, and the lab a subreaper, so that orphans of a
/// supervisor that died come to it.
///
/// SIGCHLD ignored (`SIG_IGN`, which a caller may leave to its children:
/// it survives fork and exec) makes the kernel reap every child at its
/// exit, so no exit status is left to wait for: the lab's supervisors, the
/// trials' nodes and the programs under test would all be reaped unseen
/// (`waitid` fails with `ECHILD`). Its default action is restored before
/// any child is made, so every process of the lab starts with it.
///
/// # Errors
/// [`LabError::Lab`] when the fd limit is too low; [`LabError::Io`] with
/// the kernel's error when it refuses the rest.
pub fn prepare_lab_process() -> Result<(), LabError> {
    ensure_fd_limit()?;
    lifeline::set_ignored(lifeline::Signal::CHILD, false)
        .map_err(|e| LabError::io("signal(SIGCHLD, SIG_DFL)", e))?;
    lifeline::mark_inherited_cloexec()
        .map_err(|e| LabError::io("close_range(CLOSE_RANGE_CLOEXEC)", e))?;
    lifeline::become_subreaper().map_err(|e| LabError::io("PR_SET_CHILD_SUBREAPER", e))
}

/// Grow this process's fd table to hold fds up to [`FD_LIMIT_NEEDED`] now,
/// while it has one thread: the lab moves its own fds to
/// [`lifeline::LAB_FD_FLOOR`] (256) and above, and the kernel grows the
/// table of a process whose threads share it only after an RCU grace
/// period (`expand_fdtable` calls `synchronize_rcu` when the table is
/// shared), about 10 ms, which `lab wrap` paid on every program and every
/// command on its first trial. A duplicate of stderr at the top fd grows
/// it, and is closed at once (a table never shrinks). Best effort: with
/// stderr closed or a lower fd limit the table grows later, as before.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_DUPFD_CLOEXEC`)
/// - fs/file.c (`expand_fdtable`)
pub fn grow_fd_table() {
    let top = i32::try_from(FD_LIMIT_NEEDED - 1).unwrap_or(i32::MAX);
    drop(rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), top));
}

/// The open files (`RLIMIT_NOFILE`) a trial needs: every node and
/// supervisor keeps the lab's own fds at [`lifeline::LAB_FD_FLOOR`] (256)
/// and above (report channel, boot record, lifeline, notify, one per gate
/// and log), and the fd limit must lie above the highest. Measured with
/// `prlimit --nofile=N:N`: `lab run nested` needs 264, `lab soak --all` 266
/// (below, trials end in `error`: EINVAL or EMFILE); 32 above the floor
/// leaves room for scenarios with more gates.
pub const FD_LIMIT_NEEDED: u64 = lifeline::LAB_FD_FLOOR as u64 + 32;

/// Make sure trials can have [`FD_LIMIT_NEEDED`] open files: raise the soft
/// `RLIMIT_NOFILE` to that (never beyond the hard limit, and never lower
/// it: a higher one is kept, as the user set it, since the programs under
/// test inherit it) when it is below.
///
/// # Errors
/// [`LabError::Lab`] naming the limit needed and how to raise it, when the
/// hard limit is below it; nothing was run.
///
/// # References
/// - [getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)
pub fn ensure_fd_limit() -> Result<(), LabError> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    // `None`: unlimited.
    let (soft, hard) = (
        lim.current.unwrap_or(u64::MAX),
        lim.maximum.unwrap_or(u64::MAX),
    );
    if soft >= FD_LIMIT_NEEDED {
        return Ok(());
    }
    if hard < FD_LIMIT_NEEDED {
        return Err(LabError::Lab(format!(
            "the lab needs a limit of at least {FD_LIMIT_NEEDED} open files (RLIMIT_NOFILE; \
             its own fds sit at {} and above in every trial process), and the hard limit here \
             is {hard}: raise it to {FD_LIMIT_NEEDED} or more (as root: `ulimit -n \
             {FD_LIMIT_NEEDED}` in the shell that starts the lab, `prlimit \
             --nofile={FD_LIMIT_NEEDED}:{FD_LIMIT_NEEDED} --pid PID`, or LimitNOFILE= in its \
             systemd unit); nothing was run",
            lifeline::LAB_FD_FLOOR
        )));
    }
    let raised = Rlimit {
        current: Some(FD_LIMIT_NEEDED),
        maximum: lim.maximum,
    };
    setrlimit(Resource::Nofile, raised)
        .map_err(|e| LabError::io("setrlimit(RLIMIT_NOFILE)", e.into()))
}

/// Make a lab cgroup with `create` (which returns it, or `None`, and what
/// else it has to say) and remove it if a signal ends the lab before
/// [`forget_on_signal`]. The list of watched cgroups stays locked while
/// `create` runs, so a signal that comes meanwhile waits for the cgroup to
/// exist and removes it: there is no moment at which it would be left
/// behind. Where trials still run in it the removal fails, and the last
/// supervisor out removes it once it has ended its trial (each knows the
/// lab cgroup from its start).
///
/// The first call starts the thread that watches for SIGINT, SIGTERM and
/// SIGHUP (not before: a command refused for bad input starts no thread);
/// should it not start, a note says so and a lab ended by a signal may
/// leave its cgroup to `lab janitor`.
pub fn watched<T>(create: impl FnOnce() -> (Option<PathBuf>, T)) -> (Option<PathBuf>, T) {
    static WATCH: OnceLock<()> = OnceLock::new();
    WATCH.get_or_init(|| {
        if let Err(e) = watch_signals() {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "lab: cannot watch for SIGINT and SIGTERM ({e}): a lab ended by one may \
                     leave its cgroup to `lab janitor`\n"
                ),
            );
        }
    });
    let mut watched = ON_SIGNAL.lock().unwrap_or_else(|p| p.into_inner());
    let (dir, rest) = create();
    watched.extend(dir.clone());
    (dir, rest)
}

/// Stop watching `dir`: its session removed it.
pub fn forget_on_signal(dir: &Path) {
    ON_SIGNAL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|d| d != dir);
}

/// A thread that waits for SIGINT, SIGTERM or SIGHUP (signal-hook's
/// self-pipe: the handler only writes a byte). The first SIGINT or SIGTERM
/// after [`stop_on_interrupt`] only sets [`interruption`]; any other removes the
/// watched lab cgroups, then ends the lab with the signal's default action, as if it
/// had no handler (exit status 128 + the signal to a shell). Supervisors
/// see their lifelines close and end their trials.
fn watch_signals() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("lab-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if (sig == SIGINT || sig == SIGTERM)
                    && GRACEFUL.load(Ordering::SeqCst)
                    && INTERRUPTED
                        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    let by = interruption().map_or("?", crate::error::Exit::interruption_name);
                    crate::output::write_err(format_args!(
                        "\nlab: interrupted ({by}): no new trials; waiting for the trials in \
                         flight (Ctrl-C or SIGTERM again ends the lab at once)\n"
                    ));
                    continue;
                }
                for dir in ON_SIGNAL.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    let _ = std::fs::remove_dir(dir);
                }
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                break;
            }
        })?;
    Ok(())
}

/// Refuse a scenario this machine cannot run: one that needs a private PID
/// namespace (PID reuse) where this process can make none.
///
/// # Errors
/// [`LabError::Input`] saying what is missing and how to get it, and that
/// nothing was run.
pub fn check_privileges(scenario: &Scenario) -> Result<(), LabError> {
    let plan = Plan::new(scenario, 0);
    if plan.nodes.iter().any(|n| n.pid_reuse) && !lifeline::probe::probe_kernel(None).pid_reuse() {
        return Err(LabError::Input(format!(
            "{} needs a private PID namespace, and this process can make none: run it as root, \
             or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or \
             user.max_user_namespaces > 0); nothing was run",
            scenario.name
        )));
    }
    Ok(())
}

/// End and reap every child of the lab that is not a supervisor it still
/// runs: orphans that reparented to the lab (a subreaper) because their
/// supervisor died. Returns how many were ended. Call from the only thread
/// left, after the workers.
pub fn sweep_orphans() -> usize {
    let mut n = 0;
    loop {
        let kids = lifeline::adopt_children().unwrap_or_default();
        for k in &kids {
            let _ = k.send_signal(rustix::process::Signal::KILL);
            n += 1;
        }
        match lifeline::reap_any(!kids.is_empty()) {
            Ok(lifeline::Reaped::One(_)) => continue,
            _ if kids.is_empty() => return n,
            _ => continue,
        }
    }
}
