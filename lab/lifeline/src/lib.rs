//! The canonical process primitive: the only crate of the lab's workspace
//! with `unsafe`, usable on its own (it depends on `libc` and `rustix` only).
//!
//! Its public API is the canonical primitive and nothing else:
//!
//! - [`Pidfd`]: a process handle that cannot be made from a bare PID. It comes
//!   from [`spawn`] (`clone3(CLONE_PIDFD)`), from [`Pidfd::open_self`], from a
//!   pidfd received over a socket, or from the subreaper's own unreaped
//!   children ([`adopt_children`]), where a PID cannot be reused under us.
//! - [`spawn`]: the one way to create a process. It always installs a
//!   [`Lifeline`] (a pipe created close-on-exec before the clone whose write end
//!   only the parent keeps), runs the child with `CLONE_CLEAR_SIGHAND`, and
//!   closes every fd the child was not meant to keep with `close_range`.
//!
//! The legacy paths the lab measures (fork, kill by PID, waitpid, /proc
//! polling) and the bare creation floors of its benchmarks live in `legacy`
//! and `floor`, public only with the `legacy` feature (which the lab turns
//! on to measure them): without it the wrong shape cannot be written with
//! this crate.

mod clone;
mod exec;
mod fds;
#[cfg(feature = "legacy")]
pub mod floor;
#[cfg(feature = "legacy")]
pub mod legacy;
mod pidfd;
pub mod probe;
mod process;

pub use clone::{spawn, Child, ChildFds, Lifeline, LifelineReader, Spawn};
pub use exec::resolve_program;
pub use fds::{dup_to, mark_inherited_cloexec, move_high, own_pipe, take_inherited, LAB_FD_FLOOR};
pub use pidfd::{ExitStatus, Pidfd};
pub use process::{
    adopt_children, arm_pdeathsig, become_subreaper, block_forever, exit_now, monotonic_ns,
    reap_any, set_ignored, thread_count, unshare_pid_namespace, Reaped,
};

#[cfg(test)]
mod tests;
