//! cgroup v2: where the unified hierarchy is mounted, one cgroup per trial,
//! its member list, its "populated" event and its kill switch.
//!
//! # References
//! - [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)
//! - [Control Group v2](https://docs.kernel.org/admin-guide/cgroup-v2.html): `cgroup.procs`, `cgroup.events`, `cgroup.kill`

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{open, FlockOperation, Mode, OFlags};

/// The cgroup v2 directory of the calling process, from `/proc/self/mountinfo`
/// (the cgroup2 mount point) and `/proc/self/cgroup` (the `0::` line).
/// `None` when no cgroup v2 hierarchy is mounted.
pub fn own_cgroup() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next() == Some("cgroup2"))
            .then(|| pre.split_whitespace().nth(4))?
    })?;
    let cg = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(mount).join(rel.trim_start_matches('/')))
}

/// The extended attribute of a lab cgroup that names its owner (see
/// [`Owner`]): `user.lab.owner`, value `BOOT_ID PID START_TICKS`.
pub const OWNER_XATTR: &str = "user.lab.owner";

/// The prefix of every lab cgroup's name: `lab.` and a random suffix.
pub const LAB_PREFIX: &str = "lab.";

/// The process that made a lab cgroup, told apart from a later process
/// with the same PID: the boot (`/proc/sys/kernel/random/boot_id`), the PID
/// (as the owner saw it, in its own PID namespace) and the process's start
/// time (field 22 of `/proc/PID/stat`, in clock ticks since boot).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    /// The kernel's boot id.
    pub boot_id: String,
    /// The owner's PID, in its own PID namespace.
    pub pid: i32,
    /// Its start time, clock ticks after boot.
    pub start_ticks: u64,
}

impl Owner {
    /// The calling process.
    ///
    /// # Errors
    /// Read errors of `/proc/sys/kernel/random/boot_id` or `/proc/self/stat`.
    pub fn current() -> io::Result<Owner> {
        Ok(Owner {
            boot_id: boot_id()?,
            pid: std::process::id() as i32,
            start_ticks: start_ticks("self")?,
        })
    }

    /// `BOOT_ID PID START_TICKS`, as stored in [`OWNER_XATTR`].
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.boot_id, self.pid, self.start_ticks)
    }

    /// The owner [`Owner::encode`] wrote; `None` when `s` is not one.
    pub fn parse(s: &str) -> Option<Owner> {
        let mut w = s.split_whitespace();
        let owner = Owner {
            boot_id: w.next()?.to_string(),
            pid: w.next()?.parse().ok()?,
            start_ticks: w.next()?.parse().ok()?,
        };
        w.next().is_none().then_some(owner)
    }

    /// Whether the owner still runs, as far as this process can see: the
    /// same boot, and a process of that PID (in this process's `/proc`)
    /// with the same start time. A reused PID has another start time.
    pub fn is_running(&self) -> bool {
        boot_id().is_ok_and(|b| b == self.boot_id)
            && self.pid > 0
            && start_ticks(&self.pid.to_string()).is_ok_and(|t| t == self.start_ticks)
    }
}

/// This boot's id.
fn boot_id() -> io::Result<String> {
    Ok(fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string())
}

/// Field 22 (`starttime`) of `/proc/PID/stat`.
fn start_ticks(pid: &str) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    crate::procfs::stat_field(&stat, 22)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/PID/stat"))
}

/// The lab cgroups this process made and still holds: each directory open
/// with an exclusive `flock`, released when it is removed (or when the
/// process dies, however it dies).
static HELD: Mutex<Vec<(PathBuf, OwnedFd)>> = Mutex::new(Vec::new());

/// Create a lab cgroup of the caller's under the caller's own cgroup, where
/// each trial gets a child cgroup. `None` when cgroup v2 is missing or not
/// writable (an unprivileged user without a delegated subtree): the lab then
/// runs with the subreaper alone and says so. See [`create_lab_cgroup_in`].
pub fn create_lab_cgroup() -> Option<PathBuf> {
    create_lab_cgroup_in(&own_cgroup()?).ok()
}

