//! Exec in a freshly created child: move fds into place, change directory
//! and `execve`, with only async-signal-safe syscalls. Shared by the
//! canonical [`Spawn::exec`] (and [`Command`]) and the legacy fork + exec
//! path.
//!
//! Everything the child needs (the program, `argv`, `envp`, the working
//! directory, the sorted list of fds to keep) is built here in the parent,
//! *before* the process is created, so that the child allocates nothing,
//! takes no lock and reads no global that another thread of the parent may
//! be changing (such as `environ`). The child's syscalls are the raw,
//! errno-free ones of [`raw`](super::raw), so the same steps also run in a
//! child that shares the parent's memory (the vfork path of
//! [`Spawn::exec`]).
//!
//! [`Spawn::exec`]: super::Spawn::exec
//! [`Command`]: super::Command

use std::ffi::{c_char, CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::namespace::NsPrep;
use super::raw;

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
    /// One slot per move for the parked duplicate of its source, allocated
    /// here so that the child writes into memory of its own plan.
    parked: Vec<RawFd>,
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
    /// Set the signal mask to this just before the exec: the caller's mask
    /// of a child cloned with every signal blocked (the vfork path).
    pub sigmask: Option<raw::KernelSigset>,
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
            parked: vec![-1; moves.len()],
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

    /// In the child: move the fds, apply `pre`, change directory, give
    /// SIGPIPE its default action, restore the signal mask of `pre`, exec. On failure, write the errno and the
    /// footer (8 bytes) to `err_fd` and `_exit(127)`.
    ///
    /// Async-signal-safe: only raw syscalls of [`raw`](super::raw) that
    /// leave `errno` alone (fcntl, dup3, close_range, prctl, getppid,
    /// chdir, rt_sigaction, rt_sigprocmask, execve, write, exit_group; open, write, close
    /// and mount for a namespace) on memory prepared before the process was
    /// created; no allocation, no lock, no global read or written (the
    /// environment was copied into `envp` in the parent). It writes only
    /// this `ExecPrep`'s `parked` slots and its own stack frame, so it may
    /// run in a child that shares the parent's memory (`CLONE_VM |
    /// CLONE_VFORK`, without a namespace), while the parent sleeps.
    ///
    /// # Safety
    /// Call it only in a child just created from this `ExecPrep`'s process,
    /// by `fork` or `clone3` without `CLONE_VM` (on the child's copy), or by
    /// `clone3(CLONE_VM | CLONE_VFORK)` on a stack of its own (on the
    /// parent's `ExecPrep`, which nothing else touches until the child has
    /// exec'd or exited; then without a namespace), with `err_fd` the write
    /// end of a close-on-exec pipe whose read end the parent passes to
    /// [`exec_result`]. The fds of `moves` must be open. The function
    /// overwrites fd numbers that values of the caller may own; the child
    /// never returns into them: it execs or `_exit`s.
    pub(super) unsafe fn exec_in_child(&mut self, err_fd: RawFd, pre: PreExec) -> ! {
        // SAFETY: `err_fd` is the open write end of the error pipe (the
        // caller's contract), and this is the child (it exits here).
        let report = |errno: i32| -> ! { unsafe { report_setup_error(err_fd, errno) } };
        if let Some(ns) = &self.ns {
            // Async-signal-safe: NsPrep::enter_in_child makes raw syscalls
            // on memory prepared before the clone, and its error is an OS
            // error (no allocation). Only in a copy of the parent: the vfork
            // path never carries a namespace.
            if let Err(e) = ns.enter_in_child() {
                report(e.raw_os_error().unwrap_or(libc::EIO));
            }
        }
        for (&(src, _), slot) in self.moves.iter().zip(self.parked.iter_mut()) {
            // Park a duplicate above every source and target, so that no
            // dup3 below overwrites a source still to be moved. One raw
            // syscall that replaces no fd; the slot was allocated in the
            // parent.
            match raw::dupfd_cloexec(src, self.floor) {
                Ok(fd) => *slot = fd,
                Err(e) => report(e),
            }
        }
        for (&parked, &(_, target)) in self.parked.iter().zip(self.moves.iter()) {
            // SAFETY: dup3 of a parked fd (above every target, so never equal
            // to it) onto `target`; it clears close-on-exec there, and may
            // replace an fd some value of the caller owns, which the caller's
            // contract allows (the child never returns into those values).
            // Async-signal-safe: one raw syscall.
            if let Err(e) = unsafe { raw::dup3(parked, target) } {
                report(e);
            }
        }
        if pre.hygiene {
            // Mark every gap between the kept fds close-on-exec: the program
            // starts with 0, 1, 2 and the targets only. Allocation-free: the
            // sorted `kept` list was built in the parent.
            let mut next: RawFd = 0;
            for &fd in self.kept.iter() {
                if fd > next {
                    if let Err(e) = raw::cloexec_range(next, fd - 1) {
                        report(e);
                    }
                }
                next = fd + 1;
            }
            if let Err(e) = raw::cloexec_range(next, RawFd::MAX) {
                report(e);
            }
        }
        if let Some(sig) = pre.pdeathsig {
            // Async-signal-safe: one raw syscall.
            if let Err(e) = raw::set_pdeathsig(sig) {
                report(e);
            }
            if let Some(parent) = pre.expect_parent {
                // Async-signal-safe: one raw syscall.
                if raw::getppid() != parent {
                    raw::exit_group(0);
                }
            }
        }
        if let Some(dir) = &self.cwd {
            // SAFETY: `dir` is a NUL-terminated string built before the
            // process was created. Async-signal-safe: one raw syscall.
            if let Err(e) = unsafe { raw::chdir(dir.as_ptr()) } {
                report(e);
            }
        }
        // SIGPIPE back to its default action, as std's `Command` does: the
        // Rust runtime ignores it in the lab, and an ignored signal stays
        // ignored across exec, so a program under test would get EPIPE
        // where it expects to die of SIGPIPE (`yes | head`). Signals the
        // lab's own caller ignored are left as they are.
        // Async-signal-safe: one raw syscall.
        if let Err(e) = raw::default_action(libc::SIGPIPE) {
            report(e);
        }
        if let Some(mask) = &pre.sigmask {
            // The caller's mask, saved before it blocked every signal around
            // the clone (as glibc's posix_spawn restores it just before the
            // exec). Async-signal-safe: one raw syscall.
            if let Err(e) = raw::sigprocmask(libc::SIG_SETMASK, Some(mask), None) {
                report(e);
            }
        }
        // SAFETY: program, argv and envp are NUL-terminated C strings built
        // before the process was created, and argv and envp end with a null
        // pointer. Async-signal-safe: one raw syscall.
        let errno = unsafe {
            raw::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            )
        };
        report(errno)
    }
}

