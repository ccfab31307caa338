//! Raw Linux syscalls that never touch `errno`, for the code that runs in a
//! child between its creation and its exec.
//!
//! A child cloned with `CLONE_VM` (the vfork exec path of
//! [`Spawn::exec`](super::Spawn::exec)) shares the parent's memory,
//! thread-local storage included: a libc wrapper that sets `errno` there
//! writes the parent thread's `errno`. So the child makes its syscalls
//! through these wrappers, which return the kernel's result as it is (a
//! negative value is `-errno`) the way glibc's `INTERNAL_SYSCALL` does in
//! its `posix_spawn` child (`sysdeps/unix/sysv/linux/spawni.c`). Each is one
//! `syscall` instruction: async-signal-safe, no allocation, no lock, no
//! global read or written.
//!
//! On x86_64 they are inline assembly. Elsewhere they fall back to
//! `libc::syscall` and read `errno` back (not errno-free; there the crate
//! has no `CLONE_VM` path, and a copy of the parent owns its own `errno`).

use std::ffi::{c_char, c_void};
use std::os::fd::RawFd;

/// A kernel `sigset_t` (64 signals on the architectures the crate supports:
/// `_NSIG / 8` = 8 bytes), as `rt_sigprocmask` takes it.
pub(super) type KernelSigset = u64;

/// The result of a raw syscall: the value, or the errno of a negative
/// return in `-4095..=-1` (the kernel's error range).
fn check(ret: isize) -> Result<usize, i32> {
    if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret as usize)
    }
}

#[cfg(target_arch = "x86_64")]
mod arch {
    /// `syscall` with up to four arguments (`rdi`, `rsi`, `rdx`, `r10`); the
    /// kernel clobbers `rcx` and `r11` and returns in `rax`.
    ///
    /// # Safety
    /// As the syscall `nr`: its pointer arguments must be valid for what it
    /// reads and writes.
    ///
    /// # References
    /// - [syscall(2)](https://man7.org/linux/man-pages/man2/syscall.2.html) (x86-64 calling convention)
    #[inline(always)]
    pub(super) unsafe fn syscall4(
        nr: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY: the syscall instruction with the kernel's x86-64 calling
        // convention; what the syscall does with its arguments is the
        // caller's contract. Not `nomem`: the kernel may read and write
        // memory the arguments point to.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod arch {
    /// `libc::syscall` with up to four arguments, `-errno` on failure.
    ///
    /// # Safety
    /// As the syscall `nr`.
    ///
    /// # References
    /// - [syscall(2)](https://man7.org/linux/man-pages/man2/syscall.2.html)
    #[inline(always)]
    pub(super) unsafe fn syscall4(
        nr: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
    ) -> isize {
        // SAFETY: the caller's contract.
        let ret = unsafe { libc::syscall(nr, a, b, c, d) };
        if ret == -1 {
            -(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO) as isize)
        } else {
            ret as isize
        }
    }
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec duplicate of `fd` at
/// the lowest free number at or above `min`. Replaces no open fd.
///
/// # Errors
/// `EBADF`, `EINVAL`, `EMFILE` as the errno.
///
/// # References
/// - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) (`F_DUPFD_CLOEXEC`)
/// - kernel: `fs/fcntl.c`, `do_fcntl`
pub(super) fn dupfd_cloexec(fd: RawFd, min: RawFd) -> Result<RawFd, i32> {
    // SAFETY: integers only; F_DUPFD_CLOEXEC allocates a new, free number.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_DUPFD_CLOEXEC as usize,
            min as usize,
            0,
        )
    };
    check(ret).map(|fd| fd as RawFd)
}

/// `dup3(fd, target, 0)`: `target` becomes a duplicate of `fd`, without
/// close-on-exec. `fd` and `target` must differ (`EINVAL` otherwise).
///
/// # Safety
/// Whatever was open at `target` is closed and replaced: no value may own
/// or use it afterwards (in a child about to exec, nothing does).
///
/// # Errors
/// `EBADF`, `EINVAL`, `EBUSY` as the errno.
///
/// # References
/// - [dup3(2)](https://man7.org/linux/man-pages/man2/dup3.2.html)
/// - kernel: `fs/file.c`, `ksys_dup3`
pub(super) unsafe fn dup3(fd: RawFd, target: RawFd) -> Result<(), i32> {
    // SAFETY: integers only; replacing `target` is the caller's contract.
    let ret = unsafe { arch::syscall4(libc::SYS_dup3, fd as usize, target as usize, 0, 0) };
    check(ret).map(drop)
}

