//! `lab bench`: the throughput of the lab against its raw floor, measured in
//! one run on the same machine and parallelism: trials per second of
//! `nested` (a breadth-2, depth-3 tree: 15 processes) under `canonical`,
//! against the same 15-process tree built by a bare fork/wait loop with no
//! lab around it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::error::LabError;
use crate::run::{self, RunArgs};
use crate::strategy::Strategy;
use crate::verdict::Timings;
use lifeline::floor;

/// What `lab bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Trees (floor) and trials (lab) per measurement.
    pub trials: u64,
    /// Parallel workers of both.
    pub jobs: usize,
    /// Raw trees per second: fork/wait of a breadth-2, depth-3 tree.
    pub floor_per_s: f64,
    /// Trials per second of `lab run nested --strategy canonical`.
    pub lab_per_s: f64,
    /// `lab_per_s / floor_per_s`.
    pub ratio: f64,
    /// The lab's median time to verdict (µs).
    pub lab_median_verdict_us: u64,
    /// Where a lab trial's time goes: the mean of each phase (µs).
    pub lab_phases_us: Timings,
    /// The lab's wall time per trial and worker (µs): `jobs / lab_per_s`.
    pub lab_per_trial_us: u64,
}

impl Throughput {
    /// Both rates, the ratio, and where a lab trial's time goes, as text.
    pub fn render(&self) -> String {
        let p = &self.lab_phases_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let inside = p.total_us();
        format!(
            "raw floor (fork/wait tree of 15): {:.1} trees/s\n\
             lab run nested --strategy canonical: {:.1} trials/s (median time to verdict {:.2} ms)\n\
             ratio: {:.2} ({} each, -j {})\n\
             a lab trial, mean per phase: setup {:.2} ms, root's spawn {:.2} ms, build {:.2} ms, \
             course {:.2} ms, cascade {:.2} ms, cleanup {:.2} ms; {:.2} ms of wall time per trial \
             and worker, {:.2} ms of it outside the trial (request, record)\n",
            self.floor_per_s,
            self.lab_per_s,
            ms(self.lab_median_verdict_us),
            self.ratio,
            self.trials,
            self.jobs,
            ms(p.setup_us),
            ms(p.spawn_us),
            ms(p.build_us),
            ms(p.course_us),
            ms(p.cascade_us),
            ms(p.cleanup_us),
            ms(self.lab_per_trial_us),
            ms(self.lab_per_trial_us.saturating_sub(inside)),
        )
    }
}

/// Measure the floor, then the lab, `trials` each on `jobs` workers; the
/// lab's results go into a fresh directory `lab-bench-XXXXXXXX` under `tmp`
/// (mkdtemp semantics: a random name, a `mkdir` that fails if it exists,
/// mode 0700; nothing another user planted is ever written through),
/// removed afterwards.
///
/// # Errors
/// [`LabError::Io`] when the directory cannot be made; [`LabError::Lab`]
/// when a raw fork fails or the lab run fails.
pub fn throughput(
    exe: PathBuf,
    trials: u64,
    jobs: usize,
    tmp: &Path,
) -> Result<Throughput, LabError> {
    use std::os::unix::fs::PermissionsExt;
    let floor_per_s = floor_rate(trials, jobs)?;
    let dir = tempfile::Builder::new()
        .prefix("lab-bench-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(tmp)
        .map_err(|e| {
            LabError::io(
                format!("cannot make a directory under {}", tmp.display()),
                e,
            )
        })?;
    let out = dir.path().to_path_buf();
    let args = RunArgs {
        scenario: "nested".into(),
        text: None,
        overrides: Vec::new(),
        seed: 1,
        trials,
        first_trial: 0,
        strategies: vec![Strategy::parse("canonical")?],
        deadline: None,
        no_cgroup: false,
        jobs,
        out,
        exe,
        gdb: false,
        keep_hung: false,
        trace: false,
        command: "lab run",
        max_diagnoses: crate::record::DEFAULT_MAX_DIAGNOSES,
    };
    let summary = run::run(&args);
    drop(dir);
    let summary = summary?;
    let r = &summary.results[0];
    if r.pass != r.trials {
        return Err(LabError::Lab(format!(
            "the lab's nested trials did not all pass ({} of {}): the rate would not be comparable",
            r.pass, r.trials
        )));
    }
    Ok(Throughput {
        trials,
        jobs,
        floor_per_s,
        lab_per_s: r.trials_per_s,
        ratio: r.trials_per_s / floor_per_s,
        lab_median_verdict_us: r.median_verdict_us,
        lab_phases_us: r.mean_phases_us,
        lab_per_trial_us: if r.trials_per_s > 0.0 {
            (jobs as f64 / r.trials_per_s * 1e6) as u64
        } else {
            0
        },
    })
}

/// Raw trees per second: `jobs` threads build breadth-2, depth-3 fork trees
/// until `trials` are built.
fn floor_rate(trials: u64, jobs: usize) -> Result<f64, LabError> {
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let failed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < trials {
                        floor::fork_tree(2, 3)?;
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        workers
            .into_iter()
            .find_map(|w| w.join().ok().and_then(Result::err))
    });
    if let Some(e) = failed {
        return Err(LabError::io("the raw fork tree failed", e));
    }
    Ok(trials as f64 / start.elapsed().as_secs_f64())
}
