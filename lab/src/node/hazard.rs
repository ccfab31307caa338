//! The hazards of casebook 4: what a node's extra threads leave behind for a
//! child that is a copy of it (fork or clone3 without exec).
//!
//! - `mutex`: threads that hold a process-global `Mutex` a fraction of the
//!   time. A copy made while one of them holds it inherits a locked mutex and
//!   no thread to unlock it: its `lock()` sleeps in a futex forever.
//! - `attendant`: a `OnceLock` global that owns a worker thread. A copy
//!   inherits the initialised global but not the worker: its request is never
//!   answered.
//!
//! The attendant's worker starts on first use, in the process that uses it
//! ([`attend`]: `init` creates the global, `start` starts its worker, `use`
//! asks it, doing both first when needed). A node or the host (the process
//! that runs the trial, which in a suite is shared by every member) may do
//! that itself: a copy of a process whose worker was started inherits the
//! global without the worker, whoever started it.
//!
//! A child that is a fresh exec has fresh globals and is unaffected.
//!
//! The guard of the canonical path: the attendant records the PID of the
//! process that started its worker, and with the strategy's guards on, a
//! request from any other process (a copy) panics instead of waiting forever.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::guard::guard_panic;
use crate::forensics::Signature;
use crate::plan::PlanNode;
use crate::scenario::{AttendantAction, Hazard};

/// One cycle of a mutex thread: it holds the lock for `hold` of it (µs).
const CYCLE_US: u64 = 1_000;

static LOCK: Mutex<()> = Mutex::new(());
static ATTENDANT: OnceLock<Attendant> = OnceLock::new();

/// A global that owns a worker thread, started on first use.
struct Attendant {
    requests: Sender<Sender<u32>>,
    /// The receiving end of the requests, until a worker takes it.
    inbox: Mutex<Option<Receiver<Sender<u32>>>>,
    /// The PID of the process that started the worker, the only process in
    /// which the worker exists; 0 while no worker was started.
    owner: AtomicU32,
    /// Who started the worker (`scenario warm-cache`, `node root`), for
    /// the reasons of the verdicts it causes.
    started_by: OnceLock<String>,
}

/// The attendant global, created on first call (without its worker).
fn attendant() -> &'static Attendant {
    ATTENDANT.get_or_init(|| {
        let (requests, rx) = channel::<Sender<u32>>();
        Attendant {
            requests,
            inbox: Mutex::new(Some(rx)),
            owner: AtomicU32::new(0),
            started_by: OnceLock::new(),
        }
    })
}

/// Start the worker of `a` in this process unless one was started (here,
/// or in a process this one is a copy of); `by` names who starts it.
fn start_worker(a: &Attendant, by: &str) {
    let inbox = a.inbox.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(rx) = inbox {
        std::thread::spawn(move || serve(rx));
        a.owner.store(std::process::id(), Ordering::SeqCst);
        let _ = a.started_by.set(by.to_string());
    }
}

fn serve(rx: Receiver<Sender<u32>>) {
    for reply in rx {
        let _ = reply.send(std::process::id());
    }
}

/// Whose worker this process's attendant has, if one was started: `(pid of
/// the process that started it, who started it)`. In a copy, the pid is
/// another process's.
pub(crate) fn attendant_worker() -> Option<(u32, String)> {
    let a = ATTENDANT.get()?;
    match a.owner.load(Ordering::SeqCst) {
        0 => None,
        pid => Some((pid, a.started_by.get().cloned().unwrap_or_default())),
    }
}

/// Do `action` with the attendant in this process: create it (`init`),
/// start its worker if it exists (`start`), or ask it for an answer,
/// creating it and starting its worker here first when needed (`use`).
/// `who` names the doer (`node root`, `the host`) in messages and as the
/// worker's starter; `copy_of` is what this process is a copy of, for the
/// owner check of a `use` (`node root`, `the host (the process that runs
/// the trial)`). A `use` blocks forever in a copy of a process whose worker
/// was started, unless `guards` is on: then it panics with the owner
/// check's reason.
pub(crate) fn attend(action: AttendantAction, guards: bool, who: &str, copy_of: &str) {
    match action {
        AttendantAction::None => {}
        AttendantAction::Init => {
            let _ = attendant();
        }
        AttendantAction::Start => {
            if let Some(a) = ATTENDANT.get() {
                start_worker(a, who);
            }
        }
        AttendantAction::Use => ask(guards, who, copy_of),
    }
}

