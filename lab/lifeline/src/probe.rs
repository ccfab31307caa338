//! Kernel feature detection for `lab env`: which of the primitives the lab
//! builds on this kernel and this process actually have.
//!
//! Every probe tries the real thing once and leaves nothing behind: every
//! child it creates is reaped (or, for `CLONE_AUTOREAP`, waited for until the
//! kernel reaped it), every fd it opens is closed, and the temporary cgroup it
//! creates is removed.
//!
//! Safe from a multithreaded process: the child side of every clone makes only
//! async-signal-safe raw syscalls (`unshare`, `_exit`) on memory prepared
//! before the clone, then `_exit`s; it takes no lock and allocates nothing.
//! What the probes need from the caller: no other thread reaps with a
//! wait-any (`waitpid(-1)`) while they run, or it could reap a probe's child
//! first (the probe then reports the feature as missing).
//!
//! # References
//! - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
//! - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
//! - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
//! - [ioctl_pidfd(2)](https://man7.org/linux/man-pages/man2/ioctl_pidfd.2.html) (`PIDFD_GET_INFO`)
//! - [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
//! - [Control Group v2](https://docs.kernel.org/admin-guide/cgroup-v2.html) (`cgroup.kill`)

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{open, Mode, OFlags};

use super::clone3::{clone3, CloneArgs, Forked, CLONE_INTO_CGROUP, CLONE_PIDFD};
use super::fds::CLOSE_RANGE_CLOEXEC;
use super::pidfd::{ExitStatus, Pidfd};
use super::process::exit_now;

/// `CLONE_AUTOREAP` (`1ULL << 34`, Linux 7.1): the child is reaped by the
/// kernel at exit and never becomes a zombie; `exit_signal` must be 0.
/// Required by [`CLONE_PIDFD_AUTOKILL`].
pub(crate) const CLONE_AUTOREAP: u64 = 1 << 34;
/// `CLONE_NNP` (`1ULL << 35`, Linux 7.1): the child starts with
/// `no_new_privs` set. With it, [`CLONE_PIDFD_AUTOKILL`] needs no privilege;
/// without it, the caller needs `CAP_SYS_ADMIN` (else `EPERM`).
pub(crate) const CLONE_NNP: u64 = 1 << 35;
/// `CLONE_PIDFD_AUTOKILL` (`1ULL << 36`, Linux 7.1, `include/uapi/linux/sched.h`):
/// the kernel sends `SIGKILL` to the child when the last reference to the
/// pidfd file that `clone3` returned is closed. Valid only together with
/// `CLONE_PIDFD` and [`CLONE_AUTOREAP`] (else `EINVAL`), not with
/// `CLONE_THREAD`, and only with [`CLONE_NNP`] or `CAP_SYS_ADMIN` (else
/// `EPERM`). Kernels without it reject it as an unknown flag (`EINVAL`).
///
/// The RFC versions of the patch (February 2026) used `0x8_0000_0000`, which
/// mainline gave to `CLONE_NNP`: do not use that value.
pub(crate) const CLONE_PIDFD_AUTOKILL: u64 = 1 << 36;

/// `CGROUP2_SUPER_MAGIC` of `<linux/magic.h>`: `statfs` `f_type` of cgroup v2.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// `PIDFD_INFO_EXIT` of `<linux/pidfd.h>` (Linux 6.15): exit information of
/// a reaped process; returned only if requested.
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `struct pidfd_info` of `<linux/pidfd.h>`, first published size
/// (`PIDFD_INFO_SIZE_VER0` = 64 bytes). Linux 6.13 had `__u32 spare0[1]` where
/// Linux 6.15 put `exit_code`; later versions append `coredump_mask`,
/// `coredump_signal` (72 bytes) and `supported_mask` (80 bytes). The ioctl is
/// size-versioned, so the 64-byte request is understood by every kernel that
/// has `PIDFD_GET_INFO`, and `exit_code` lies within it.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    /// A wait status (`exit(7)` gives `7 << 8`), valid when `mask` has
    /// `PIDFD_INFO_EXIT`.
    exit_code: i32,
}

const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);

