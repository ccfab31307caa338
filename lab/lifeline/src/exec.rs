//! Exec in a freshly created child: move fds into place, change directory
//! and `execve`, with only async-signal-safe syscalls. Shared by the
//! canonical [`Spawn::exec`] (and [`Command`]) and the legacy fork + exec
//! path.
//!
//! Everything the child needs (the program, `argv`, `envp`, the working
//! directory, the sorted list of fds to keep) is built here in the parent,
//! *before* the process is created, so that the child allocates nothing,
//! takes no lock and reads no global that another thread of the parent may
//! be changing (such as `environ`).
//!
//! [`Spawn::exec`]: super::Spawn::exec
//! [`Command`]: super::Command

use std::ffi::{c_char, CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::fds::cloexec_range;
use super::namespace::NsPrep;
use super::process::exit_now;

/// The footer the child appends to its errno on the error pipe, as Rust
/// std's `process_unix` does: 4 bytes of errno (native endian) then these 4
/// bytes, in one `write` of 8 bytes (atomic: below `PIPE_BUF`).
const FOOTER: [u8; 4] = *b"NOEX";

/// Everything the child needs to exec, prepared (allocated) before the
/// process is created, so that the child allocates nothing.
pub(super) struct ExecPrep<'a> {
    program: &'a CStr,
    argv: Vec<*const c_char>,
    /// Owns the strings `envp` points into (moving the `Vec` does not move
    /// the heap buffers of its `CString`s).
    _env: Vec<CString>,
    envp: Vec<*const c_char>,
    cwd: Option<CString>,
    moves: Vec<(RawFd, RawFd)>,
    /// 0, 1, 2 and every target, sorted ascending, no duplicates: the fds
    /// the hygiene leaves inheritable.
    kept: Vec<RawFd>,
    floor: RawFd,
    /// The namespaces to set up first, for a child cloned into new ones.
    ns: Option<NsPrep>,
}

/// What the child does between its creation and the exec, besides the fds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PreExec {
    /// Mark every fd other than 0, 1, 2 and the targets close-on-exec (the
    /// canonical hygiene); without it every fd not already close-on-exec is
    /// inherited.
    pub hygiene: bool,
    /// `PR_SET_PDEATHSIG` with this signal before the exec.
    pub pdeathsig: Option<libc::c_int>,
    /// With `pdeathsig`: exit at once (code 0) if `getppid()` is no longer
    /// this PID, i.e. the parent died before the prctl (the checked recipe).
    pub expect_parent: Option<libc::pid_t>,
}

/// The calling process's environment as `KEY=VALUE` C strings: what a child
/// that execs gets when nothing changes it. Read in the parent, before any
/// clone (`std::env::vars_os` takes std's environment lock, which a child
/// must never touch).
pub(super) fn current_env() -> Vec<CString> {
    env_block(std::env::vars_os())
}

/// `KEY=VALUE` C strings from pairs; pairs with a NUL byte (which `execve`
/// cannot carry) or an empty key are left out.
pub(super) fn env_block<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    vars: impl IntoIterator<Item = (K, V)>,
) -> Vec<CString> {
    vars.into_iter()
        .filter_map(|(k, v)| {
            let (k, v) = (k.as_ref().as_bytes(), v.as_ref().as_bytes());
            if k.is_empty() || k.contains(&b'=') {
                return None;
            }
            let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
            kv.extend_from_slice(k);
            kv.push(b'=');
            kv.extend_from_slice(v);
            CString::new(kv).ok()
        })
        .collect()
}

