//! `lab janitor`: find the cgroups of labs that are no longer running (a lab
//! killed with SIGKILL, a host crash), and remove them.
//!
//! A lab cgroup (`lab.` and a random suffix, made by
//! [`cgroup::create_lab_cgroup_in`]) is **live** while its maker holds the
//! exclusive `flock` on its directory (the kernel drops it when the maker
//! dies, however it dies) or while the [`Owner`] recorded in its
//! `user.lab.owner` xattr still runs (the same boot id, and a process of
//! that PID with the same start time: a reused PID is not the owner). It is
//! **stale** when neither holds. A cgroup named `lab.*` with no owner
//! recorded (made by an older lab, or where cgroupfs takes no xattrs) is
//! **unknown**, and removed only when empty (a bare `rmdir`: nothing in it
//! is killed). The janitor never touches a live lab's cgroup, and holds the
//! lock itself while it removes one, so a second janitor cannot race it.
//! Every lab [`sweep`]s the cgroups of dead labs beside its own when it
//! makes its own.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{open, FlockOperation, Mode, OFlags};
use serde::Serialize;

use crate::cgroup::{self, Owner, LAB_PREFIX};

/// Whether a lab cgroup's maker still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its maker runs (holds its lock, or its recorded owner runs): never
    /// touched.
    Live,
    /// Its maker is gone: the janitor may remove it.
    Stale,
    /// No owner recorded and no lock held: its maker died before it
    /// recorded itself (or where cgroupfs takes no xattrs); removed only
    /// when empty, nothing in it killed.
    Unknown,
}

impl State {
    /// `live`, `stale` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Stale => "stale",
            State::Unknown => "unknown",
        }
    }
}

/// One lab cgroup the janitor looked at.
#[derive(Clone, Debug, Serialize)]
pub struct Examined {
    /// Its directory.
    pub path: PathBuf,
    /// Live, stale or unknown.
    pub state: State,
    /// Its recorded owner, if any.
    pub owner: Option<Owner>,
    /// Whether the janitor removed it (only with `--remove`: a stale one, or
    /// an unknown one that was empty).
    pub removed: bool,
}

impl Examined {
    /// One line: path, state, owner, and whether it was removed.
    pub fn render(&self) -> String {
        let owner = self.owner.as_ref().map_or("no owner recorded".into(), |o| {
            format!(
                "owner pid {} (started {} ticks after boot {})",
                o.pid, o.start_ticks, o.boot_id
            )
        });
        let removed = if self.removed { ", removed" } else { "" };
        format!(
            "{} {}: {owner}{removed}\n",
            self.state.name(),
            self.path.display()
        )
    }
}

/// `f_type` of a cgroup v2 file system (`statfs(2)`).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// How long [`remove`] waits for a killed cgroup to empty (the kernel's
/// `populated 0`).
pub const EMPTY_WAIT: Duration = Duration::from_secs(5);

/// The lab cgroups (`lab.*` directories) directly under `parent`, each
/// inspected ([`inspect`]), in name order.
///
/// # Errors
/// Errors reading `parent`.
pub fn scan(parent: &Path) -> io::Result<Vec<Examined>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(parent)? {
        let e = e?;
        let lab = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(LAB_PREFIX));
        if lab && e.file_type()?.is_dir() {
            // A cgroup removed meanwhile is simply not listed.
            if let Ok(f) = inspect(&e.path()) {
                found.push(f);
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Open a lab cgroup's directory and examine it (live, stale or unknown); the fd holds the exclusive
/// lock when the cgroup is stale or unknown.
fn examine(path: &Path) -> io::Result<(Examined, OwnedFd)> {
    let fd = open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    // Only a cgroup v2 directory: never write cgroup.kill files into, or
    // remove, anything else.
    if rustix::fs::fstatfs(&fd)?.f_type as i64 != CGROUP2_SUPER_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a cgroup v2 directory", path.display()),
        ));
    }
    let owner = cgroup::owner_of(fd.as_fd());
    let locked_by_other = match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => false,
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(e) => return Err(e.into()),
    };
    let state = if locked_by_other || owner.as_ref().is_some_and(Owner::is_running) {
        State::Live
    } else if owner.is_some() {
        State::Stale
    } else {
        State::Unknown
    };
    let found = Examined {
        path: path.to_path_buf(),
        state,
        owner,
        removed: false,
    };
    Ok((found, fd))
}