/// `PIDFD_GET_INFO` = `_IOWR(PIDFS_IOCTL_MAGIC = 0xFF, 11, struct pidfd_info)`
/// (Linux 6.13), with the 64-byte struct: dir `_IOC_READ|_IOC_WRITE` (3) << 30,
/// size << 16, type << 8, nr.
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// What the kernel and the calling process support, as found by
/// [`probe_kernel`]. Each field is the result of trying the real thing once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelFeatures {
    /// `clone3` with `CLONE_PIDFD` works, and `waitid(P_PIDFD)` reaps the child
    /// (Linux 5.4).
    pub clone3: bool,
    /// A child can be started inside a given cgroup v2 (`CLONE_INTO_CGROUP`,
    /// Linux 5.7); tried in a temporary child cgroup of the given directory.
    pub clone_into_cgroup: bool,
    /// `close_range` exists (Linux 5.9).
    pub close_range: bool,
    /// `close_range` accepts `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
    pub close_range_cloexec: bool,
    /// Child cgroups have a `cgroup.kill` file (Linux 5.14).
    pub cgroup_kill: bool,
    /// The given directory is on cgroup v2 and the process may create child
    /// cgroups in it.
    pub cgroup_writable: bool,
    /// The `PIDFD_GET_INFO` ioctl exists (Linux 6.13).
    pub pidfd_get_info: bool,
    /// `PIDFD_GET_INFO` reports the exit status of a reaped process
    /// (`PIDFD_INFO_EXIT`, Linux 6.15).
    pub pidfd_info_exit: bool,
    /// `clone3` accepts `CLONE_PIDFD_AUTOKILL` (Linux 7.1).
    pub autokill: bool,
    /// A new process may `unshare(CLONE_NEWUSER | CLONE_NEWPID)`.
    pub user_pid_namespaces: bool,
    /// The effective UID is 0.
    pub root: bool,
}

impl KernelFeatures {
    /// Every feature as `(field name, present)`, in declaration order: what
    /// a caller serializes.
    pub fn fields(&self) -> [(&'static str, bool); 11] {
        [
            ("clone3", self.clone3),
            ("clone_into_cgroup", self.clone_into_cgroup),
            ("close_range", self.close_range),
            ("close_range_cloexec", self.close_range_cloexec),
            ("cgroup_kill", self.cgroup_kill),
            ("cgroup_writable", self.cgroup_writable),
            ("pidfd_get_info", self.pidfd_get_info),
            ("pidfd_info_exit", self.pidfd_info_exit),
            ("autokill", self.autokill),
            ("user_pid_namespaces", self.user_pid_namespaces),
            ("root", self.root),
        ]
    }

    /// Whether each trial can get its own cgroup: a writable cgroup v2, a
    /// child started inside it (`CLONE_INTO_CGROUP`) and `cgroup.kill`. That
    /// gives exact member lists and a kill nothing escapes; without it the lab
    /// falls back to subreaper mode.
    pub fn per_trial_cgroups(&self) -> bool {
        self.cgroup_writable && self.clone_into_cgroup && self.cgroup_kill
    }

    /// Whether the `pid-reuse` scenario can run: it needs a PID namespace,
    /// from user and PID namespaces or from root.
    pub fn pid_reuse(&self) -> bool {
        self.user_pid_namespaces || self.root
    }
}

/// Probe every feature of [`KernelFeatures`]. `cgroup_parent` is a cgroup v2
/// directory the lab would create its trial cgroups in (e.g. from
/// the lab's `cgroup::create_lab_cgroup`); `None` reports
/// the cgroup features as missing.
///
/// Creates and reaps a few short-lived children (about 0.2 ms each) and, with
/// a `cgroup_parent`, a temporary child cgroup `lab-probe.<pid>.<n>` that it
/// removes again.
///
/// # Errors
/// None are returned: a probe that fails for any reason (`ENOSYS`, `EINVAL`
/// for an unknown flag or ioctl, `EACCES` on the cgroup, `EAGAIN` from
/// `clone3`) reports its feature as `false`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
/// - [close_range(2)](https://man7.org/linux/man-pages/man2/close_range.2.html)
/// - [ioctl_pidfd(2)](https://man7.org/linux/man-pages/man2/ioctl_pidfd.2.html)
/// - [unshare(2)](https://man7.org/linux/man-pages/man2/unshare.2.html)
/// - [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)
pub fn probe_kernel(cgroup_parent: Option<&Path>) -> KernelFeatures {
    probe_traced(cgroup_parent, &mut Trace::default())
}

/// Whether `clone3` accepts `CLONE_PIDFD_AUTOKILL`. The probe runs once per
/// process (one short-lived child, as in [`probe_kernel`]); later calls
/// return the cached answer.
///
/// # Errors
/// None are returned: `EINVAL` (a kernel before 7.1 rejects the unknown
/// flag), `EPERM` or any other error of `clone3` gives `false`.
///
/// # References
/// - [clone3(2)](https://man7.org/linux/man-pages/man2/clone3.2.html)
pub fn autokill_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| probe_autokill(&mut Trace::default()))
}

