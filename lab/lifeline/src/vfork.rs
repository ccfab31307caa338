//! The exec path without a copy of the caller: `clone3(CLONE_VM |
//! CLONE_VFORK)` on a child stack of its own, as glibc's `posix_spawn`
//! creates its child. x86_64 only (the child's entry runs through the
//! inline assembly of [`raw`](super::raw)); elsewhere every child is a copy.
//!
//! # References
//! - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html) (`CLONE_VM`, `CLONE_VFORK`)
//! - [vfork(2)](https://man7.org/linux/man-pages/man2/vfork.2.html)
//! - glibc: `sysdeps/unix/sysv/linux/spawni.c`, `__spawnix`

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::clone3::{
    CloneArgs, CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_PIDFD, CLONE_VFORK, CLONE_VM,
};
use super::execve::{ExecPrep, PreExec};
use super::pidfd::Pidfd;
use super::raw;

/// The exec path without the copy: `clone3(CLONE_VM | CLONE_VFORK |
/// CLONE_PIDFD | CLONE_CLEAR_SIGHAND)` (plus `CLONE_INTO_CGROUP`) on a
/// child stack of its own, the way glibc's `posix_spawn`
/// (`sysdeps/unix/sysv/linux/spawni.c`) creates its child. The child
/// shares the caller's memory and runs [`ExecPrep::exec_in_child`] on
/// `prep`, which was built before the clone; the caller's thread
/// sleeps until the child has exec'd or exited, then reads the error
/// pipe as the copy path does (the caller, with the returned pidfd). No page table is copied, so the cost
/// does not grow with the caller's memory.
///
/// Signals: every signal is blocked around the clone (the kernel's
/// full set, glibc's internal ones included, as posix_spawn does), so
/// that no handler of the caller runs in the child, which shares its
/// memory, before `CLONE_CLEAR_SIGHAND` has taken effect or ever; the
/// caller's mask is restored in the parent after the clone, and in the
/// child just before the exec.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html) (`CLONE_VM`, `CLONE_VFORK`)
/// - [vfork(2)](https://man7.org/linux/man-pages/man2/vfork.2.html)
/// - [sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html)
/// - glibc: `sysdeps/unix/sysv/linux/spawni.c`, `__spawnix`
pub(super) fn spawn_vfork(
    cgroup: Option<BorrowedFd<'_>>,
    prep: &mut ExecPrep<'_>,
    err_fd: RawFd,
) -> io::Result<Pidfd> {
    let stack = ChildStack::new()?;
    let mut args = CloneArgs {
        flags: CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base() as u64,
        stack_size: stack.size() as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    let mut old: raw::KernelSigset = 0;
    raw::sigprocmask(libc::SIG_SETMASK, Some(&!0), Some(&mut old))
        .map_err(io::Error::from_raw_os_error)?;
    let mut plan = VforkChild {
        prep,
        err_fd,
        pre: PreExec {
            hygiene: true,
            sigmask: Some(old),
            ..PreExec::default()
        },
    };
    // SAFETY: CLONE_VM | CLONE_VFORK with a stack of its own (mapped for
    // this child alone, top 16-byte aligned) and neither CLONE_THREAD,
    // CLONE_SETTLS nor CLONE_SIGHAND: clone3_vfork's contract. The child
    // runs `vfork_child` on `plan`, which lives in this frame until the
    // call returns, and the call returns only when the child has
    // exec'd or exited, so nothing the child reads is freed under it.
    let forked = unsafe { clone3_vfork(args, &stack, &mut plan) };
    // Restore the caller's mask whatever happened; the mask set here is
    // a valid one (read above), so this cannot fail.
    let _ = raw::sigprocmask(libc::SIG_SETMASK, Some(&old), None);
    // The child has exec'd (its memory is its own) or exited: its stack
    // is free.
    drop(stack);
    let pidfd = forked?;
    VFORK_SPAWNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(pidfd)
}

/// How many children the vfork path has created in this process, for the
/// tests that check which path a spawn took ([`crate::vfork_spawns`]).
pub(super) static VFORK_SPAWNS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// What the child of the vfork path runs: [`ExecPrep::exec_in_child`] on
/// the parent's `prep`, with the error pipe and the signal mask to restore.
struct VforkChild<'p, 'a> {
    prep: &'p mut ExecPrep<'a>,
    err_fd: RawFd,
    pre: PreExec,
}

/// The entry point of a vfork-path child, on its own stack: exec the plan
/// of `arg` (a `*mut VforkChild`) or report why not and `_exit(127)`.
///
/// Async-signal-safe: it only calls [`ExecPrep::exec_in_child`], which
/// makes raw errno-free syscalls on memory prepared before the clone and
/// writes nothing of the parent's but the plan's own `parked` slots.
///
/// # Safety
/// Only as the child function of [`clone3_vfork`], with `arg` the
/// `VforkChild` it was given.
unsafe extern "C" fn vfork_child(arg: *mut std::ffi::c_void) -> ! {
    // SAFETY: `arg` is the `&mut VforkChild` clone3_vfork was given; the
    // parent's thread sleeps (CLONE_VFORK) until this child has exec'd or
    // exited, so the plan is ours alone meanwhile.
    let plan = unsafe { &mut *arg.cast::<VforkChild<'_, '_>>() };
    // SAFETY: we are the child just created by clone3(CLONE_VM |
    // CLONE_VFORK) on a stack of our own, from the process that built
    // `plan.prep` (without a namespace: exec_with takes this path only
    // then); `err_fd` is the close-on-exec write end of the error pipe whose
    // read end the parent reads, and the fds of the moves are open.
    unsafe { plan.prep.exec_in_child(plan.err_fd, plan.pre) }
}

/// `clone3(args)` with `CLONE_VM | CLONE_VFORK` on `stack`, whose child
/// runs [`vfork_child`] on `plan`; returns in the parent only, once the
/// child has exec'd or exited, with the child's pidfd.
///
/// # Safety
/// `args.flags` includes `CLONE_VM`, `CLONE_VFORK` and [`CLONE_PIDFD`] and
/// none of `CLONE_THREAD`, `CLONE_SETTLS`, `CLONE_SIGHAND`;
/// `args.stack`/`args.stack_size` are `stack`'s. `plan` is valid for the
/// child as [`vfork_child`] needs.
///
/// # Errors
/// `ENOSYS` before Linux 5.3, `EINVAL` for flags the kernel does not know
/// (`CLONE_CLEAR_SIGHAND` before 5.5, `CLONE_INTO_CGROUP` before 5.7),
/// `EAGAIN`/`ENOMEM`, `EBADF` for a bad cgroup fd.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
/// - kernel: `kernel/fork.c`, `kernel_clone` (`wait_for_vfork_done`)
unsafe fn clone3_vfork(
    mut args: CloneArgs,
    stack: &ChildStack,
    plan: &mut VforkChild<'_, '_>,
) -> io::Result<Pidfd> {
    debug_assert_eq!(args.stack, stack.base() as u64);
    let mut pidfd: RawFd = -1;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // SAFETY: `args` is a valid clone_args of the size passed, `pidfd`
    // outlives the call, the stack is mapped for this child alone; the
    // flags and the child's code are this function's contract.
    let rc = unsafe {
        raw::clone3_run(
            (&mut args as *mut CloneArgs).cast(),
            std::mem::size_of::<CloneArgs>(),
            vfork_child,
            (plan as *mut VforkChild<'_, '_>).cast(),
        )
    };
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc as i32));
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a new pidfd that nothing
    // else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Pidfd::from_kernel(fd, rc as i32))
}