impl<'a> ExecPrep<'a> {
    /// Prepare to exec `program` with `args` (`args[0]` included) and the
    /// environment `env` (`KEY=VALUE` strings, see [`current_env`]), in `cwd`
    /// when given, moving each `(source, target)` fd of `moves` to its
    /// target.
    pub(super) fn new(
        program: &'a CStr,
        args: &[&CStr],
        env: Vec<CString>,
        cwd: Option<CString>,
        moves: Vec<(RawFd, RawFd)>,
    ) -> Self {
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const c_char> = env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // Park every source above all sources and targets before dup2, so no
        // dup2 overwrites a source that is still to be moved.
        let floor = moves.iter().map(|&(f, t)| f.max(t)).max().unwrap_or(2) + 1;
        let mut kept: Vec<RawFd> = vec![0, 1, 2];
        kept.extend(moves.iter().map(|&(_, t)| t));
        kept.sort_unstable();
        kept.dedup();
        ExecPrep {
            program,
            argv,
            _env: env,
            envp,
            cwd,
            moves,
            kept,
            floor,
            ns: None,
        }
    }

    /// Set up the namespaces of `ns` in the child before anything else (the
    /// child must be cloned with its flags).
    pub(super) fn with_namespace(mut self, ns: NsPrep) -> Self {
        self.ns = Some(ns);
        self
    }

    /// In the child: move the fds, apply `pre`, change directory, exec. On
    /// failure, write the errno and the footer (8 bytes) to `err_fd` and
    /// `_exit(127)`.
    ///
    /// Async-signal-safe: only raw syscalls (open, write, close and mount
    /// for a namespace, fcntl, dup2, close_range, prctl, getppid, chdir,
    /// execve, _exit) on memory prepared before the
    /// process was created; no allocation, no lock, no global read (the
    /// environment was copied into `envp` in the parent).
    ///
    /// # Safety
    /// Call it only in a child just created by `clone3` (without `CLONE_VM`)
    /// or `fork` from this `ExecPrep`'s process, on the child's copy of it,
    /// with `err_fd` the write end of a close-on-exec pipe whose read end the
    /// parent passes to [`exec_result`]. The fds of `moves` must be open.
    /// The function overwrites fd numbers that values of the (copied) caller
    /// may own; the child never returns into them: it execs or `_exit`s.
    pub(super) unsafe fn exec_in_child(&mut self, err_fd: RawFd, pre: PreExec) -> ! {
        // Async-signal-safe: `last_os_error` reads errno (thread-local, no
        // lock, no allocation); the write and _exit are raw syscalls.
        let report = |err_fd: RawFd, errno: i32| -> ! {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&errno.to_ne_bytes());
            msg[4..].copy_from_slice(&FOOTER);
            // SAFETY: write(2) on a valid fd from a valid 8-byte buffer on
            // our stack.
            unsafe { libc::write(err_fd, msg.as_ptr().cast(), msg.len()) };
            exit_now(127)
        };
        let fail = |err_fd: RawFd| -> ! {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            report(err_fd, errno)
        };
        if let Some(ns) = &self.ns {
            // Async-signal-safe: NsPrep::enter_in_child makes raw syscalls
            // on memory prepared before the clone, and its error is an OS
            // error (no allocation).
            if let Err(e) = ns.enter_in_child() {
                report(err_fd, e.raw_os_error().unwrap_or(libc::EIO));
            }
        }
        for (src, _) in self.moves.iter_mut() {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) duplicates an open fd to a free
            // number at or above the floor; it touches no memory of ours and
            // overwrites no fd. Async-signal-safe: one raw syscall.
            let parked = unsafe { libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, self.floor) };
            if parked < 0 {
                fail(err_fd);
            }
            *src = parked;
        }
        for &(src, target) in self.moves.iter() {
            // SAFETY: dup2 on fds of this process; it clears close-on-exec
            // on `target`, and may replace an fd some copied value owns,
            // which the caller's contract allows (the child never returns
            // into those values). Async-signal-safe: one raw syscall.
            if unsafe { libc::dup2(src, target) } < 0 {
                fail(err_fd);
            }
        }
        if pre.hygiene {
            // Mark every gap between the kept fds close-on-exec: the program
            // starts with 0, 1, 2 and the targets only. Allocation-free: the
            // sorted `kept` list was built in the parent.
            let mut next: RawFd = 0;
            for &fd in self.kept.iter() {
                if fd > next && cloexec_range(next, fd - 1).is_err() {
                    fail(err_fd);
                }
                next = fd + 1;
            }
            if cloexec_range(next, RawFd::MAX).is_err() {
                fail(err_fd);
            }
        }
        if let Some(sig) = pre.pdeathsig {
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only.
            // Async-signal-safe: one raw syscall.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } < 0 {
                fail(err_fd);
            }
            if let Some(parent) = pre.expect_parent {
                // SAFETY: getppid has no preconditions. Async-signal-safe.
                let now = unsafe { libc::getppid() };
                if now != parent {
                    exit_now(0);
                }
            }
        }
        if let Some(dir) = &self.cwd {
            // SAFETY: `dir` is a NUL-terminated string built before the
            // process was created. Async-signal-safe: one raw syscall.
            if unsafe { libc::chdir(dir.as_ptr()) } < 0 {
                fail(err_fd);
            }
        }
        // SAFETY: program, argv and envp are NUL-terminated C strings built
        // before the process was created, and argv and envp end with a null
        // pointer. Async-signal-safe: one raw syscall.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            )
        };
        fail(err_fd)
    }
}