/// [`probe_kernel`], recording what the probes create: for a test to check
/// with [`Trace::leftovers`] that nothing is left behind.
#[doc(hidden)]
pub fn probe_kernel_traced(cgroup_parent: Option<&Path>) -> (KernelFeatures, Trace) {
    let mut trace = Trace::recording();
    (probe_traced(cgroup_parent, &mut trace), trace)
}

fn probe_traced(cgroup_parent: Option<&Path>, trace: &mut Trace) -> KernelFeatures {
    let (close_range, close_range_cloexec) = probe_close_range();
    let (pidfd_get_info, pidfd_info_exit) = probe_pidfd_info(trace);
    let cg = cgroup_parent
        .map(|p| probe_cgroup(p, trace))
        .unwrap_or_default();
    KernelFeatures {
        clone3: probe_clone3(trace),
        clone_into_cgroup: cg.clone_into,
        close_range,
        close_range_cloexec,
        cgroup_kill: cg.kill,
        cgroup_writable: cg.writable,
        pidfd_get_info,
        pidfd_info_exit,
        autokill: autokill_supported(),
        user_pid_namespaces: probe_user_pid_namespaces(trace),
        root: rustix::process::geteuid().is_root(),
    }
}

/// What a probe created (children, fds, cgroups), for a test to check that
/// it is gone again: [`probe_kernel_traced`]. [`Trace::default`] records
/// nothing, as [`probe_kernel`] uses it.
#[doc(hidden)]
#[derive(Default)]
pub struct Trace {
    /// Record what is created (false: every record is a no-op).
    on: bool,
    pids: Vec<i32>,
    /// `(fd, st_dev, st_ino)` of every fd opened.
    fds: Vec<(std::os::fd::RawFd, u64, u64)>,
    cgroups: Vec<std::path::PathBuf>,
}

impl Trace {
    /// A trace that records.
    fn recording() -> Self {
        Trace {
            on: true,
            ..Trace::default()
        }
    }

    fn pid(&mut self, pid: i32) {
        if self.on {
            self.pids.push(pid);
        }
    }

    fn fd(&mut self, fd: BorrowedFd<'_>) {
        if !self.on {
            return;
        }
        if let Ok(st) = rustix::fs::fstat(fd) {
            self.fds.push((fd.as_raw_fd(), st.st_dev, st.st_ino));
        }
    }

    fn cgroup(&mut self, path: &Path) {
        if self.on {
            self.cgroups.push(path.to_path_buf());
        }
    }

    /// How many children and cgroups the probes created.
    pub fn made(&self) -> (usize, usize) {
        (self.pids.len(), self.cgroups.len())
    }

