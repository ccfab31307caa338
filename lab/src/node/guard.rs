//! How a guard of the canonical path stops a deadlock in a node process:
//! *every deadlock a panic*.
//!
//! A guard that finds a deadlock coming panics, with `guard_panic` when it
//! names a signature of the diagnosis (`duplicated-stdio`,
//! `self-pipe-keeper`, ...). The node's panic hook, installed by
//! `install_hook` when the node starts, sends the message, the panic's
//! `file:line` and the signature to the supervisor as one
//! [`Event::Panic`](crate::phase::Event::Panic) record, and ends the process
//! at once with [`EXIT_PANIC`]. The supervisor makes it the trial's `panic`
//! verdict, in milliseconds instead of at the deadline.
//!
//! [`refusal`] is the guard that acts before anything runs: the plan-time
//! refusal of a copy of a multithreaded node under clone3.
//!
//! The hook never returns, so a panic in a node never unwinds: in a copy
//! (clone3 or fork without exec) every frame below the node's own is a copy
//! of its parent's stack, and unwinding into it would run the parent's code
//! and destructors in the child.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::PanicHookInfo;
use std::sync::{Mutex, PoisonError};

use crate::forensics::Signature;
use crate::phase;
use crate::plan::Plan;
use crate::strategy::{Create, Strategy};
use crate::verdict::GuardPanic;

/// Exit code of a node that panicked (a guard stopped a deadlock); the same
/// code a panicking Rust program exits with.
pub const EXIT_PANIC: i32 = 101;

/// The payload of a guard's panic: the signature it found, and its message.
pub(super) struct GuardMessage {
    pub(super) signature: Signature,
    pub(super) message: String,
}

/// Panic as a guard that found `signature` (a signature of the diagnosis:
/// `duplicated-stdio`, `self-pipe-keeper`, `lone-futex-waiter`), with
/// `message`. The panic's site is the caller's `file:line`.
#[track_caller]
pub(crate) fn guard_panic(signature: Signature, message: String) -> ! {
    std::panic::panic_any(GuardMessage { signature, message })
}

/// Install the panic hook of node `node`, which reports on `report` (the node
/// end of the phase channel) and exits with [`EXIT_PANIC`]. Call it first
/// thing in every node process: a copy inherits its parent's hook, with the
/// parent's node index.
///
/// The hook is one function for the whole process, set once (in the first
/// node of a process: the root, or an exec'd node, whose [`NODE`] was
/// unset); it reads the node it reports for from [`NODE`], which each node
/// sets here. A copy's node thus allocates nothing and leaves the hook
/// alone: no copy-on-write fault in its parent's heap and hook state, in
/// every node of every trial.
///
/// [`NODE`] owns a duplicate of the phase channel at
/// [`lifeline::LAB_FD_FLOOR`] or above (close-on-exec), out of reach of the
/// scenario's fd numbers. A copy inherits its parent's duplicate, whose fd
/// number `close_range` closed in a clone3 copy (and may hand out again), so
/// the inherited one is forgotten, never dropped: the drop would close
/// whatever has that number now. In a fork copy the parent's duplicate stays
/// open (a socket, not a pipe: no EOF depends on it).
pub(super) fn install_hook(node: u32, report: BorrowedFd<'_>) {
    let fd: Option<OwnedFd> = rustix::io::fcntl_dupfd_cloexec(report, lifeline::LAB_FD_FLOOR).ok();
    let inherited = NODE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .replace((node, fd));
    // A node's process has the hook already when it is a copy of a node:
    // its NODE was set, by its parent.
    let hooked = inherited.is_some();
    std::mem::forget(inherited);
    if !hooked {
        std::mem::forget(std::panic::take_hook());
        std::panic::set_hook(Box::new(|info| {
            let me = NODE.lock().unwrap_or_else(PoisonError::into_inner);
            let (node, fd) = me
                .as_ref()
                .map_or((u32::MAX, None), |(n, f)| (*n, f.as_ref()));
            report_and_exit(node, fd, info)
        }));
    }
}

/// The node the calling process is, and the duplicate of its phase channel
/// its panic hook reports on ([`install_hook`]); `None` in a process that
/// is no node, or not yet one (the supervisor, a fresh exec).
static NODE: Mutex<Option<(u32, Option<OwnedFd>)>> = Mutex::new(None);

/// The hook: send the panic's report (best effort: without a channel the
/// exit code alone says it) and `_exit` at once, without unwinding.
fn report_and_exit(node: u32, fd: Option<&OwnedFd>, info: &PanicHookInfo<'_>) -> ! {
    let payload = info.payload();
    let (message, signature) = if let Some(g) = payload.downcast_ref::<GuardMessage>() {
        (g.message.clone(), Some(g.signature))
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

/// The plan-time guard of the canonical primitive: a node that is a copy
/// (no exec) of a multithreaded parent may inherit a held lock or a global
/// without its thread (casebook 4), so clone3 refuses to make one. `Some`
/// with the reason (and this site) when `plan` asks for that under the
/// `clone3` create axis of `strategy`, whatever its guards switch: clone3
/// would refuse the copy at spawn time anyway (`EDEADLK`), and this says so
/// before anything runs. `lab run` makes every such trial a `panic`;
/// `lab check` and `lab plan` print the reason and exit with status 1.
pub fn refusal(plan: &Plan, strategy: &Strategy) -> Option<GuardPanic> {
    if strategy.create != Create::Clone3 {
        return None;
    }
    let nodes = &plan.nodes;
    nodes.iter().find_map(|n| {
        if !n.threaded() {
            return None;
        }
        let copy = n
            .children
            .iter()
            .map(|&c| &nodes[c as usize])
            .find(|c| !c.exec && c.command.is_none())?;
        Some(GuardPanic::here(
            format!(
                "refused at plan time: node {} would be a copy (clone3 without exec) of node {}, \
                 which has threads ({}); a copy inherits their locks and globals but not the \
                 threads. Set exec = true on {}",
                copy.path,
                n.path,
                n.knobs().join(", "),
                copy.path
            ),
            None,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Scenario, BUILTIN};

    fn refusal_of(name: &str, strategy: &str) -> Option<GuardPanic> {
        let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
        let scenario = Scenario::parse(name, text).unwrap();
        refusal(
            &Plan::new(&scenario, 1),
            &Strategy::parse(strategy).unwrap(),
        )
    }

    #[test]
    fn a_copy_of_a_threaded_node_is_refused_only_under_clone3() {
        let refused = refusal_of("mt-fork-attendant", "canonical").unwrap();
        let r = refused.reason;
        assert!(
            r.contains("node 0 would be a copy") && r.contains("exec = true"),
            "{r}"
        );
        assert!(
            refused.site.starts_with("lab/src/node/guard.rs:"),
            "{}",
            refused.site
        );
        assert_eq!(refusal_of("mt-fork-attendant", "legacy"), None);
        // The primitive refuses whatever the guards switch says.
        let unguarded = "create=clone3,death=lifeline,observe=pidfd,guards=off";
        assert!(refusal_of("mt-fork-attendant", unguarded).is_some());
        // Its children exec: nothing to refuse.
        assert_eq!(refusal_of("mt-fork-mutex", "canonical"), None);
        assert_eq!(refusal_of("pdeathsig-thread", "canonical"), None);
        assert_eq!(refusal_of("nested", "canonical"), None);
    }
}