/// In a child whose setup failed: write `errno` to the error pipe `err_fd`
/// (the 8 bytes [`exec_result`] reads back as the spawn's error) and exit
/// with 127.
///
/// Async-signal-safe: builds 8 bytes on the stack (no indexing that could
/// panic), then two raw syscalls; no allocation, no lock.
///
/// # Safety
/// Call it only in a child just created by clone3 (it ends the process,
/// never returning into the caller's frames), with `err_fd` the open write
/// end of the close-on-exec pipe whose read end the parent passes to
/// [`exec_result`].
pub(super) unsafe fn report_setup_error(err_fd: RawFd, errno: i32) -> ! {
    let e = errno.to_ne_bytes();
    let [n, o, ex, x] = FOOTER;
    let msg = [e[0], e[1], e[2], e[3], n, o, ex, x];
    // SAFETY: `err_fd` is the open write end of the error pipe (the
    // caller's contract). A failed write leaves the parent with EOF and a
    // child that exits 127; nothing more can be done here.
    let _ = unsafe { raw::write(err_fd, &msg) };
    raw::exit_group(127)
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
/// match in `$PATH` that is not a directory and that this user may
/// execute (`access(X_OK)`): the lookup `execvp(3)` does, which goes on
/// past a file it may not execute.
///
/// # Errors
/// `ENOENT` when nothing is found, `EINVAL` for a path with a NUL byte.
///
/// # References
/// - [execvp(3)](https://man7.org/linux/man-pages/man3/execvp.3.html)
/// - [access(2)](https://man7.org/linux/man-pages/man2/access.2.html)
pub fn resolve_program(program: &str) -> io::Result<CString> {
    resolve_os(OsStr::new(program))
}

/// [`resolve_program`] for any `OsStr`.
pub(super) fn resolve_os(program: &OsStr) -> io::Result<CString> {
    resolve_in(program, std::env::var_os("PATH").as_deref())
}

/// [`resolve_os`] in the directories of `path` (a `PATH` value; `None`:
/// no `PATH`).
fn resolve_in(program: &OsStr, path: Option<&OsStr>) -> io::Result<CString> {
    use rustix::fs::{access, Access};
    let found = if program.as_bytes().contains(&b'/') {
        Some(std::path::PathBuf::from(program))
    } else if program.is_empty() {
        None
    } else {
        path.and_then(|paths| {
            std::env::split_paths(paths)
                .map(|d| d.join(program))
                .find(|p| {
                    p.metadata().is_ok_and(|m| !m.is_dir())
                        && access(p.as_path(), Access::EXEC_OK).is_ok()
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
    fn a_file_this_user_may_not_execute_is_passed_over_as_execvp_does() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (dir, mode) in [(&a, 0o644), (&b, 0o755)] {
            let f = dir.path().join("prog");
            std::fs::write(&f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::create_dir(a.path().join("dir")).unwrap();
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        let found = resolve_in(OsStr::new("prog"), Some(&path)).unwrap();
        assert_eq!(
            found.as_bytes(),
            b.path().join("prog").as_os_str().as_bytes()
        );
        let e = resolve_in(OsStr::new("dir"), Some(&path)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        assert!(resolve_in(OsStr::new("prog"), None).is_err());
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
