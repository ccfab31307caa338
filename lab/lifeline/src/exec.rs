//! Exec in a freshly created child: move fds into place and `execve`, with
//! only async-signal-safe syscalls. Shared by the canonical [`Spawn::exec`]
//! and the legacy fork + exec path.
//!
//! [`Spawn::exec`]: super::Spawn::exec

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::os::fd::RawFd;

use super::fds::{close_range, CLOSE_RANGE_CLOEXEC};
use super::process::exit_now;

/// Everything the child needs to exec, prepared (allocated) before the
/// process is created, so that the child allocates nothing.
pub(super) struct ExecPrep<'a> {
    program: &'a CStr,
    argv: Vec<*const c_char>,
    moves: Vec<(RawFd, RawFd)>,
    floor: RawFd,
    highest_target: RawFd,
}

/// What the child does between its creation and the exec, besides the fds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PreExec {
    /// Mark every fd above the highest target close-on-exec (the canonical
    /// hygiene); without it every fd not already close-on-exec is inherited.
    pub hygiene: bool,
    /// `PR_SET_PDEATHSIG` with this signal before the exec.
    pub pdeathsig: Option<libc::c_int>,
    /// With `pdeathsig`: exit at once (code 0) if `getppid()` is no longer
    /// this PID, i.e. the parent died before the prctl (the checked recipe).
    pub expect_parent: Option<libc::pid_t>,
}

impl<'a> ExecPrep<'a> {
    /// Prepare to exec `program` with `args` (`args[0]` included), moving
    /// each `(source, target)` fd of `moves` to its target.
    pub(super) fn new(program: &'a CStr, args: &'a [&'a CStr], moves: Vec<(RawFd, RawFd)>) -> Self {
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // Park every source above all sources and targets before dup2, so no
        // dup2 overwrites a source that is still to be moved.
        let floor = moves.iter().map(|&(f, t)| f.max(t)).max().unwrap_or(2) + 1;
        let highest_target = moves.iter().map(|&(_, t)| t).max().unwrap_or(2);
        ExecPrep {
            program,
            argv,
            moves,
            floor,
            highest_target,
        }
    }

    /// In the child: move the fds, apply `pre`, exec. On failure, write the
    /// errno (4 bytes) to `err_fd` and `_exit(127)`.
    ///
    /// Async-signal-safe: only raw syscalls (fcntl, dup2, close_range, prctl,
    /// getppid, execve, write, _exit) on memory prepared before the process
    /// was created; no allocation, no lock. Safe in the child of a
    /// multithreaded parent.
    pub(super) fn exec_in_child(&mut self, err_fd: RawFd, pre: PreExec) -> ! {
        let fail = |err_fd: RawFd| -> ! {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            let bytes = errno.to_ne_bytes();
            // SAFETY: write(2) on a valid fd from a valid 4-byte buffer.
            unsafe { libc::write(err_fd, bytes.as_ptr().cast(), 4) };
            exit_now(127)
        };
        for (src, _) in self.moves.iter_mut() {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) duplicates an fd we own; no memory.
            let parked = unsafe { libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, self.floor) };
            if parked < 0 {
                fail(err_fd);
            }
            *src = parked;
        }
        for &(src, target) in self.moves.iter() {
            // SAFETY: dup2 on fds we own; clears close-on-exec on target.
            if unsafe { libc::dup2(src, target) } < 0 {
                fail(err_fd);
            }
        }
        if pre.hygiene
            && close_range(self.highest_target + 1, RawFd::MAX, CLOSE_RANGE_CLOEXEC).is_err()
        {
            fail(err_fd);
        }
        if let Some(sig) = pre.pdeathsig {
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } < 0 {
                fail(err_fd);
            }
            if let Some(parent) = pre.expect_parent {
                // SAFETY: getppid has no preconditions.
                let now = unsafe { libc::getppid() };
                if now != parent {
                    exit_now(0);
                }
            }
        }
        extern "C" {
            static environ: *const *const c_char;
        }
        // SAFETY: program and argv are NUL-terminated C strings built before
        // the process was created, argv ends with a null pointer, and environ
        // is the process environment (nothing in the lab calls setenv).
        unsafe { libc::execve(self.program.as_ptr(), self.argv.as_ptr(), environ) };
        fail(err_fd)
    }
}

/// In the parent: read the child's exec error from the error pipe. `Ok(())`
/// when the pipe closed without one (the exec happened).
pub(super) fn exec_result(err_read: &std::os::fd::OwnedFd) -> Result<(), i32> {
    let mut errno = [0u8; 4];
    loop {
        match rustix::io::read(err_read, &mut errno) {
            Ok(4) => return Err(i32::from_ne_bytes(errno)),
            Err(rustix::io::Errno::INTR) => continue,
            _ => return Ok(()),
        }
    }
}

/// The path of `program`: as given when it contains `/`, else the first
/// executable match in `$PATH` (the lookup `execvp(3)` does).
///
/// # Errors
/// `ENOENT` when nothing is found, `EINVAL` for a path with a NUL byte.
pub fn resolve_program(program: &str) -> io::Result<CString> {
    use std::os::unix::fs::PermissionsExt;
    let found = if program.contains('/') {
        Some(std::path::PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| {
                    p.metadata()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
        })
    };
    let path = found.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    CString::new(path.into_os_string().into_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