    /// What the probes left behind, one line each (empty: nothing): a child
    /// that is still ours (not reaped), an fd still open on the file the
    /// probe opened (the number may name another file by now: other threads
    /// open fds meanwhile), a cgroup directory that still exists.
    ///
    /// # References
    /// - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html) (`WNOWAIT`),
    ///   [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html)
    pub fn leftovers(&self) -> Vec<String> {
        use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
        let mut left = Vec::new();
        for &pid in &self.pids {
            let Some(id) = Pid::from_raw(pid) else {
                continue;
            };
            let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            if waitid(WaitId::Pid(id), opts).err() != Some(rustix::io::Errno::CHILD) {
                left.push(format!("child {pid} of the probe is still ours"));
            }
        }
        for &(fd, dev, ino) in &self.fds {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: fstat writes one `struct stat` into `st`, which is valid
            // and writable; on a closed fd number it fails with EBADF and
            // touches nothing. Only the number is used, never a borrow of it.
            let open = unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0;
            if open {
                // SAFETY: fstat succeeded, so it initialised `st`.
                let st = unsafe { st.assume_init() };
                if (st.st_dev, st.st_ino) == (dev, ino) {
                    left.push(format!("fd {fd} of the probe is still open"));
                }
            }
        }
        for dir in &self.cgroups {
            if dir.exists() {
                left.push(format!("cgroup {} was not removed", dir.display()));
            }
        }
        left
    }
}

/// `clone3(args)` whose child runs `child` and `_exit`s with its result. The
/// parent gets the new pidfd (`args` must ask for `CLONE_PIDFD`) and the PID.
///
/// # Safety
/// `child` runs in the child and must be async-signal-safe: make only raw
/// syscalls on memory that exists before the clone, allocate nothing, take
/// no lock. The caller may be multithreaded, and the child is a copy of one
/// thread of it. `args` must satisfy [`clone3`]'s contract (no `CLONE_VM`).
unsafe fn clone3_then(args: CloneArgs, child: impl FnOnce() -> i32) -> io::Result<Pidfd> {
    // SAFETY: the child only runs `child` (async-signal-safe by this
    // function's contract) and `_exit`s, so the locks a copy of a
    // multithreaded process may find held are never taken; `args` is the
    // caller's.
    match unsafe { clone3(args) }? {
        Forked::Child => exit_now(child()),
        Forked::Parent(pidfd) => Ok(pidfd),
    }
}

