//! The one pool of supervisors: `jobs` worker threads, each with its own
//! supervisor (started when first needed), dealt work by index until the
//! work runs out. Trials of `lab run` and `lab soak` reuse a worker's
//! supervisor from trial to trial; a suite's executions get a fresh one
//! each. Outcomes reach the calling thread as they end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{host, Session, SupervisorError, SupervisorHandle};
use crate::error::LabError;
use crate::trial::protocol::TrialRequest;
use crate::verdict::Outcome;

/// One worker of the pool: its thread's supervisor, started when first
/// needed and replaced when it dies or when a plan needs a fresh one.
#[derive(Debug)]
pub struct Worker<'s> {
    session: &'s Session,
    sup: Option<SupervisorHandle>,
    used: bool,
}

impl Worker<'_> {
    /// The worker's supervisor: the running one, or a newly started one
    /// when `fresh` or none runs.
    ///
    /// # Errors
    /// [`SupervisorError::Start`].
    pub fn supervisor(&mut self, fresh: bool) -> Result<&mut SupervisorHandle, SupervisorError> {
        if fresh || self.sup.is_none() {
            self.sup = Some(self.session.start_supervisor()?);
        }
        Ok(self.sup.as_mut().expect("a supervisor was just started"))
    }

    /// Forget the supervisor (it died): the next trial starts a fresh one.
    fn discard(&mut self) {
        self.sup = None;
    }
}

/// Why a worker's job failed, with what it gave before it failed (a
/// trial that could not run: its `error` outcome), if anything.
struct Failed<R> {
    partial: Option<R>,
    error: SupervisorError,
}

impl<R> Failed<R> {
    /// A failure that gave nothing.
    fn bare(error: SupervisorError) -> Box<Self> {
        Box::new(Failed {
            partial: None,
            error,
        })
    }
}

/// What a pool's worker does with one job: its result, or why it failed.
type Work<'a, J, R> = dyn Fn(&mut Worker<'_>, J) -> Result<R, Box<Failed<R>>> + Sync + 'a;

/// The error of a supervisor that failed: for one that could not start
/// because a limit on processes was reached, with what to do about it.
fn pool_error(e: SupervisorError) -> LabError {
    let limit = match &e {
        SupervisorError::Start { source, .. } => {
            matches!(source.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM))
        }
        _ => false,
    };
    let e = LabError::from(e);
    if limit {
        LabError::Lab(format!(
            "{}; a limit on processes is reached (ulimit -u / RLIMIT_NPROC, kernel.threads-max, \
             a cgroup's pids.max): lower -j, or raise the limit",
            e.chain()
        ))
    } else {
        e
    }
}

