//! The `clone3` system call: `struct clone_args`, the flags the crate
//! passes, and [`clone3`], the fork-like call that returns in both
//! processes. [`Spawn`](crate::Spawn) builds its children on it, the vfork
//! path and the probes too.
//!
//! # References
//! - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::pidfd::Pidfd;

pub(super) const CLONE_PIDFD: u64 = 0x1000;
/// Not `libc::CLONE_CLEAR_SIGHAND`: libc 0.2.19x defines it as an overflowing
/// `c_int` that evaluates to 0 (docs/design.md, the section on traps).
pub(super) const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// Same trap as [`CLONE_CLEAR_SIGHAND`].
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_VM`: the child runs in the caller's memory (the vfork path only).
#[cfg(target_arch = "x86_64")]
pub(super) const CLONE_VM: u64 = 0x100;
/// `CLONE_VFORK`: the caller sleeps until the child execs or exits.
#[cfg(target_arch = "x86_64")]
pub(super) const CLONE_VFORK: u64 = 0x4000;

/// `struct clone_args` of `<linux/sched.h>`, version 2 (88 bytes).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

/// `clone3(args)`, with `args.pidfd` pointed at a fresh slot. Returns in
/// both processes: [`Forked::Parent`] with the child's pidfd,
/// [`Forked::Child`] in the child.
///
/// # Safety
/// - `args.flags` must include [`CLONE_PIDFD`] and must not include
///   `CLONE_VM`, `CLONE_VFORK`, `CLONE_THREAD` or `CLONE_SETTLS` (the child
///   must be a separate copy of the address space, resuming on its own copy
///   of the stack), and `args.stack`/`args.tls` must be 0.
/// - On [`Forked::Child`], the caller must end the child with `_exit` or an
///   exec, never returning into frames whose values own resources of the
///   parent, and, unless the caller had exactly one thread, make only
///   async-signal-safe calls until then (no allocation, no lock: another
///   thread may have held one at the clone, and it stays held forever in
///   the copy).
///
/// # Errors
/// `ENOSYS` before Linux 5.3, `EINVAL` for flags the kernel does not know,
/// `EAGAIN`/`ENOMEM`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
pub(super) unsafe fn clone3(mut args: CloneArgs) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // SAFETY: clone3 without CLONE_VM behaves like fork (the caller's
    // contract): the child gets a copy of the address space and resumes here
    // on its own copy of the stack, so no memory is shared. `args` is a valid
    // clone_args of the size passed, and `pidfd` outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        // In the child: return a plain enum value. Async-signal-safe: no
        // allocation, no lock, nothing but registers and our stack copy.
        0 => Ok(Forked::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that
            // nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Forked::Parent(Pidfd::from_kernel(fd, pid as i32)))
        }
    }
}

/// Which side of a clone the caller is on.
pub(super) enum Forked {
    /// The caller, with the child's pidfd.
    Parent(Pidfd),
    /// The child.
    Child,
}
