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
//! A child that is a fresh exec has fresh globals and is unaffected.
//!
//! The guard of the canonical path: the attendant records the PID of the
//! process that started its worker, and with the strategy's guards on, a
//! request from any other process (a copy) panics instead of waiting forever.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::guard::guard_panic;
use crate::plan::PlanNode;
use crate::scenario::Hazard;

/// One cycle of a mutex thread: it holds the lock for `hold` of it (µs).
const CYCLE_US: u64 = 1_000;

static LOCK: Mutex<()> = Mutex::new(());
static ATTENDANT: OnceLock<Attendant> = OnceLock::new();

/// A global that owns a worker thread, started on first use.
struct Attendant {
    requests: Sender<Sender<u32>>,
    /// The PID of the process that started the worker: the only process in
    /// which the worker exists.
    owner: u32,
}

fn attendant() -> &'static Attendant {
    ATTENDANT.get_or_init(|| {
        let (requests, rx) = channel::<Sender<u32>>();
        std::thread::spawn(move || serve(rx));
        Attendant {
            requests,
            owner: std::process::id(),
        }
    })
}

fn serve(rx: Receiver<Sender<u32>>) {
    for reply in rx {
        let _ = reply.send(std::process::id());
    }
}

/// Start the threads and initialise the hazard of `node`, before it spawns
/// its children.
pub(super) fn start(node: &PlanNode) {
    if node.hazard == Hazard::Attendant {
        let _ = attendant();
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
        Hazard::Attendant => {
            let attendant = attendant();
            check_owner(attendant.owner, std::process::id(), guards, path, parent);
            let (tx, rx) = channel();
            if attendant.requests.send(tx).is_ok() {
                let _ = rx.recv();
            }
        }
    }
}

/// The owner check: panic when `guards` is on and the attendant's worker
/// belongs to `owner`, not to this process (`me`).
fn check_owner(owner: u32, me: u32, guards: bool, path: &str, parent: &str) {
    if guards && owner != me {
        guard_panic(
            "lone-futex-waiter",
            format!(
                "worker thread belongs to pid {owner}, this is pid {me}: node {path} is a copy \
                 (no exec) of node {parent}, whose attendant it inherited initialised but \
                 without its worker, so its request would never be answered; set exec = true \
                 on {path}"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_check_passes_the_owner_and_anyone_without_guards() {
        check_owner(7, 7, true, "0", "root");
        check_owner(7, 8, false, "0", "root");
    }

    #[test]
    fn the_owner_check_panics_a_copy_with_guards() {
        let err = std::panic::catch_unwind(|| check_owner(7, 8, true, "0", "root")).unwrap_err();
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
