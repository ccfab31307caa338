//! cgroup v2: where the unified hierarchy is mounted, one cgroup per trial,
//! its member list, its "populated" event and its kill switch.
//!
//! # References
//! - [cgroups(7)](https://man7.org/linux/man-pages/man7/cgroups.7.html)
//! - [Control Group v2](https://docs.kernel.org/admin-guide/cgroup-v2.html): `cgroup.procs`, `cgroup.events`, `cgroup.kill`

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{open, Mode, OFlags};

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

/// Create the lab's own cgroup `lab.<pid>` under the caller's, where each
/// trial gets a child cgroup. `None` when cgroup v2 is missing or not
/// writable (an unprivileged user without a delegated subtree): the lab then
/// runs with the subreaper alone and says so.
pub fn create_lab_cgroup() -> Option<PathBuf> {
    let dir = own_cgroup()?.join(format!("lab.{}", std::process::id()));
    match fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(dir),
        Err(_) => None,
    }
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

/// The cgroup of one trial, removed on drop (after its members are gone).
#[derive(Debug)]
pub struct TrialCgroup {
    path: PathBuf,
    dir: OwnedFd,
    events: File,
    procs: File,
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
        })
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
        let mut s = String::new();
        let mut f = &self.events;
        f.rewind()?;
        f.read_to_string(&mut s)?;
        Ok(s.lines().any(|l| l.trim() == "populated 1"))
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
    pub fn kill(&self) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.kill"))?
            .write_all(b"1")
    }
}

impl Drop for TrialCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// Remove the lab's cgroup: kill what a crashed supervisor may have left in
/// trial cgroups below it, wait for the kernel's `populated 0` event on each
/// (at most 1 s), then remove them and it. Best effort.
pub fn remove_lab_cgroup(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                let _ = fs::write(path.join("cgroup.kill"), b"1");
                if let Ok(events) = File::open(path.join("cgroup.events")) {
                    wait_unpopulated(&events, std::time::Duration::from_secs(1));
                }
                let _ = fs::remove_dir(&path);
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// Block until `cgroup.events` says `populated 0` or `limit` passes: the
/// file reports `POLLPRI` on every change of its content.
fn wait_unpopulated(mut events: &File, limit: std::time::Duration) {
    let end = std::time::Instant::now() + limit;
    loop {
        let mut s = String::new();
        if events.rewind().is_err() || events.read_to_string(&mut s).is_err() {
            return;
        }
        if s.lines().any(|l| l.trim() == "populated 0") {
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