/// Clone a child that runs `child` (async-signal-safe, see [`clone3_then`])
/// with `extra` flags besides `CLONE_PIDFD`, reap it and return how it ended.
///
/// # Safety
/// As [`clone3_then`]: `child` is async-signal-safe, `extra` has no
/// `CLONE_VM`.
unsafe fn run_child(
    extra: u64,
    cgroup: Option<BorrowedFd<'_>>,
    trace: &mut Trace,
    child: impl FnOnce() -> i32,
) -> io::Result<ExitStatus> {
    let mut args = CloneArgs {
        flags: CLONE_PIDFD | extra,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    // SAFETY: the caller's contract is clone3_then's.
    let pidfd = unsafe { clone3_then(args, child) }?;
    trace.pid(pidfd.pid());
    trace.fd(pidfd.as_fd());
    pidfd.wait()
}

/// The child of most probes: exit 0 at once. Async-signal-safe.
fn exit_zero() -> i32 {
    0
}

fn probe_clone3(trace: &mut Trace) -> bool {
    matches!(
        // SAFETY: exit_zero only returns 0 (async-signal-safe); no CLONE_VM.
        unsafe { run_child(0, None, trace, exit_zero) },
        Ok(ExitStatus::Exited(0))
    )
}

/// `close_range` on a range no fd can be in (fd numbers stop far below
/// `u32::MAX - 1`): touches nothing, and says whether the syscall and the
/// flag exist (`ENOSYS` / `EINVAL` when not).
fn probe_close_range() -> (bool, bool) {
    let try_flags = |flags: libc::c_uint| {
        let fd = libc::c_uint::MAX - 1;
        // SAFETY: close_range takes three integers and touches no memory of
        // ours; no fd can exist at number u32::MAX - 1 (the fd limit, nr_open,
        // is at most 2^30), so nothing is closed or changed.
        unsafe { libc::syscall(libc::SYS_close_range, fd, fd, flags) == 0 }
    };
    (try_flags(0), try_flags(CLOSE_RANGE_CLOEXEC))
}

/// `PIDFD_GET_INFO` on `fd`, asking for `mask`.
///
/// # Errors
/// `ENOTTY`/`EINVAL` before Linux 6.13; `ESRCH` for a reaped process before
/// Linux 6.15 (no `PIDFD_INFO_EXIT`).
///
/// # References
/// - [ioctl_pidfd(2)](https://man7.org/linux/man-pages/man2/ioctl_pidfd.2.html)
fn pidfd_get_info(fd: BorrowedFd<'_>, mask: u64) -> io::Result<PidfdInfo> {
    let mut info = PidfdInfo {
        mask,
        ..PidfdInfo::default()
    };
    // SAFETY: PIDFD_GET_INFO writes at most the size encoded in the request
    // (64 bytes) into `info`, a valid, writable, 64-byte #[repr(C)] struct
    // that outlives the call. On a non-pidfd the ioctl fails without writing.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            &mut info as *mut PidfdInfo,
        )
    };
    if rc == 0 {
        Ok(info)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `(PIDFD_GET_INFO works, PIDFD_INFO_EXIT works)`. The first call is made
/// before the reap (a live or zombie child, which every kernel with the ioctl
/// can describe), the second after it, asking for the exit status.
fn probe_pidfd_info(trace: &mut Trace) -> (bool, bool) {
    const CODE: i32 = 7;
    let args = CloneArgs {
        flags: CLONE_PIDFD,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: the child only returns a constant (async-signal-safe); no
    // CLONE_VM in the flags.
    let Ok(pidfd) = (unsafe { clone3_then(args, || CODE) }) else {
        return (false, false);
    };
    let pid = pidfd.pid();
    trace.pid(pid);
    trace.fd(pidfd.as_fd());
    let before = pidfd_get_info(pidfd.as_fd(), 0).is_ok_and(|i| i.pid == pid as u32);
    if pidfd.wait().is_err() {
        return (before, false);
    }
    match pidfd_get_info(pidfd.as_fd(), PIDFD_INFO_EXIT) {
        Ok(info) => {
            let exit = info.mask & PIDFD_INFO_EXIT != 0
                && libc::WIFEXITED(info.exit_code)
                && libc::WEXITSTATUS(info.exit_code) == CODE;
            (true, exit)
        }
        Err(_) => (before, false),
    }
}

#[derive(Default)]
struct CgroupProbe {
    writable: bool,
    clone_into: bool,
    kill: bool,
}

/// Create `parent/lab-probe.<pid>.<n>`, look for `cgroup.kill` in it, clone a
/// child into it, reap the child, remove the cgroup.
fn probe_cgroup(parent: &Path, trace: &mut Trace) -> CgroupProbe {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mut out = CgroupProbe::default();
    let on_cgroup2 =
        rustix::fs::statfs(parent).is_ok_and(|s| s.f_type as u64 == CGROUP2_SUPER_MAGIC);
    if !on_cgroup2 {
        return out;
    }
    let name = format!(
        "lab-probe.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let dir = parent.join(name);
    if std::fs::create_dir(&dir).is_err() {
        // The root cgroup has no cgroup.kill (it may not be killed); a child
        // cgroup would, so without one this is the best answer there is.
        out.kill = parent.join("cgroup.kill").exists();
        return out;
    }
    trace.cgroup(&dir);
    out.writable = true;
    // cgroup.kill exists in every non-root cgroup of Linux 5.14+; look in the
    // child, because the parent may be the root, which never has it.
    out.kill = dir.join("cgroup.kill").exists();
    if let Ok(dirfd) = open(
        &dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        trace.fd(dirfd.as_fd());
        out.clone_into = matches!(
            // SAFETY: exit_zero only returns 0 (async-signal-safe); no
            // CLONE_VM.
            unsafe { run_child(0, Some(dirfd.as_fd()), trace, exit_zero) },
            Ok(ExitStatus::Exited(0))
        );
    }
    remove_cgroup(&dir);
    out
}

/// `rmdir` a cgroup whose members have all been reaped. The kernel may report
/// it busy for a moment after the last member went; retry for up to a second.
fn remove_cgroup(dir: &Path) {
    for _ in 0..200 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => return,
        }
    }
}

/// Clone a child with `CLONE_PIDFD | CLONE_AUTOREAP | CLONE_NNP |
/// CLONE_PIDFD_AUTOKILL` that exits at once. `EINVAL` (an unknown flag) or
/// any other error means unsupported. The child is reaped by the kernel;
/// wait for its exit (`POLLIN` on the pidfd) before closing the pidfd, which
/// would otherwise kill it.
fn probe_autokill(trace: &mut Trace) -> bool {
    let args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_AUTOREAP | CLONE_NNP | CLONE_PIDFD_AUTOKILL,
        // CLONE_AUTOREAP requires exit_signal 0.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    // SAFETY: exit_zero only returns 0 (async-signal-safe); no CLONE_VM in
    // the flags.
    let Ok(pidfd) = (unsafe { clone3_then(args, exit_zero) }) else {
        return false;
    };
    trace.pid(pidfd.pid());
    trace.fd(pidfd.as_fd());
    let limit = rustix::time::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&limit)) {
            Err(rustix::io::Errno::INTR) => continue,
            // Exited (POLLIN), or timed out: dropping the pidfd then kills it.
            _ => break,
        }
    }
    true
}

