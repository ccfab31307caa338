//! The session: what a command of the lab (`run`, `soak`, `suite`, `bisect`,
//! `bench`) holds while its trials run. A [`Session`] owns the pool of
//! supervisors (one worker thread each, see [`pool`]) and the lab's cgroup
//! under which each trial gets a cgroup of its own; when it is dropped (on
//! success and on every error path alike) the lab's cgroup is removed, what
//! a crashed supervisor left in it killed, and the orphans that came to the
//! lab (a subreaper) ended: once, here.
//!
//! - [`handle`]: the lab's handle on one supervisor process
//!   ([`SupervisorHandle`]; the supervisor's own loop is `crate::supervisor`)
//!   and [`SupervisorError`];
//! - [`pool`]: trials and executions on `jobs` supervisors at once;
//! - [`host`]: the lab process and the machine before and after trials.

pub mod handle;
pub mod host;
pub mod pool;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{cgroup, janitor};

pub use handle::{check_proc, PidNsMode, SupervisorError, SupervisorHandle};
pub use host::{
    check_privileges, grow_fd_table, interrupted, interruption, prepare_lab_process,
    stop_on_interrupt, sweep_orphans,
};
use host::{forget_on_signal, watched};

/// The supervisors and the lab cgroup of one command. Not `Clone`: one per
/// command, dropped when its trials are over.
#[derive(Debug)]
pub struct Session {
    exe: PathBuf,
    jobs: usize,
    cgroup: Option<PathBuf>,
    cgroup_note: Option<String>,
    started: AtomicU64,
}

impl Session {
    /// Open a session that starts supervisors from the `lab` binary `exe`,
    /// `jobs` at once (at least one), and puts trials into cgroups below a
    /// fresh lab cgroup (`lab.` and a random suffix, owned and locked: see [`cgroup::create_lab_cgroup_in`]) unless `no_cgroup` or no writable
    /// cgroup v2 is here (then subreaper mode, and [`Session::cgroup_note`]
    /// says why). Beside it, the cgroups of dead labs are removed
    /// ([`janitor::sweep`]).
    pub fn open(exe: &Path, jobs: usize, no_cgroup: bool) -> Session {
        let (cgroup, cgroup_note) = watched(|| cgroup::trial_parent(no_cgroup));
        // What labs killed by SIGKILL left beside it (nothing removes a
        // lab's cgroup when the lab dies while none of its supervisors
        // runs, or together with them).
        if let Some(parent) = cgroup.as_deref().and_then(Path::parent) {
            janitor::sweep(parent);
        }
        Session {
            exe: exe.to_path_buf(),
            jobs: jobs.max(1),
            cgroup,
            cgroup_note,
            started: AtomicU64::new(0),
        }
    }

    /// The parent directory of the trials' cgroups (a request's
    /// `cgroup_parent`); `None`: subreaper alone.
    pub fn cgroup_parent(&self) -> Option<PathBuf> {
        self.cgroup.clone()
    }

    /// Whether trials run in cgroups of their own.
    pub fn has_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Why trials run without a cgroup (`None` when they have one).
    pub fn cgroup_note(&self) -> Option<String> {
        self.cgroup_note.clone()
    }

    /// How its supervisors run: as init of a PID namespace of their own, or
    /// (where none can be made) in the lab's, and why (decided once per lab
    /// process: [`handle::pid_namespace`]).
    pub fn pid_namespace(&self) -> PidNsMode {
        handle::pid_namespace(&self.exe).clone()
    }

    /// Supervisors at most at once.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// Supervisors started so far (a suite's executions: one each).
    pub fn supervisors_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Start one supervisor and count it.
    ///
    /// # Errors
    /// [`SupervisorError::Start`].
    pub fn start_supervisor(&self) -> Result<SupervisorHandle, SupervisorError> {
        let sup = SupervisorHandle::start(&self.exe, self.cgroup.as_deref())?;
        self.started.fetch_add(1, Ordering::Relaxed);
        Ok(sup)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(dir) = &self.cgroup {
            cgroup::remove_lab_cgroup(dir);
            forget_on_signal(dir);
        }
        sweep_orphans();
    }
}
