//! The canonical process primitive: create, watch and end Linux processes
//! without orphans, PID reuse or leaked fds. The only crate of the lab's
//! workspace with `unsafe`, usable on its own: it depends on `libc` and
//! `rustix` only, and needs Linux 5.9 or later (`clone3`, pidfds,
//! `close_range`; 5.11 for `CLOSE_RANGE_CLOEXEC`).
//!
//! # The primitive
//!
//! - [`Command`]: the builder for a child (a program, or a closure run in a
//!   copy of the caller), with args, environment, working directory, stdio,
//!   the fds to keep and a cgroup. [`spawn`] and [`Spawn`] are its
//!   lower-level forms; all three create every child through one `clone3`:
//!   a program child without a copy of the caller (`CLONE_VM |
//!   CLONE_VFORK` on a stack of its own, as glibc's `posix_spawn`), a
//!   closure child in a copy.
//! - [`Pidfd`]: a process handle that cannot be made from a bare PID. It
//!   comes from a spawn (`clone3(CLONE_PIDFD)`), from [`Pidfd::open_self`],
//!   from a pidfd received over a socket ([`Pidfd::from_received`]), or from
//!   the subreaper's own unreaped children ([`adopt_children`]), where a PID
//!   cannot be reused under us. It signals with `pidfd_send_signal` (a
//!   [`Signal`], re-exported from rustix) and waits with
//!   `waitid(P_PIDFD)`, giving an [`ExitStatus`].
//! - [`Lifeline`] / [`LifelineReader`]: how a child learns its parent died.
//! - [`PidNamespace`]: a child started as init (PID 1) of a PID namespace
//!   of its own, with its own `/proc` (and a user namespace where the caller
//!   is unprivileged): [`Spawn::pid_namespace`], [`Command::pid_namespace`].
//!   Signals and waits by PID from inside reach only its namespace, and its
//!   death ends every process left there.
//!
//! ```
//! use lifeline::{Command, ExitStatus, Signal};
//!
//! let child = Command::new("sleep").arg("60").spawn()?;
//! assert!(child.pidfd().send_signal(Signal::TERM)?);
//! assert_eq!(child.wait()?, ExitStatus::Signaled(Signal::TERM.as_raw()));
//! // Reaped: the pidfd now refers to nothing, and a reused PID is safe.
//! assert!(!child.pidfd().send_signal(Signal::KILL)?);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//!
//! Every child created by this crate:
//! - has a **lifeline**: a pipe created close-on-exec *before* the clone,
//!   whose write end only the parent keeps; the child sees EOF (`POLLHUP`)
//!   the moment the parent dies, with no window in which that death goes
//!   unnoticed (the race that defeats `PR_SET_PDEATHSIG`);
//! - starts with its signal handlers reset (`CLONE_CLEAR_SIGHAND`; ignored
//!   signals stay ignored);
//! - holds only stdio, its lifeline's read end and the fds it was given:
//!   every other fd is closed (`close_range`) or, for a program, marked
//!   close-on-exec before the exec, so no write end of anybody's lifeline or
//!   capture pipe leaks into it;
//! - is known to its parent by a [`Pidfd`] only: signals and waits can never
//!   hit a process that reused its PID;
//! - when it execs, reports a failed exec as the spawn's error (the errno
//!   and a footer through a close-on-exec pipe), never as a child that exits
//!   127, and never mistakes a short report for success.
//!
//! # What runs in the child
//!
//! Between the clone and the exec (or the end of a closure child) code runs
//! in a *copy* of the caller, or, for a program, in the caller's own memory.
//! A copy of a multithreaded process may find locks held (malloc's, std's,
//! yours) by threads that do not exist in the copy, and block forever. So:
//! - A program child ([`Command::new`], [`Spawn::exec`]) runs no code of the
//!   caller in the child: only the crate's own steps (`dup3`,
//!   `close_range`, `chdir`, `rt_sigaction` (SIGPIPE to its default, as
//!   std's `Command` does), `rt_sigprocmask`, `execve`, `write`,
//!   `exit_group` on memory prepared before the clone), raw syscalls that
//!   are async-signal-safe and leave `errno` alone. It works from any thread
//!   of a multithreaded caller. The environment is copied in the parent
//!   before the clone; the child never reads `environ`. On x86_64 (without
//!   a [`PidNamespace`]) the child is made without copying the caller's page
//!   tables: `clone3(CLONE_VM | CLONE_VFORK)` on a stack of its own, with
//!   every signal blocked around the clone and the caller's mask restored
//!   before the exec; the calling thread sleeps until the child has exec'd
//!   or exited, so the cost does not grow with the caller's memory.
//! - A closure child ([`Command::from_fn`], [`Spawn::run`], [`spawn`]) runs
//!   the caller's closure **in the child**. The crate refuses it (`EDEADLK`)
//!   when the caller has more than one thread, so the closure may run
//!   ordinary code (allocate, lock), like a single-threaded program. It must
//!   not use or drop values owning fds that it was not given to keep: those
//!   are closed in the child. It ends the child with its return value as the
//!   exit code (`_exit`: no `atexit` handlers, no flushing of the parent's
//!   buffers).
//!
//! # Inherited fds and fd numbers
//!
//! A program started with fds at fixed numbers takes them with the safe
//! [`claim_inherited`] / [`LifelineReader::claim_inherited`]: once per fd,
//! only fds that were open before `main` ran. [`dup_to_free`] duplicates an
//! fd to a chosen number only if that number is free. Their unchecked
//! counterparts ([`take_inherited`], [`LifelineReader::inherited`],
//! [`dup_to`]) are `unsafe fn`s with a `# Safety` section.
//!
//! # The `legacy` feature
//!
//! The legacy paths the lab measures against the primitive (`fork`, kill by
//! PID, `waitpid(pid)`, liveness read from `/proc/PID/stat`,
//! `PR_SET_PDEATHSIG`, `std::process::Command` with a `pre_exec` hook) and
//! the bare creation floors of its benchmarks live in the modules `legacy`
//! and `floor`, which exist only with the `legacy` feature (the lab turns it
//! on to reproduce the casebook). Without it the wrong shape (fork without
//! a lifeline, signal by PID, observe by /proc) cannot be written with this
//! crate.
//!
//! # References
//! - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
//! - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
//! - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
//! - [signal-safety(7)](https://man7.org/linux/man-pages/man7/signal-safety.7.html)