impl Session {
    /// Run `job(0)`, `job(1)`, ... until one is `None` on up to `workers`
    /// threads (at most [`Session::jobs`]); `job(i)` runs on a worker
    /// thread just before `work` does its job there. `on_done(i, result)`
    /// is called on the calling thread as each job ends (and for a failed
    /// job with what it gave before it failed). A worker whose `work` fails
    /// stops, no new job is dealt, and the error is returned once the jobs
    /// in flight have ended. When fewer worker threads can be created than
    /// asked (a limit on threads), the pool goes on with those that
    /// started and says so on standard error; when none can, it returns
    /// the error. Returns the wall time.
    fn pool<J, R: Send>(
        &self,
        workers: usize,
        job: &(dyn Fn(u64) -> Option<J> + Sync),
        work: &Work<'_, J, R>,
        mut on_done: impl FnMut(u64, R),
    ) -> Result<Duration, LabError> {
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<Result<(u64, R), (u64, Box<Failed<R>>)>>();
        let start = Instant::now();
        let wanted = workers.clamp(1, self.jobs());
        std::thread::scope(|s| {
            let mut started = 0usize;
            let mut refused = None;
            for n in 0..wanted {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                let spawned = std::thread::Builder::new()
                    .name(format!("lab-worker-{n}"))
                    .spawn_scoped(s, move || {
                        let mut w = Worker {
                            session: self,
                            sup: None,
                            used: false,
                        };
                        while !stop.load(Ordering::SeqCst) {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(j) = job(i) else {
                                break;
                            };
                            let done = work(&mut w, j);
                            let failed = done.is_err();
                            if failed {
                                stop.store(true, Ordering::SeqCst);
                            }
                            if tx.send(done.map(|r| (i, r)).map_err(|f| (i, f))).is_err() || failed
                            {
                                break;
                            }
                        }
                    });
                match spawned {
                    Ok(_) => started += 1,
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            drop(tx);
            if let Some(e) = &refused {
                if started == 0 {
                    return Err(LabError::Lab(format!(
                        "cannot start a worker thread (0 of {wanted} started): {e}; a limit on \
                         threads is reached (ulimit -u / RLIMIT_NPROC, kernel.threads-max, a \
                         cgroup's pids.max): lower -j, or raise the limit"
                    )));
                }
                crate::output::write_err(format_args!(
                    "lab: started {started} of {wanted} workers ({e}: a limit on threads); going on with {started}\n"
                ));
            }
            let mut failure = None;
            for msg in rx {
                match msg {
                    Ok((i, r)) => on_done(i, r),
                    Err((i, f)) => {
                        if let Some(r) = f.partial {
                            on_done(i, r);
                        }
                        failure.get_or_insert(f.error);
                    }
                }
            }
            match failure {
                Some(e) => Err(pool_error(e)),
                None => Ok(start.elapsed()),
            }
        })
    }

    /// Run trials `0..trials`, each the request `request(index)` builds (on
    /// a worker thread, just before the trial starts), on the session's
    /// supervisors in parallel, as [`Session::run_pool`] says; no more
    /// supervisors are started than there are trials. Returns the wall
    /// time.
    ///
    /// # Errors
    /// [`LabError::Io`] when a supervisor cannot be started (the trial
    /// dealt to it gets an `error` outcome first), [`LabError::Lab`] when it
    /// cannot for a limit on processes, or when no worker thread can start;
    /// each with what to do.
    pub fn run_trials(
        &self,
        trials: u64,
        request: &(dyn Fn(u64) -> TrialRequest + Sync),
        on_kept: &(dyn Fn(&Outcome) + Sync),
        on_outcome: impl FnMut(u64, Outcome),
    ) -> Result<Duration, LabError> {
        let request = |i: u64| (i < trials).then(|| request(i));
        let workers = usize::try_from(trials.max(1)).unwrap_or(usize::MAX);
        self.trials(workers, &request, on_kept, on_outcome)
    }

    /// Run the requests `request(0)`, `request(1)`, ... until one is `None`,
    /// on the session's supervisors in parallel (each worker asks for the
    /// next index when its supervisor is free; `request` runs on the worker
    /// threads, just before its trial starts). `on_outcome(index, outcome)`
    /// is called on the calling thread as each trial ends. A supervisor that
    /// dies gives its trial an `error` outcome and is replaced; a plan whose
    /// host acts gets a fresh supervisor. With `keep_hung` in the requests,
    /// the first hang is kept alive and handed to `on_kept` (on a worker
    /// thread) until it returns; later hangs are not kept. Returns the wall
    /// time.
    ///
    /// # Errors
    /// As [`Session::run_trials`].
    pub fn run_pool(
        &self,
        request: &(dyn Fn(u64) -> Option<TrialRequest> + Sync),
        on_kept: &(dyn Fn(&Outcome) + Sync),
        on_outcome: impl FnMut(u64, Outcome),
    ) -> Result<Duration, LabError> {
        self.trials(self.jobs(), request, on_kept, on_outcome)
    }

    fn trials(
        &self,
        workers: usize,
        request: &(dyn Fn(u64) -> Option<TrialRequest> + Sync),
        on_kept: &(dyn Fn(&Outcome) + Sync),
        on_outcome: impl FnMut(u64, Outcome),
    ) -> Result<Duration, LabError> {
        let kept_one = AtomicBool::new(false);
        // Only the first kept hang reaches the user; one kept by another
        // worker meanwhile is released at once.
        let keep = |o: &Outcome| {
            if !kept_one.swap(true, Ordering::SeqCst) {
                on_kept(o);
            }
        };
        let work = |w: &mut Worker<'_>, mut req: TrialRequest| {
            // A plan whose host acts changes its supervisor's own state (a
            // worker thread, say): each of its trials gets a fresh
            // supervisor, as a test run alone gets a fresh process.
            let fresh = w.used && req.plan.host.acts();
            w.used = true;
            // A trial whose supervisor cannot start is recorded as an
            // `error` (it was dealt, maybe journalled), and the pool stops.
            let sup = w.supervisor(fresh).map_err(|e| {
                Box::new(Failed {
                    partial: Some(Outcome::error(
                        format!("not run: {}", crate::error::chain(&e)),
                        0,
                    )),
                    error: e,
                })
            })?;
            req.keep_hung = req.keep_hung && !kept_one.load(Ordering::SeqCst);
            Ok(sup.run(&req, &keep).unwrap_or_else(|e| {
                w.discard();
                Outcome::error(e.reason(), 0)
            }))
        };
        // After a Ctrl-C (`host::stop_on_interrupt`) no trial starts; those
        // in flight finish and are reported.
        let request = |i: u64| {
            if host::interrupted() {
                None
            } else {
                request(i)
            }
        };
        self.pool(workers, &request, &work, on_outcome)
    }

    /// Run `executions` on up to [`Session::jobs`] supervisors at once:
    /// each execution's requests in order in one fresh supervisor (sharing
    /// its process-global state, as tests share `cargo test`'s process).
    /// One outcome per request, in order; a request after the supervisor
    /// died gets an `error` outcome that says so. The outcomes are returned
    /// in the order of `executions`; an execution that did not start (an
    /// interruption came first) has none.
    ///
    /// # Errors
    /// As [`Session::run_trials`], except that an execution whose
    /// supervisor cannot start gives no outcomes.
    pub fn execute_all(
        &self,
        executions: &[Vec<TrialRequest>],
    ) -> Result<Vec<Vec<Outcome>>, LabError> {
        // After a Ctrl-C or SIGTERM (`host::stop_on_interrupt`) no
        // execution starts: it gives no outcomes.
        let job = |i: u64| {
            if host::interrupted() {
                return None;
            }
            executions.get(usize::try_from(i).ok()?)
        };
        let work = |w: &mut Worker<'_>, requests: &Vec<TrialRequest>| {
            let sup = w.supervisor(true).map_err(Failed::bare)?;
            let mut outcomes = Vec::with_capacity(requests.len());
            let mut dead: Option<String> = None;
            for req in requests {
                if let Some(why) = &dead {
                    outcomes.push(Outcome::error(
                        format!("not run: the suite's supervisor died earlier ({why})"),
                        0,
                    ));
                    continue;
                }
                match sup.run(req, &|_| {}) {
                    Ok(o) => outcomes.push(o),
                    Err(e) => {
                        let why = e.reason();
                        outcomes.push(Outcome::error(why.clone(), 0));
                        dead = Some(why);
                    }
                }
            }
            Ok(outcomes)
        };
        let mut results = vec![Vec::new(); executions.len()];
        self.pool(executions.len(), &job, &work, |i, o| {
            results[i as usize] = o;
        })?;
        Ok(results)
    }
}
