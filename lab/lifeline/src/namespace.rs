//! [`PidNamespace`]: a child started as init (PID 1) of a new PID namespace,
//! in a private mount namespace with its own `/proc`, and in a new user
//! namespace where the caller lacks the privilege for the first two.
//!
//! The namespaces come with the `clone3` that creates the child
//! (`CLONE_NEWPID | CLONE_NEWNS`, plus `CLONE_NEWUSER`), so the child is PID
//! 1 from its first instruction; no re-exec, no intermediate process. In the
//! child, before anything else, with raw syscalls on memory prepared in the
//! parent (async-signal-safe, so a multithreaded caller may use it):
//!
//! 1. with a user namespace: `/proc/self/setgroups` ← `deny`,
//!    `/proc/self/uid_map` ← `0 UID 1`, `/proc/self/gid_map` ← `0 GID 1`
//!    (the caller's uid and gid become 0 inside; or `UID UID 1` and `GID
//!    GID 1`, the same ids inside, for [`PidNamespace::WithUserKeepIds`];
//!    a process may write its own single-id map, after `setgroups deny`
//!    for the gid). Written
//!    before the exec, so the program starts as uid 0 of its namespace and
//!    keeps its capabilities there;
//! 2. `mount(NULL, "/", NULL, MS_REC | MS_PRIVATE)`: nothing mounted in the
//!    child's mount namespace propagates back to the caller's;
//! 3. `mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)`: a
//!    `/proc` that shows the new PID namespace, so `/proc/PID` paths in the
//!    child name its own processes.
//!
//! A failed step is the spawn's error (through the exec error pipe for a
//! program child), never a child that runs half set up.

use std::ffi::CStr;
use std::io;

/// `CLONE_NEWNS` of `<linux/sched.h>`, as the `u64` of `struct clone_args`.
pub(super) const CLONE_NEWNS: u64 = 0x0002_0000;
/// `CLONE_NEWUSER`, as the `u64` of `struct clone_args`.
pub(super) const CLONE_NEWUSER: u64 = 0x1000_0000;
/// `CLONE_NEWPID`, as the `u64` of `struct clone_args`.
pub(super) const CLONE_NEWPID: u64 = 0x2000_0000;

/// A spawned child as init of a PID namespace of its own
/// ([`Spawn::pid_namespace`](super::Spawn::pid_namespace),
/// [`Command::pid_namespace`](super::Command::pid_namespace)).
///
/// In either form the child is PID 1 of a new PID namespace, in a new mount
/// namespace (mounts made there do not propagate back) with a fresh `/proc`
/// mounted on `/proc`. What follows from being init there:
/// - every process it creates, and every orphan below it, is in the
///   namespace and comes to it (it is the reaper of the namespace, as a
///   subreaper would be);
/// - `kill(pid)`, `kill(-pgid)` and `waitpid(pid)` from inside reach only
///   processes of the namespace, whatever PID the host reuses;
/// - when it dies, the kernel SIGKILLs every process left in the namespace;
/// - it receives from its own namespace only the signals it has a handler
///   for (SIGKILL and SIGSTOP from an ancestor namespace, such as the
///   caller's pidfd, still work).
///
/// PIDs inside are local to the namespace: the caller sees the child under
/// its [`Pidfd::pid`](super::Pidfd::pid) in the caller's namespace.
///
/// # References
/// - [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html)
/// - [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
/// - [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html)
/// - [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html) (`CLONE_NEWPID`, `CLONE_NEWUSER`, `CLONE_NEWNS`)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PidNamespace {
    /// `CLONE_NEWPID | CLONE_NEWNS`: needs `CAP_SYS_ADMIN` (root). The child
    /// keeps the caller's user namespace, uid and capabilities.
    Plain,
    /// `CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUSER`: for an unprivileged
    /// caller (where the kernel allows unprivileged user namespaces). The
    /// caller's uid and gid are mapped to 0 in the new user namespace, the
    /// only ids mapped there; supplementary groups are denied
    /// (`setgroups deny`). The child is root of its namespaces, not of the
    /// host: files, cgroups and other processes see the caller's uid.
    WithUser,
    /// As [`PidNamespace::WithUser`], but the caller's uid and gid are
    /// mapped to themselves (`UID UID 1`): a program sees the ids it had
    /// outside, and runs without capabilities as it would there (an exec by
    /// a non-zero uid drops them). The child itself, until it execs, holds
    /// every capability in the new user namespace (as any first process of
    /// one), enough for its `/proc` mount. For a program that must run as
    /// it would without the namespace (`lab wrap`).
    WithUserKeepIds,
}

impl PidNamespace {
    /// The `clone3` flags of this form.
    pub(super) fn clone_flags(self) -> u64 {
        match self {
            PidNamespace::Plain => CLONE_NEWPID | CLONE_NEWNS,
            PidNamespace::WithUser | PidNamespace::WithUserKeepIds => {
                CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUSER
            }
        }
    }
}

/// Everything the child needs to set up its namespaces, prepared in the
/// parent before the clone (the child allocates nothing).
#[derive(Debug)]
pub(super) struct NsPrep {
    /// `(path, contents)` written in order: setgroups, uid_map, gid_map
    /// (empty without a user namespace).
    maps: Vec<(&'static CStr, Vec<u8>)>,
}

impl NsPrep {
    /// Prepare `ns` for a child of the calling process.
    pub(super) fn new(ns: PidNamespace) -> NsPrep {
        let maps = match ns {
            PidNamespace::Plain => Vec::new(),
            PidNamespace::WithUser | PidNamespace::WithUserKeepIds => {
                let uid = rustix::process::getuid().as_raw();
                let gid = rustix::process::getgid().as_raw();
                let (inner_uid, inner_gid) = match ns {
                    PidNamespace::WithUserKeepIds => (uid, gid),
                    _ => (0, 0),
                };
                vec![
                    (c"/proc/self/setgroups", b"deny".to_vec()),
                    (
                        c"/proc/self/uid_map",
                        format!("{inner_uid} {uid} 1\n").into_bytes(),
                    ),
                    (
                        c"/proc/self/gid_map",
                        format!("{inner_gid} {gid} 1\n").into_bytes(),
                    ),
                ]
            }
        };
        NsPrep { maps }
    }

    /// In the child just created with this form's flags: write the id maps,
    /// make every mount private and mount a fresh `/proc`.
    ///
    /// Async-signal-safe: only raw syscalls (open, write, close, mount) on
    /// memory prepared before the clone; no allocation, no lock.
    ///
    /// # Errors
    /// The errno of the first step that failed.
    pub(super) fn enter_in_child(&self) -> io::Result<()> {
        for (path, contents) in &self.maps {
            // SAFETY: `path` is a NUL-terminated static string; open(2) is
            // one raw syscall (async-signal-safe) and touches no memory of
            // ours besides reading it.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: write(2) from a buffer built before the clone, of its
            // own length, on the fd just opened. One raw syscall.
            let n = unsafe { libc::write(fd, contents.as_ptr().cast(), contents.len()) };
            let err = io::Error::last_os_error();
            // SAFETY: close(2) of the fd we opened above and own alone.
            unsafe { libc::close(fd) };
            if n != contents.len() as isize {
                return Err(if n < 0 {
                    err
                } else {
                    io::Error::from_raw_os_error(libc::EIO)
                });
            }
        }
        // SAFETY: mount(2) with static NUL-terminated strings or null
        // pointers (allowed for a propagation change); one raw syscall each.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let rc = unsafe {
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
