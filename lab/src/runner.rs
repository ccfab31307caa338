//! The lab's side of trials: a pool of supervisors (one per worker thread),
//! each a fresh process started with the canonical primitive and fed one
//! trial at a time through its lifeline.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::LabError;
use crate::trial::protocol::TrialRequest;
use crate::trial::protocol::{BYE, MODE_ARG, PLAN_FD, RELEASE, RESULT_FD};
use crate::verdict::Outcome;
use lifeline::{Pidfd, Spawn};

/// A running supervisor: its pidfd, the write end of its lifeline (plans go
/// there) and the read end of its result pipe.
#[derive(Debug)]
pub struct Supervisor {
    pidfd: Pidfd,
    plans: Option<File>,
    results: BufReader<File>,
}

impl Supervisor {
    /// Start `exe __supervisor` with the canonical primitive: clone3 +
    /// exec, lifeline at fd 3, result pipe at fd 4, stdin and stdout
    /// `/dev/null`, stderr shared with the lab.
    ///
    /// # Errors
    /// Errors of pipe, open, clone3 and exec.
    pub fn start(exe: &Path) -> std::io::Result<Supervisor> {
        let (res_read, res_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let devnull: OwnedFd = File::open("/dev/null")?.into();
        let prog = CString::new(exe.as_os_str().as_bytes())?;
        let arg0 = CString::new("lab")?;
        let arg1 = CString::new(MODE_ARG)?;
        let stderr = std::io::stderr();
        let child = Spawn::default().exec(
            &prog,
            &[&arg0, &arg1],
            &[
                (devnull.as_fd(), 0),
                (devnull.as_fd(), 1),
                (stderr.as_fd(), 2),
                (res_write.as_fd(), RESULT_FD),
            ],
            PLAN_FD,
        )?;
        let (pidfd, plans) = child.into_parts();
        Ok(Supervisor {
            pidfd,
            plans: Some(File::from(plans)),
            results: BufReader::new(File::from(res_read)),
        })
    }

    /// Run one trial and return its outcome; `Err` with a reason when the
    /// supervisor died or answered nonsense (it is then unusable). A hang
    /// kept alive (`req.keep_hung`) is handed to `on_kept` while its tree
    /// lives; when `on_kept` returns, the tree is released and cleaned up.
    ///
    /// # Errors
    /// The supervisor's death (with its exit status) or a malformed answer.
    pub fn run(
        &mut self,
        req: &TrialRequest,
        on_kept: &(dyn Fn(&Outcome) + Sync),
    ) -> Result<Outcome, String> {
        let line = serde_json::to_string(req).map_err(|e| e.to_string())?;
        self.say(&line)?;
        let first = self.answer()?;
        if !first.kept {
            return Ok(first);
        }
        on_kept(&first);
        self.say(RELEASE)?;
        self.answer()
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        let plans = self.plans.as_mut().ok_or("supervisor closed")?;
        if let Err(e) = plans.write_all(format!("{line}\n").as_bytes()) {
            return Err(format!("supervisor gone ({e}): {}", self.status()));
        }
        Ok(())
    }

    fn answer(&mut self) -> Result<Outcome, String> {
        let mut answer = String::new();
        match self.results.read_line(&mut answer) {
            Ok(0) | Err(_) => Err(format!("supervisor died mid-trial: {}", self.status())),
            Ok(_) => serde_json::from_str(&answer)
                .map_err(|e| format!("bad answer from the supervisor: {e}")),
        }
    }

    fn status(&self) -> String {
        match self.pidfd.wait() {
            Ok(s) => format!("{s:?}"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // "bye", then closing the lifeline: the supervisor finishes and exits.
        if let Some(mut plans) = self.plans.take() {
            let _ = plans.write_all(format!("{BYE}\n").as_bytes());
        }
        let _ = self.pidfd.wait();
    }
}

/// Run `trials` trials of `base` (its `trial` field set to each index) on
/// `jobs` supervisors in parallel; `on_outcome(index, outcome)` is called on
/// the calling thread as each trial ends. With `base.keep_hung`, the first
/// hang is kept alive and handed to `on_kept` (on a worker thread) until it
/// returns; later hangs are not kept. Returns the wall time.
///
/// # Errors
/// [`LabError::Lab`] when no supervisor can be started.
pub fn run_trials(
    exe: &Path,
    jobs: usize,
    base: &TrialRequest,
    trials: u64,
    on_kept: &(dyn Fn(&Outcome) + Sync),
    on_outcome: impl FnMut(u64, Outcome),
) -> Result<Duration, LabError> {
    let request = |i: u64| {
        (i < trials).then(|| {
            let mut req = base.clone();
            req.trial = i;
            req
        })
    };
    run_pool(
        exe,
        jobs.min(trials.max(1) as usize),
        &request,
        on_kept,
        on_outcome,
    )
}

/// Run the requests `request(0)`, `request(1)`, ... until one is `None`, on
/// `jobs` supervisors in parallel (each worker asks for the next index when
/// its supervisor is free; `request` runs on the worker threads, just before
/// its trial starts). `on_outcome(index, outcome)` is called on the calling
/// thread as each trial ends. A request with `keep_hung` keeps the first
/// hang alive for `on_kept`, as [`run_trials`] says. Returns the wall time.
///
/// # Errors
/// [`LabError::Lab`] when no supervisor can be started.
pub fn run_pool(
    exe: &Path,
    jobs: usize,
    request: &(dyn Fn(u64) -> Option<TrialRequest> + Sync),
    on_kept: &(dyn Fn(&Outcome) + Sync),
    mut on_outcome: impl FnMut(u64, Outcome),
) -> Result<Duration, LabError> {
    let next = AtomicU64::new(0);
    let kept_one = AtomicBool::new(false);
    // Only the first kept hang reaches the user; one kept by another worker
    // meanwhile is released at once.
    let keep = |o: &Outcome| {
        if !kept_one.swap(true, Ordering::SeqCst) {
            on_kept(o);
        }
    };
    let (tx, rx) = mpsc::channel::<Result<(u64, Outcome), String>>();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let next = &next;
            let (keep, kept_one) = (&keep, &kept_one);
            s.spawn(move || {
                let mut sup = match Supervisor::start(exe) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(format!(
                            "cannot start a supervisor ({}): {e}",
                            exe.display()
                        )));
                        return;
                    }
                };
                // A plan whose host acts changes its supervisor's own state
                // (a worker thread, say): each of its trials gets a fresh
                // supervisor, as a test run alone gets a fresh process.
                let mut used = false;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(mut req) = request(i) else {
                        break;
                    };
                    if used && req.plan.host.acts() {
                        match Supervisor::start(exe) {
                            Ok(fresh) => sup = fresh,
                            Err(e) => {
                                let _ = tx.send(Err(format!(
                                    "cannot start a supervisor ({}): {e}",
                                    exe.display()
                                )));
                                return;
                            }
                        }
                    }
                    used = true;
                    req.keep_hung = req.keep_hung && !kept_one.load(Ordering::SeqCst);
                    let outcome = sup.run(&req, keep).unwrap_or_else(|reason| {
                        if let Ok(fresh) = Supervisor::start(exe) {
                            sup = fresh;
                        }
                        Outcome::error(reason, 0)
                    });
                    if tx.send(Ok((i, outcome))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut failure = None;
        for msg in rx {
            match msg {
                Ok((i, o)) => on_outcome(i, o),
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(LabError::Lab(e)),
            None => Ok(start.elapsed()),
        }
    })
}

/// End and reap every child of the lab that is not a supervisor it still
/// runs: orphans that reparented to the lab (a subreaper) because their
/// supervisor died. Call from the only thread left, after the workers.
pub fn sweep_orphans() -> usize {
    let mut n = 0;
    loop {
        let kids = lifeline::adopt_children().unwrap_or_default();
        for k in &kids {
            let _ = k.send_signal(rustix::process::Signal::KILL);
            n += 1;
        }
        match lifeline::reap_any(!kids.is_empty()) {
            Ok(lifeline::Reaped::One(_)) => continue,
            _ if kids.is_empty() => return n,
            _ => continue,
        }
    }
}