/// `close_range(first, last, CLOSE_RANGE_CLOEXEC)`: mark every fd of
/// `first..=last` close-on-exec. Closes nothing, so no owner is wronged.
///
/// # Errors
/// `EINVAL` for `first > last`; `ENOSYS` before Linux 5.9 (`EINVAL` for
/// the flag before 5.11).
///
/// # References
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
/// - kernel: `fs/file.c`, `__close_range`
pub(super) fn cloexec_range(first: RawFd, last: RawFd) -> Result<(), i32> {
    // SAFETY: integers only; with CLOSE_RANGE_CLOEXEC no fd is closed.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_close_range,
            first as libc::c_uint as usize,
            last as libc::c_uint as usize,
            super::fds::CLOSE_RANGE_CLOEXEC as usize,
            0,
        )
    };
    check(ret).map(drop)
}

/// `chdir(dir)`.
///
/// # Safety
/// `dir` points to a NUL-terminated string.
///
/// # Errors
/// `ENOENT`, `EACCES`, `ENOTDIR`... as the errno.
///
/// # References
/// - [chdir(2)](https://man7.org/linux/man-pages/man2/chdir.2.html)
pub(super) unsafe fn chdir(dir: *const c_char) -> Result<(), i32> {
    // SAFETY: the kernel reads the string the caller vouches for.
    let ret = unsafe { arch::syscall4(libc::SYS_chdir, dir as usize, 0, 0, 0) };
    check(ret).map(drop)
}

/// `execve(program, argv, envp)`: returns only on failure, with the errno.
///
/// # Safety
/// `program` is a NUL-terminated string; `argv` and `envp` are arrays of
/// such strings ending with a null pointer.
///
/// # References
/// - [execve(2)](https://man7.org/linux/man-pages/man2/execve.2.html)
/// - kernel: `fs/exec.c`, `do_execveat_common`
pub(super) unsafe fn execve(
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> i32 {
    // SAFETY: the kernel reads the strings and arrays the caller vouches for.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_execve,
            program as usize,
            argv as usize,
            envp as usize,
            0,
        )
    };
    check(ret).err().unwrap_or(libc::EIO)
}

/// `write(fd, buf)`, once; the number of bytes written.
///
/// # Safety
/// `fd` is open and the caller may write to it.
///
/// # Errors
/// The errno of write(2).
///
/// # References
/// - [write(2)](https://man7.org/linux/man-pages/man2/write.2.html)
pub(super) unsafe fn write(fd: RawFd, buf: &[u8]) -> Result<usize, i32> {
    // SAFETY: `buf` is valid for reads of its length; writing to `fd` is the
    // caller's contract.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_write,
            fd as usize,
            buf.as_ptr() as usize,
            buf.len(),
            0,
        )
    };
    check(ret)
}

/// `exit_group(code)`: end the process at once (what `_exit` does), with no
/// `atexit` handler and no flush.
///
/// # References
/// - [exit_group(2)](https://man7.org/linux/man-pages/man2/exit_group.2.html)
pub(super) fn exit_group(code: i32) -> ! {
    loop {
        // SAFETY: integers only; the syscall does not return.
        unsafe { arch::syscall4(libc::SYS_exit_group, code as usize, 0, 0, 0) };
    }
}

/// `rt_sigprocmask(how, set, old)` on the calling thread; `set` null only
/// reads the mask into `old`.
///
/// # Errors
/// `EINVAL` for a bad `how`.
///
/// # References
/// - [sigprocmask(2)](https://man7.org/linux/man-pages/man2/sigprocmask.2.html)
/// - kernel: `kernel/signal.c`, `sys_rt_sigprocmask`
pub(super) fn sigprocmask(
    how: libc::c_int,
    set: Option<&KernelSigset>,
    old: Option<&mut KernelSigset>,
) -> Result<(), i32> {
    let set = set.map_or(std::ptr::null(), |s| s as *const KernelSigset);
    let old = old.map_or(std::ptr::null_mut(), |s| s as *mut KernelSigset);
    // SAFETY: `set` and `old` are null or valid for a read and a write of a
    // kernel sigset of the size passed.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_rt_sigprocmask,
            how as usize,
            set as usize,
            old as usize,
            std::mem::size_of::<KernelSigset>(),
        )
    };
    check(ret).map(drop)
}