/// Judge the lab cgroup at `path`: live, stale or unknown.
///
/// # Errors
/// `NotFound` when it does not exist; `InvalidInput` when it is no cgroup
/// v2 directory; `NotADirectory`, `EACCES` and the like from opening it.
pub fn inspect(path: &Path) -> io::Result<Examined> {
    examine(path).map(|(f, _)| f)
}

/// Remove the lab cgroup at `path` when it is stale: `cgroup.kill` on each
/// trial cgroup and on it, wait for `populated 0` in `cgroup.events` (at
/// most [`EMPTY_WAIT`] each), then `rmdir` them, holding its lock all the
/// while. An unknown one (no owner recorded, lock free) is removed only
/// when a bare `rmdir` takes it: empty, no trial cgroup and no process in
/// it, so nothing is killed (a lab killed between its `mkdir` and its lock
/// leaves such a cgroup; a lab still in that moment makes another, see
/// [`cgroup::create_lab_cgroup_in`]). A live cgroup is left as it is.
/// Returns what was found, `removed` set when it is gone.
///
/// # Errors
/// Errors opening it; `Other` when it was stale but could not be removed
/// (a process that would not die, or no permission).
pub fn remove(path: &Path) -> io::Result<Examined> {
    remove_within(path, EMPTY_WAIT)
}

/// [`remove`], waiting at most `limit` for each cgroup to empty.
fn remove_within(path: &Path, limit: Duration) -> io::Result<Examined> {
    let (mut found, _lock) = examine(path)?;
    match found.state {
        State::Live => return Ok(found),
        State::Unknown => {
            found.removed = std::fs::remove_dir(path).is_ok();
            return Ok(found);
        }
        State::Stale => {}
    }
    if !cgroup::empty_and_remove(path, limit) {
        return Err(io::Error::other(format!(
            "cannot remove {}: it did not empty, or no permission",
            path.display()
        )));
    }
    found.removed = true;
    Ok(found)
}

/// How long [`sweep`] may wait, in all, for stale cgroups to empty.
pub const SWEEP_WAIT: Duration = Duration::from_secs(1);

/// Remove, quietly, the cgroups that dead labs left directly under `parent`
/// (what `lab janitor --remove` would remove there: the stale ones, and
/// the unknown ones that are empty); what a lab does when it makes its own
/// cgroup, so that a lab killed by SIGKILL leaves nothing for longer than
/// until the next lab starts in the same place. Only `lab.*` directories
/// on a cgroup v2 file system, opened without following links; a live
/// lab's cgroup is never touched. It waits at most [`SWEEP_WAIT`] in all
/// for killed processes to go (what outlasts it is killed already and
/// removed by the next sweep). Returns how many it removed; errors are
/// ignored (the cgroup is left for the next sweep or `lab janitor`).
pub fn sweep(parent: &Path) -> usize {
    let Ok(found) = scan(parent) else {
        return 0;
    };
    let end = std::time::Instant::now() + SWEEP_WAIT;
    found
        .iter()
        .filter(|f| f.state != State::Live)
        .filter(|f| {
            let left = end.saturating_duration_since(std::time::Instant::now());
            remove_within(&f.path, left).is_ok_and(|f| f.removed)
        })
        .count()
}

/// Where `lab janitor` looks when given no cgroup: the caller's own cgroup
/// (where a lab started from the same place makes its own).
pub fn default_parent() -> Option<PathBuf> {
    cgroup::own_cgroup()
}