mod clone3;
mod command;
mod connector;
mod execve;
mod fds;
#[cfg(feature = "legacy")]
pub mod floor;
mod inherited;
#[cfg(feature = "legacy")]
pub mod legacy;
mod lifeline;
mod namespace;
mod pidfd;
mod poll;
pub mod probe;
mod proc_event;
mod process;
mod raw;
mod spawn;
#[cfg(target_arch = "x86_64")]
mod vfork;

pub use command::{Command, Stdio};
pub use connector::ProcEvents;
pub use execve::resolve_program;
pub use fds::{
    claim_inherited, dup_to, dup_to_free, mark_inherited_cloexec, move_high, own_pipe,
    take_inherited, LAB_FD_FLOOR,
};
pub use lifeline::{Lifeline, LifelineReader};
pub use namespace::PidNamespace;
pub use pidfd::{ExitStatus, Pidfd};
pub use poll::{each_open_fd, in_fd_table, poll_now};
pub use proc_event::ProcEvent;
pub use process::{
    adopt_children, arm_pdeathsig, become_subreaper, block_forever, exit_now, monotonic_ns,
    reap_any, reap_exited, set_ignored, thread_count, unshare_pid_namespace, Reaped,
};
/// A signal for [`Pidfd::send_signal`] and friends (rustix's, re-exported so
/// that callers need no other crate).
pub use rustix::process::Signal;
pub use spawn::{spawn, Child, ChildFds, Spawn};

/// How many children the vfork exec path (`clone3(CLONE_VM |
/// CLONE_VFORK)`) has created in this process; always 0 off x86_64, where
/// there is no such path. For tests that check which path a spawn took.
#[doc(hidden)]
pub fn vfork_spawns() -> usize {
    #[cfg(target_arch = "x86_64")]
    return vfork::VFORK_SPAWNS.load(std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_arch = "x86_64"))]
    return 0;
}

#[cfg(test)]
mod tests;