/// Ask the attendant for an answer (see [`attend`]).
fn ask(guards: bool, who: &str, copy_of: &str) {
    let a = attendant();
    if a.owner.load(Ordering::SeqCst) == 0 {
        start_worker(a, who);
    }
    check_owner(
        a.owner.load(Ordering::SeqCst),
        std::process::id(),
        guards,
        who,
        copy_of,
    );
    let (tx, rx) = channel();
    if a.requests.send(tx).is_ok() {
        let _ = rx.recv();
    }
}

/// Start the threads and initialise the hazard of `node`, before it spawns
/// its children.
pub(super) fn start(node: &PlanNode) {
    if node.hazard == Hazard::Attendant {
        start_worker(attendant(), &format!("node {}", node.path));
    }
    for _ in 0..node.threads {
        match node.hazard {
            Hazard::Mutex => {
                let hold = CYCLE_US * node.hold_permille as u64 / 1000;
                std::thread::spawn(move || contend(hold));
            }
            Hazard::None | Hazard::Attendant => {
                std::thread::spawn(|| loop {
                    std::thread::park();
                });
            }
        }
    }
}

fn contend(hold_us: u64) {
    let free_us = CYCLE_US - hold_us;
    loop {
        {
            let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
            std::thread::sleep(Duration::from_micros(hold_us));
        }
        std::thread::sleep(Duration::from_micros(free_us));
    }
}

/// Use the hazard the way a child of a node with it does: lock the mutex
/// once, or ask the attendant for an answer. Blocks forever in a copy that
/// inherited a held lock or an attendant without its worker, unless `guards`
/// is on: then a copy's request to an attendant whose worker belongs to
/// another process panics (`lone-futex-waiter`: the wait it would block in)
/// with "worker thread belongs to pid X, this is pid Y". `path` is the node's
/// path and `parent` its parent's, for the message.
pub(super) fn touch(hazard: Hazard, guards: bool, path: &str, parent: &str) {
    match hazard {
        Hazard::None => {}
        Hazard::Mutex => drop(LOCK.lock().unwrap_or_else(|e| e.into_inner())),
        Hazard::Attendant => ask(guards, &format!("node {path}"), &format!("node {parent}")),
    }
}

/// The owner check: panic when `guards` is on and the attendant's worker
/// belongs to `owner`, not to this process (`me`). `who` is the asker
/// (`node 0`), `copy_of` what it is a copy of (`node root`, `the host`).
fn check_owner(owner: u32, me: u32, guards: bool, who: &str, copy_of: &str) {
    if guards && owner != me {
        let fix = match who.strip_prefix("node ") {
            Some("root") | None => {
                "start it by exec, not as a copy of a process with threads".to_string()
            }
            Some(path) => format!("set exec = true on {path}"),
        };
        guard_panic(
            Signature::LoneFutexWaiter,
            format!(
                "worker thread belongs to pid {owner}, this is pid {me}: {who} is a copy \
                 (no exec) of {copy_of}, whose attendant it inherited initialised but \
                 without its worker, so its request would never be answered; {fix}"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_check_passes_the_owner_and_anyone_without_guards() {
        check_owner(7, 7, true, "node 0", "node root");
        check_owner(7, 8, false, "node 0", "node root");
    }

    #[test]
    fn the_owner_check_panics_a_copy_with_guards() {
        let err = std::panic::catch_unwind(|| check_owner(7, 8, true, "node 0", "node root"))
            .unwrap_err();
        let msg = &err
            .downcast_ref::<super::super::guard::GuardMessage>()
            .unwrap()
            .message;
        assert!(
            msg.starts_with("worker thread belongs to pid 7, this is pid 8"),
            "{msg}"
        );
    }
}