/// Whether a new process may `unshare(CLONE_NEWUSER | CLONE_NEWPID)`; tried in
/// a child that exits right after, never in the caller.
fn probe_user_pid_namespaces(trace: &mut Trace) -> bool {
    let child = || {
        let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as libc::c_long;
        // SAFETY: unshare takes one integer and touches no memory; it changes
        // only the namespaces of this throwaway child (single-threaded, as
        // unshare(CLONE_NEWUSER) requires), which exits next.
        let rc = unsafe { libc::syscall(libc::SYS_unshare, flags) };
        i32::from(rc != 0)
    };
    // SAFETY: `child` makes one raw syscall (unshare) and returns: it is
    // async-signal-safe; no CLONE_VM.
    let status = unsafe { run_child(0, None, trace, child) };
    matches!(status, Ok(ExitStatus::Exited(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every child the probe created has been reaped, every fd it opened
    /// is closed, and every cgroup it created is gone.
    fn assert_nothing_left(trace: &Trace) {
        let left = trace.leftovers();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn the_canonical_primitives_are_found_on_this_machine() {
        let mut trace = Trace::recording();
        let f = probe_traced(None, &mut trace);
        assert!(f.clone3, "{f:?}");
        assert!(f.close_range, "{f:?}");
        assert!(f.close_range_cloexec, "{f:?}");
        assert!(f.pidfd_get_info, "{f:?}");
        assert!(f.pidfd_info_exit, "{f:?}");
        assert!(!f.cgroup_writable && !f.clone_into_cgroup && !f.cgroup_kill);
        assert_eq!(f.root, rustix::process::geteuid().is_root());
        assert!(trace.pids.len() >= 3, "{:?}", trace.pids);
        assert_nothing_left(&trace);
    }

    #[test]
    fn a_directory_that_is_not_a_cgroup_is_not_writable_as_one() {
        let mut trace = Trace::recording();
        let cg = probe_cgroup(&std::env::temp_dir(), &mut trace);
        assert!(!cg.writable && !cg.clone_into && !cg.kill);
        assert!(trace.cgroups.is_empty());
    }

    #[test]
    fn autokill_is_cached_and_consistent() {
        assert_eq!(autokill_supported(), autokill_supported());
        let mut trace = Trace::recording();
        let fresh = probe_autokill(&mut trace);
        assert_eq!(fresh, autokill_supported());
        // Give an autoreaped child (kernels with the flag) time to be reaped.
        if fresh {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_nothing_left(&trace);
    }

    #[test]
    fn the_autokill_flag_has_its_mainline_value() {
        assert_eq!(CLONE_PIDFD_AUTOKILL, 0x10_0000_0000);
        assert_eq!(CLONE_AUTOREAP, 0x4_0000_0000);
        assert_eq!(CLONE_NNP, 0x8_0000_0000);
        assert_eq!(PIDFD_GET_INFO, 0xC040_FF0B);
    }
}