/// Create a lab cgroup under `parent`: `lab.` and a random suffix, made
/// with a `mkdir` that fails when the name exists and retried with another
/// suffix (mkdtemp semantics, mode 0700), so two labs never share one, not
/// even two labs that are both PID 1 of their own PID namespace. The
/// creator's [`Owner`] is written to its [`OWNER_XATTR`] (where cgroupfs
/// takes no `user.` xattrs, before Linux 5.7, the cgroup has no recorded
/// owner), and the caller holds an exclusive `flock` on the directory until
/// [`remove_lab_cgroup`] (or its death): `lab janitor` tells a live lab's
/// cgroup by either. Should a sweep of another lab remove the new cgroup
/// before its lock is taken (it then has no owner and is empty), another
/// is made, up to 8 times.
///
/// # Errors
/// The `mkdir`'s (`EACCES` without write access to `parent`), or the
/// `open` or `flock` of the new directory's (it is removed again then);
/// `Other` when 8 new cgroups in a row were removed at once.
pub fn create_lab_cgroup_in(parent: &Path) -> io::Result<PathBuf> {
    // A lab that dies between the `mkdir` and the owner written leaves an
    // empty cgroup with no owner, which a sweep of the next lab removes
    // (`janitor::sweep`). One that merely pauses there may find its new
    // cgroup removed under it by such a sweep: it makes another.
    let mut tries = 0;
    loop {
        match make_and_hold(parent) {
            Ok(Some((path, fd))) => {
                HELD.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((path.clone(), fd));
                return Ok(path);
            }
            Ok(None) if tries < 8 => tries += 1,
            Ok(None) => {
                return Err(io::Error::other(format!(
                    "each new lab cgroup in {} was removed at once",
                    parent.display()
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// One try of [`create_lab_cgroup_in`]: the new cgroup and its locked fd,
/// or `None` when a sweep removed it before the lock was ours (the
/// directory at the path is gone, or another).
fn make_and_hold(parent: &Path) -> io::Result<Option<(PathBuf, OwnedFd)>> {
    use std::os::unix::fs::PermissionsExt;
    let path = tempfile::Builder::new()
        .prefix(LAB_PREFIX)
        .rand_bytes(12)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)?
        .keep();
    // A cgroup directory holds control files that no one may unlink: remove
    // it with rmdir alone (a `TempDir`'s `remove_dir_all` would fail).
    let held = open(
        &path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .and_then(|fd| {
        // Blocking: a janitor that looked at the new directory before its
        // owner was written holds the lock for a moment only.
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)?;
        Ok(fd)
    });
    let fd = match held {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => {
            let _ = fs::remove_dir(&path);
            return Err(e.into());
        }
    };
    if let Ok(owner) = Owner::current() {
        // Best effort: without user xattrs the lock alone says the lab lives.
        let _ = rustix::fs::fsetxattr(
            &fd,
            OWNER_XATTR,
            owner.encode().as_bytes(),
            rustix::fs::XattrFlags::CREATE,
        );
    }
    // Ours only if the path still names the directory we locked: a sweep
    // that took the lock first (no owner yet) may have removed it.
    let same = match (
        rustix::fs::fstat(&fd),
        rustix::fs::statat(
            rustix::fs::CWD,
            &path,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        ),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    };
    Ok(same.then_some((path, fd)))
}

/// The [`Owner`] recorded on the lab cgroup open as `dir`; `None` when it
/// has none (or none that parses).
pub fn owner_of(dir: BorrowedFd<'_>) -> Option<Owner> {
    let mut buf = [0u8; 256];
    let n = rustix::fs::fgetxattr(dir, OWNER_XATTR, &mut buf[..]).ok()?;
    Owner::parse(std::str::from_utf8(&buf[..n]).ok()?)
}

/// The parent of the trials' cgroups for one run of the lab: a fresh
/// cgroup of the lab's own, or `None` with the reason (`no_cgroup`: the user
/// turned it off; else no writable cgroup v2). Remove it with
/// [`remove_lab_cgroup`] when the run ends.
pub fn trial_parent(no_cgroup: bool) -> (Option<PathBuf>, Option<String>) {
    if no_cgroup {
        return (
            None,
            Some("cgroup mode turned off (--no-cgroup or LAB_NO_CGROUP)".to_string()),
        );
    }
    match create_lab_cgroup() {
        Some(dir) => (Some(dir), None),
        None => (
            None,
            Some(
                "no writable cgroup v2 here; run as root or give the lab a delegated subtree"
                    .into(),
            ),
        ),
    }
}

/// How trials ran, for a summary's header: `cgroup`, or `subreaper (why)`.
pub fn mode_label(cgroup: bool, note: Option<&str>) -> String {
    if cgroup {
        "cgroup".to_string()
    } else {
        format!("subreaper ({})", note.unwrap_or("no cgroup"))
    }
}

/// The cgroup of one trial (reused by the next trial of the same supervisor
/// when left empty), removed on drop (after its members are gone).
#[derive(Debug)]
pub struct TrialCgroup {
    path: PathBuf,
    dir: OwnedFd,
    events: File,
    procs: File,
    /// Whether `cgroup.kill` was written.
    killed: bool,
}

impl TrialCgroup {
    /// Create `parent/name`.
    ///
    /// # Errors
    /// `EACCES` without write access to `parent`; `EEXIST` if it exists.
    pub fn create(parent: &Path, name: &str) -> io::Result<TrialCgroup> {
        let path = parent.join(name);
        fs::create_dir(&path)?;
        let dir = open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let events = File::open(path.join("cgroup.events"))?;
        let procs = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join("cgroup.procs"))?;
        Ok(TrialCgroup {
            path,
            dir,
            events,
            procs,
            killed: false,
        })
    }

    /// The directory it was made in (the lab's cgroup).
    pub fn parent(&self) -> Option<&Path> {
        self.path.parent()
    }

    /// Its directory as an fd, for `CLONE_INTO_CGROUP`.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// `cgroup.procs`, open for writing: a process writes `0` to join.
    pub fn procs_fd(&self) -> BorrowedFd<'_> {
        self.procs.as_fd()
    }

    /// `cgroup.events`: poll it for `POLLPRI` to hear of a change in `populated`.
    pub fn events_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }

    /// Whether any live process is in the cgroup (`populated` of
    /// `cgroup.events`; exited processes count as gone even before reaping).
    ///
    /// # Errors
    /// Read errors of `cgroup.events`.
    pub fn populated(&self) -> io::Result<bool> {
        events_populated(&self.events)
    }

    /// The PIDs listed in `cgroup.procs`.
    ///
    /// # Errors
    /// Read errors.
    pub fn members(&self) -> io::Result<Vec<i32>> {
        let s = fs::read_to_string(self.path.join("cgroup.procs"))?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// SIGKILL every member and every process that joins: `cgroup.kill`.
    /// Nothing escapes it, a double-forked daemon included.
    ///
    /// # Errors
    /// `ENOENT` on kernels before 5.14.
    pub fn kill(&mut self) -> io::Result<()> {
        self.killed = true;
        OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.kill"))?
            .write_all(b"1")
    }

    /// Whether another trial can run in it: nothing is in it (`populated
    /// 0`; the read also consumes the change event its last exit raised on
    /// `cgroup.events`, so the next trial's poll does not wake for it), and
    /// it was never killed. A killed cgroup is not reused because Linux
    /// 6.18 SIGKILLs at birth every child cloned into it with
    /// `CLONE_INTO_CGROUP` from outside afterwards: `cgroup_css_set_fork`
    /// (kernel/cgroup/cgroup.c) takes the child's `kill_seq` from the
    /// parent's cgroup, before the target is known, and `cgroup_post_fork`
    /// compares it with the target's, which each `cgroup.kill` raised
    /// (measured on 6.18.44: a cloned child dies of SIGKILL after one kill
    /// of the empty cgroup, and so does every later one).
    pub fn reusable(&self) -> bool {
        !self.killed && self.populated().is_ok_and(|populated| !populated)
    }
}

impl Drop for TrialCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// Remove the lab's cgroup `dir` (one this process made with
/// [`create_lab_cgroup_in`]): kill what a crashed supervisor may have left
/// in trial cgroups below it, wait for the kernel's `populated 0` event on
/// each (at most 1 s), then remove them and it, and release its lock. It
/// touches nothing outside `dir`, so it never reaches another lab's trials.
/// Best effort.
pub fn remove_lab_cgroup(dir: &Path) {
    empty_and_remove(dir, std::time::Duration::from_secs(1));
    HELD.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(p, _)| p != dir);
}

/// Kill every process below `dir` (each trial cgroup's `cgroup.kill`, then
/// `dir`'s own), wait up to `limit` for `populated 0` on each, and remove
/// the trial cgroups and `dir`. Returns whether `dir` is gone (it was
/// removed now or had been before).
pub(crate) fn empty_and_remove(dir: &Path, limit: std::time::Duration) -> bool {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            // A trial cgroup (a directory with cgroup.events), nothing else.
            if e.file_type().is_ok_and(|t| t.is_dir())
                && fs::symlink_metadata(path.join("cgroup.events")).is_ok()
            {
                let _ = fs::write(path.join("cgroup.kill"), b"1");
                if let Ok(events) = File::open(path.join("cgroup.events")) {
                    wait_unpopulated(&events, limit);
                }
                let _ = fs::remove_dir(&path);
            }
        }
    }
    if fs::symlink_metadata(dir.join("cgroup.events")).is_ok() {
        let _ = fs::write(dir.join("cgroup.kill"), b"1");
        if let Ok(events) = File::open(dir.join("cgroup.events")) {
            wait_unpopulated(&events, limit);
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Whether the `cgroup.events` file open at `events` says `populated 1`,
/// read in one `pread` at offset 0 (the file is 21 bytes; a read re-arms
/// its `POLLPRI`). A supervisor reads it several times a trial.
///
/// # Errors
/// Read errors of `cgroup.events`.
///
/// # References
/// - [pread(2)](https://man7.org/linux/man-pages/man2/pread.2.html)
/// - [Control Group v2](https://docs.kernel.org/admin-guide/cgroup-v2.html), "cgroup.events"
fn events_populated(events: &File) -> io::Result<bool> {
    let mut buf = [0u8; 128];
    let n = rustix::io::pread(events, &mut buf, 0)?;
    Ok(buf[..n].split(|&b| b == b'\n').any(|l| l == b"populated 1"))
}

/// Block until `cgroup.events` says `populated 0` or `limit` passes: the
/// file reports `POLLPRI` on every change of its content.
pub(crate) fn wait_unpopulated(events: &File, limit: std::time::Duration) {
    let end = std::time::Instant::now() + limit;
    loop {
        if !events_populated(events).unwrap_or(false) {
            return;
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [rustix::event::PollFd::new(
            &events,
            rustix::event::PollFlags::PRI,
        )];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_reads_back_and_a_reused_pid_is_not_it() {
        let me = Owner::current().unwrap();
        assert_eq!(Owner::parse(&me.encode()), Some(me.clone()));
        assert!(me.is_running());
        // The same PID with another start time: a process that reused it.
        let other = Owner {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert!(!other.is_running());
        // Another boot.
        let rebooted = Owner {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..me
        };
        assert!(!rebooted.is_running());
        for bad in ["", "boot", "boot x 1", "boot 1 x", "boot 1 2 3"] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }
}
