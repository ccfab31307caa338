//! How a guard of the canonical path stops a deadlock in a node process:
//! *every deadlock a panic*.
//!
//! A guard that finds a deadlock coming panics, with [`guard_panic`] when it
//! names a signature of the diagnosis (`duplicated-stdio`,
//! `self-pipe-keeper`, ...). The node's panic hook, installed by
//! [`install_hook`] when the node starts, sends the message, the panic's
//! `file:line` and the signature to the supervisor as one
//! [`Event::Panic`](crate::phase::Event::Panic) record, and ends the process
//! at once with [`EXIT_PANIC`]. The supervisor makes it the trial's `panic`
//! verdict, in milliseconds instead of at the deadline.
//!
//! The hook never returns, so a panic in a node never unwinds: in a copy
//! (clone3 or fork without exec) every frame below the node's own is a copy
//! of its parent's stack, and unwinding into it would run the parent's code
//! and destructors in the child.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::PanicHookInfo;

use crate::phase;
use crate::verdict::GuardPanic;

/// Exit code of a node that panicked (a guard stopped a deadlock); the same
/// code a panicking Rust program exits with.
pub const EXIT_PANIC: i32 = 101;

/// The payload of a guard's panic: the signature it found, and its message.
pub(super) struct GuardMessage {
    pub(super) signature: &'static str,
    pub(super) message: String,
}

/// Panic as a guard that found `signature` (a signature name of the
/// diagnosis: `duplicated-stdio`, `self-pipe-keeper`, `lone-futex-waiter`),
/// with `message`. The panic's site is the caller's `file:line`.
#[track_caller]
pub(crate) fn guard_panic(signature: &'static str, message: String) -> ! {
    std::panic::panic_any(GuardMessage { signature, message })
}

/// Install the panic hook of node `node`, which reports on `report` (the node
/// end of the phase channel) and exits with [`EXIT_PANIC`]. Call it first
/// thing in every node process: a copy inherits its parent's hook, with the
/// parent's node index.
///
/// The hook owns a duplicate of the phase channel at
/// [`lifeline::LAB_FD_FLOOR`] or above (close-on-exec), out of reach of the
/// scenario's fd numbers. A copy's inherited hook owns its parent's
/// duplicate, whose fd number `close_range` closed in a clone3 copy (and may
/// hand out again), so the inherited hook is forgotten, never dropped: the
/// drop would close whatever has that number now. In a fork copy the
/// parent's duplicate stays open (a socket, not a pipe: no EOF depends on it).
pub(super) fn install_hook(node: u32, report: BorrowedFd<'_>) {
    let fd: Option<OwnedFd> = rustix::io::fcntl_dupfd_cloexec(report, lifeline::LAB_FD_FLOOR).ok();
    std::mem::forget(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| {
        report_and_exit(node, fd.as_ref(), info)
    }));
}

/// The hook: send the panic's report (best effort: without a channel the
/// exit code alone says it) and `_exit` at once, without unwinding.
fn report_and_exit(node: u32, fd: Option<&OwnedFd>, info: &PanicHookInfo<'_>) -> ! {
    let payload = info.payload();
    let (message, signature) = if let Some(g) = payload.downcast_ref::<GuardMessage>() {
        (g.message.clone(), Some(g.signature.to_string()))
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (s.to_string(), None)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        (s.clone(), None)
    } else {
        ("a panic without a message".to_string(), None)
    };
    let site = info.location().map_or_else(
        || "unknown".to_string(),
        |l| format!("{}:{}", l.file(), l.line()),
    );
    if let Some(fd) = fd {
        let _ = phase::send_panic(
            fd.as_fd(),
            node,
            &GuardPanic {
                reason: message,
                site,
                signature,
            },
        );
    }
    lifeline::exit_now(EXIT_PANIC)
}
