//! The supervisor: a fresh, single-threaded process (the lab's own binary in
//! its hidden `__supervisor` mode) that runs trials one after another. It is
//! the subreaper of every trial, so every orphan of a trial comes to it.
//!
//! This module is the supervisor process's own loop, on its side of the
//! process boundary; the lab's handle on a supervisor (starting it, talking
//! to it, ending it) lives under `session/`.
//!
//! It is also the trials' **host**: a plan's `[host]` action runs in it,
//! before the root, and what it leaves (the attendant global and its worker
//! thread) persists for the trials it runs after. `lab run` gives each trial
//! of such a plan a fresh supervisor; a suite (`lab suite`) runs its members
//! in one, as a test binary runs its tests.
//!
//! Its fds, as the lab execs it: 0 and 1 `/dev/null`, 2 the lab's stderr,
//! 3 the read end of its lifeline to the lab, on which the lab also writes one
//! [`TrialRequest`] per line, and 4 the pipe on which it answers one
//! [`Outcome`] per line. The lab ends it with a `bye` line; EOF or
//! POLLHUP on fd 3 without one means the lab is gone: the
//! supervisor ends the trial in flight, leaves nothing behind, and exits.
//! A wrap supervisor (`lab wrap`) is not exec'd but forked from the wrap
//! ([`wrap`]): it has the wrap's own fds 0, 1 and 2, which it hands the
//! program untouched, and the control pipe of the signals the wrap
//! forwards (`trial/wrap_control.rs`).
//!
//! # Its PID namespace
//!
//! The lab starts it as init (PID 1) of a PID namespace of its own, in a
//! private mount namespace with its own `/proc` (and in a user namespace
//! when the lab is not root): see the lab's side under `session/`. So every PID a
//! trial handles is local to the trial: a legacy strategy's `kill(pid)`,
//! `kill(-pgid)` and `waitpid(pid)` to a PID its node has already reaped
//! can hit only a process of the same trial, never one of the host, and
//! `/proc/PID` (the legacy `/proc` oracle, the forensics) reads the
//! trial's processes. The legacy behaviour under test is unchanged; only
//! its reach is. Being init also means: it reaps every orphan of the trial
//! (as the subreaper it also makes itself), it gets from inside only the
//! signals it has a handler for (the lab ends it by its lifeline, or with
//! SIGKILL through its pidfd), and when it dies, however, the kernel
//! SIGKILLs every process left in its namespace: a trial cannot outlive
//! its supervisor. The PIDs the user is shown are translated to the lab's
//! (`pidns`). Where no namespace could be made the lab starts it without
//! one and every result says so (`pid_namespace` `none`).
//!
//! A hang kept alive for the user (`--keep-hung`) is answered twice: first
//! with `kept` set while the tree is still alive, then, after the lab writes
//! a `release` line (or dies), once more after the cleanup.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::trial;
use crate::trial::protocol::{TrialRequest, BYE, PLAN_FD, RESULT_FD};
use crate::verdict::Outcome;

/// The supervisor exec'd by the lab (`lab __supervisor`): take its fds
/// ([`PLAN_FD`], [`RESULT_FD`], and the lab's `/proc` where it is init of
/// a PID namespace of its own) and [`serve`] until the lab closes the
/// lifeline. Returns the process exit code: 0 on a clean end, 3 when it
/// could not work. `lab_cgroup` is the lab's cgroup (`--lab-cgroup`),
/// known from the start so that a lab that dies before its first request
/// still has its cgroup removed by the last supervisor out.
pub fn main(lab_cgroup: Option<PathBuf>) -> i32 {
    // In a PID namespace of its own the lab gave us its /proc (for the PIDs
    // the user is shown); elsewhere there is none to take.
    crate::pidns::claim_host_proc();
    let (plans, results) = match (
        lifeline::claim_inherited(PLAN_FD),
        lifeline::claim_inherited(RESULT_FD),
    ) {
        (Ok(p), Ok(r)) => (p, r),
        _ => {
            say("lab supervisor: started without its fds 3 and 4; it is started by `lab`, not by hand");
            return 3;
        }
    };
    run(plans, results, None, lab_cgroup)
}