/// `rt_sigaction(sig, {SIG_DFL}, NULL)`: give `sig` its default action
/// (a handled or ignored signal alike). The new action is all zeros (a null
/// handler is `SIG_DFL`, no flags, an empty mask) in a buffer at least as
/// large as the kernel's `struct sigaction` on every architecture the crate
/// supports (32 bytes: handler, flags, restorer, an 8-byte mask).
///
/// # Errors
/// `EINVAL` for `SIGKILL`, `SIGSTOP` or a bad signal.
///
/// # References
/// - [sigaction(2)](https://man7.org/linux/man-pages/man2/sigaction.2.html)
/// - kernel: `kernel/signal.c`, `sys_rt_sigaction`;
///   `include/uapi/asm-generic/signal.h`, `struct sigaction`
pub(super) fn default_action(sig: libc::c_int) -> Result<(), i32> {
    let act = [0u64; 4];
    // SAFETY: `act` is valid for the kernel's read of a `struct sigaction`
    // (it reads at most 32 bytes); the old action is not asked for (null).
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_rt_sigaction,
            sig as usize,
            act.as_ptr() as usize,
            0,
            std::mem::size_of::<KernelSigset>(),
        )
    };
    check(ret).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, sig)`.
///
/// # Errors
/// `EINVAL` for a bad signal.
///
/// # References
/// - [PR_SET_PDEATHSIG(2const)](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html)
pub(super) fn set_pdeathsig(sig: libc::c_int) -> Result<(), i32> {
    // SAFETY: integers only.
    let ret = unsafe {
        arch::syscall4(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            sig as usize,
            0,
            0,
        )
    };
    check(ret).map(drop)
}

/// `getppid()`.
///
/// # References
/// - [getppid(2)](https://man7.org/linux/man-pages/man2/getppid.2.html)
pub(super) fn getppid() -> libc::pid_t {
    // SAFETY: no arguments; cannot fail.
    unsafe { arch::syscall4(libc::SYS_getppid, 0, 0, 0, 0) as libc::pid_t }
}

/// `clone3(args)` whose child calls `child(arg)` on the stack of
/// `args.stack`/`args.stack_size` and never returns; the parent gets the
/// child's PID or `-errno`, as the kernel returned it.
///
/// This is glibc's `__clone3` (`sysdeps/unix/sysv/linux/x86_64/clone3.S`)
/// in inline assembly: the kernel starts the child with the parent's
/// registers, `rax` = 0 and `rsp` at the top of the new stack, so the child
/// clears the frame pointer and calls `child` with `arg` in `rdi`, with
/// `rsp` 16-byte aligned as the SysV ABI wants at a call.
///
/// # Safety
/// - `args` is a valid `struct clone_args` of `size` bytes, and
///   `args.stack`..`args.stack + args.stack_size` is writable memory that
///   nothing else uses until the child has exec'd or exited, with its top
///   16-byte aligned.
/// - With `CLONE_VM` the child runs in the caller's memory: `args.flags`
///   must then include `CLONE_VFORK` (the caller's thread sleeps until the
///   child execs or exits, so nothing the child reads is freed or changed
///   under it), and `child` must only make raw, errno-free syscalls
///   (async-signal-safe) on memory prepared before the call, and end with
///   an exec or `exit_group`.
/// - `args.flags` must not include `CLONE_THREAD`, `CLONE_SETTLS` or
///   `CLONE_SIGHAND`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
/// - kernel: `kernel/fork.c`, `sys_clone3`, `copy_process`
/// - glibc: `sysdeps/unix/sysv/linux/x86_64/clone3.S`
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn clone3_run(
    args: *mut c_void,
    size: usize,
    child: unsafe extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> isize {
    let ret: isize;
    // SAFETY: the caller's contract. In the parent, the kernel preserves
    // every register but rax (the result), rcx and r11 (declared clobbered),
    // so the block returns like a plain syscall; not `nomem`, since the
    // child may write memory reachable from `arg` before the parent
    // resumes. In the child (rax = 0) control never comes back to Rust
    // code of the caller: `child` never returns, and `ud2` traps if it did.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // The child, on its own stack.
            "xor ebp, ebp",
            "mov rdi, r8",
            "call rdx",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args,
            in("rsi") size,
            in("rdx") child,
            in("r8") arg,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_come_back_as_errno_and_leave_errno_alone() {
        // SAFETY: writes errno (thread-local) of this thread only.
        unsafe { *libc::__errno_location() = 0 };
        assert_eq!(dupfd_cloexec(-1, 0), Err(libc::EBADF));
        // SAFETY: a null pointer is an EFAULT, not a read.
        assert_eq!(unsafe { chdir(std::ptr::null()) }, Err(libc::EFAULT));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: reads errno of this thread.
        assert_eq!(unsafe { *libc::__errno_location() }, 0);
        assert_eq!(check(-4096), Ok(usize::MAX - 4095));
    }

    #[test]
    fn the_signal_mask_round_trips() {
        let mut old: KernelSigset = 0;
        sigprocmask(libc::SIG_SETMASK, None, Some(&mut old)).unwrap();
        let mut now: KernelSigset = 0;
        sigprocmask(libc::SIG_SETMASK, Some(&old), Some(&mut now)).unwrap();
        assert_eq!(old, now);
        assert_eq!(sigprocmask(99, Some(&old), None), Err(libc::EINVAL));
    }
}