/// The stack of a vfork-path child: an anonymous private mapping with a
/// guard page below it (a child that overflows it faults instead of
/// writing into the caller's memory), unmapped on drop. 64 KiB: the child
/// runs one function of a few frames (glibc's posix_spawn gives its child
/// 32 KiB plus the size of argv, which it may copy for a script).
struct ChildStack {
    map: *mut std::ffi::c_void,
}

impl ChildStack {
    const GUARD: usize = 4096;
    const SIZE: usize = 64 * 1024;

    /// Map the stack and its guard page.
    ///
    /// # Errors
    /// `ENOMEM` from mmap or mprotect.
    ///
    /// # References
    /// - [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html) (`MAP_STACK`, `MAP_NORESERVE`)
    /// - [mprotect(2)](https://man7.org/linux/man-pages/man2/mprotect.2.html)
    fn new() -> io::Result<Self> {
        // SAFETY: a new anonymous mapping at an address the kernel picks;
        // it aliases nothing of ours.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::GUARD + Self::SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { map };
        // SAFETY: the first page of the mapping made above, which nothing
        // uses.
        if unsafe { libc::mprotect(map, Self::GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest address of the usable stack (`clone_args.stack`).
    fn base(&self) -> *mut std::ffi::c_void {
        self.map.wrapping_byte_add(Self::GUARD)
    }

    /// The usable size (`clone_args.stack_size`); base + size, the top, is
    /// page-aligned, so 16-byte aligned.
    fn size(&self) -> usize {
        Self::SIZE
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, which no child uses any more
        // (a vfork child has exec'd or exited before the clone returned).
        unsafe { libc::munmap(self.map, Self::GUARD + Self::SIZE) };
    }
}