/// In the parent: read the child's exec error from the error pipe until
/// EOF, the way Rust std's `process_unix` does.
///
/// - 0 bytes: the pipe closed at the exec (it is close-on-exec), `Ok(())`.
/// - 8 bytes ending in the footer: the exec (or a step before it) failed
///   with the errno of the first 4 bytes, returned as that OS error.
/// - anything else: an error "short read from the exec error pipe"
///   (`InvalidData`), never taken for success.
pub(super) fn exec_result(err_read: &OwnedFd) -> io::Result<()> {
    read_exec_error(err_read.as_fd())
}

fn read_exec_error(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = [0u8; 16];
    let mut got = 0;
    loop {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == buf.len() {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    match got {
        0 => Ok(()),
        8 if buf[4..8] == FOOTER => {
            let errno = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
            Err(io::Error::from_raw_os_error(errno))
        }
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("short read from the exec error pipe ({n} bytes)"),
        )),
    }
}

/// The path of `program`: as given when it contains `/`, else the first
/// executable match in `$PATH` (the lookup `execvp(3)` does).
///
/// # Errors
/// `ENOENT` when nothing is found, `EINVAL` for a path with a NUL byte.
///
/// # References
/// - [execvp(3)](https://man7.org/linux/man-pages/man3/execvp.3.html)
pub fn resolve_program(program: &str) -> io::Result<CString> {
    resolve_os(OsStr::new(program))
}

/// [`resolve_program`] for any `OsStr`.
pub(super) fn resolve_os(program: &OsStr) -> io::Result<CString> {
    use std::os::unix::fs::PermissionsExt;
    let found = if program.as_bytes().contains(&b'/') {
        Some(std::path::PathBuf::from(program))
    } else if program.is_empty() {
        None
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::pipe::{pipe_with, PipeFlags};

    fn result_of(bytes: &[u8]) -> io::Result<()> {
        let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        rustix::io::write(&w, bytes).unwrap();
        drop(w);
        exec_result(&r)
    }

    #[test]
    fn an_empty_pipe_means_the_exec_happened() {
        result_of(b"").unwrap();
    }

    #[test]
    fn errno_and_footer_give_that_errno() {
        let mut msg = libc::ENOENT.to_ne_bytes().to_vec();
        msg.extend_from_slice(&FOOTER);
        let err = result_of(&msg).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn a_short_read_is_an_error_not_success() {
        for bytes in [
            &b"\x02\0\0"[..],
            b"\x02\0\0\0",
            b"\x02\0\0\0NOPE",
            b"\x02\0\0\0NOEXNOEX",
        ] {
            let err = result_of(bytes).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bytes:?}");
            assert!(err
                .to_string()
                .contains("short read from the exec error pipe"));
        }
    }

    #[test]
    fn env_block_skips_what_execve_cannot_carry() {
        let env = env_block([
            ("A", "1"),
            ("", "x"),
            ("B=C", "2"),
            ("D", "e\0f"),
            ("E", ""),
        ]);
        let env: Vec<&[u8]> = env.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(env, [&b"A=1"[..], b"E="]);
    }
}