/// The wrap supervisor (`lab wrap`), forked from the wrap (no exec) as
/// init of its PID namespace where one could be made: its lifeline's read
/// end in `fds.lifeline`, and in `fds.given` the write end of the result
/// pipe, the read end of the control pipe of the signals the wrap forwards
/// to the program, and, in a PID namespace, the wrap's `/proc`. It shares
/// the wrap's stdin, stdout and stderr, which it hands to the program
/// untouched. Returns the exit code, as [`main`].
pub fn wrap(fds: lifeline::ChildFds, lab_cgroup: Option<PathBuf>) -> i32 {
    let mut given = fds.given.into_iter();
    let (Some(results), Some(control)) = (given.next(), given.next()) else {
        say("lab supervisor: a wrap supervisor needs its result and control pipes");
        return 3;
    };
    if let Some(proc) = given.next() {
        crate::pidns::keep_host_proc(proc);
    }
    run(fds.lifeline.into(), results, Some(control), lab_cgroup)
}

/// Either supervisor, its fds in hand: leave the lab's session, become the
/// subreaper, [`serve`], then remove the lab's cgroup should the lab be
/// gone.
fn run(
    plans: OwnedFd,
    results: OwnedFd,
    control: Option<OwnedFd>,
    lab_cgroup: Option<PathBuf>,
) -> i32 {
    // Out of the lab's session: a Ctrl-C at the terminal reaches the lab,
    // whose death the supervisor then sees on its lifeline and cleans up.
    let _ = rustix::process::setsid();
    // Init of its namespace is the reaper of every orphan there already;
    // the subreaper flag costs nothing and covers the fallback.
    if let Err(e) = lifeline::become_subreaper() {
        say(&format!("lab supervisor: cannot become a subreaper: {e}"));
        return 3;
    }
    let reader = match plans.try_clone() {
        Ok(fd) => BufReader::new(File::from(fd)),
        Err(e) => {
            say(&format!("lab supervisor: {e}"));
            return 3;
        }
    };
    let mut results = File::from(results);
    let mut lab_cgroup = lab_cgroup;
    let code = serve(
        reader,
        &mut results,
        &plans,
        control.as_ref(),
        &mut lab_cgroup,
    );
    // If the lab died, nobody else removes its cgroup: the last supervisor
    // out removes it (rmdir fails harmlessly while others still use it).
    if let Some(dir) = lab_cgroup {
        let _ = std::fs::remove_dir(dir);
    }
    code
}

/// Answer requests until EOF (0) or a fatal error (3); remembers the lab's
/// cgroup directory of the last request in `lab_cgroup`.
fn serve(
    mut reader: BufReader<File>,
    results: &mut File,
    plans: &OwnedFd,
    control: Option<&OwnedFd>,
    lab_cgroup: &mut Option<PathBuf>,
) -> i32 {
    // The trial cgroup the last trial left empty, for the next one; removed
    // when the supervisor returns.
    let mut spare = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return 0,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line == BYE {
            // An orderly end: the lab removes its own cgroup.
            *lab_cgroup = None;
            return 0;
        }
        let req: TrialRequest = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                say(&format!("lab supervisor: bad request: {e}"));
                return 3;
            }
        };
        lab_cgroup.clone_from(&req.cgroup_parent);
        // A kept hang: answer at once, then wait for the lab's release line
        // (or its death) before the trial is cleaned up.
        let mut hold = |o: &Outcome| {
            if answer(results, o) {
                let mut release = String::new();
                let _ = reader.read_line(&mut release);
            }
        };
        let Some(outcome) = trial::run(
            &req,
            plans.as_fd(),
            control.map(AsFd::as_fd),
            &mut hold,
            &mut spare,
        ) else {
            return 0;
        };
        if !answer(results, &outcome) {
            return 0;
        }
    }
}

/// Write one outcome line; false when the lab is gone.
fn answer(results: &mut File, outcome: &Outcome) -> bool {
    let mut out = serde_json::to_string(outcome).expect("an outcome always serializes");
    out.push('\n');
    results.write_all(out.as_bytes()).is_ok()
}

/// One line on the lab's stderr (shared with the supervisor), dropped when
/// that is closed: a supervisor never panics over a message.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
