//! `lab fuzz`: generated scenarios, run as real trials under each strategy
//! against a property, a failure shrunk to the smallest scenario that
//! still fails, written as a readable scenario file and kept as a
//! regression that the next run replays first.
//!
//! - [`generate`]: the proptest strategy of cases (swarm testing), their
//!   scenario text, parsed and planned by the lab's own parser;
//! - [`property`]: the property (which verdicts fail) and the failure
//!   class a shrink keeps;
//! - [`shrink`]: proptest's value tree driven by real trials;
//! - [`summary`]: what it reports (text, JSON, JUnit/CTRF cases).
//!
//! Every trial (regression replays, exploration, shrink steps) runs on the
//! one [`Session`] and is written by the one [`Recorder`]:
//! `OUT/<run-id>/trials.csv`, each row with the command that replays it.

pub mod generate;
pub mod property;
pub mod shrink;
pub mod summary;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::LabError;
use crate::output::progress::{Bar, Progress};
use crate::record::trust::{Missing, OwnDir};
use crate::record::{Finished, Recorder, RunCommand, TrialSource};
use crate::scenario::Scenario;
use crate::session::Session;
use crate::strategy::Strategy;
use crate::trial::protocol::TrialRequest;
use crate::verdict::{Outcome, Verdict};
use generate::Checked;

pub use summary::{ClassFound, FuzzSummary, MinimalCase, Regressions, Replayed, StrategyFuzz};

/// The name of every generated scenario (the CSV's `scenario` column; the
/// scenario hash tells cases apart).
pub const SCENARIO_NAME: &str = "fuzz";

/// The comment line of a written case that names its plan's seed, read
/// back when it is replayed as a regression.
pub const SEED_LINE: &str = "# plan seed = ";

/// What `lab fuzz` is asked to do.
#[derive(Clone, Debug)]
pub struct FuzzArgs {
    /// Strategies, in order.
    pub strategies: Vec<Strategy>,
    /// Cases generated and run per strategy.
    pub cases: u64,
    /// The seed of the cases (and of their plans).
    pub seed: u64,
    /// Trials of each shrink step and of each regression replay.
    pub repeat: u64,
    /// Shrink steps (candidates run) at most per failure class (its first
    /// case is shrunk).
    pub shrink_steps: u64,
    /// Deadline override; `None`: each plan's own.
    pub deadline: Option<Duration>,
    /// Do not use a cgroup even where one is available.
    pub no_cgroup: bool,
    /// Parallel supervisors.
    pub jobs: usize,
    /// Directory under which `<run-id>/` is written.
    pub out: PathBuf,
    /// The regressions directory: every `*.toml` in it is replayed first,
    /// and each minimal failing case is copied into it.
    pub regressions: PathBuf,
    /// The `lab` binary (supervisors are started from it).
    pub exe: PathBuf,
    /// Diagnoses written per strategy at most (`--max-diagnoses`).
    pub max_diagnoses: u64,
    /// Add gdb's all-thread backtraces to each diagnosis (`--gdb`).
    pub gdb: bool,
}

/// A case written to a file, ready to run.
#[derive(Clone, Debug)]
pub struct Written {
    /// Its file.
    pub path: PathBuf,
    /// Its text, parsed and planned.
    pub checked: Checked,
    /// The seed of its plan.
    pub seed: u64,
}

impl Written {
    /// Its number of nodes.
    pub fn nodes(&self) -> u64 {
        self.checked.plan.nodes.len() as u64
    }
}

/// What every trial of one fuzz run shares: the session, the record, the
/// progress bar.
pub struct Lab<'a> {
    args: &'a FuzzArgs,
    session: &'a Session,
    rec: &'a mut Recorder,
    bar: &'a Bar,
    /// Trials dealt so far in this run: the first CSV `trial` number of the
    /// next batch. Every case is the scenario `fuzz`, so a row's `trial`
    /// numbers it within the run (a case's own trial index, which its
    /// replay reproduces, is the last part of its diagnosis stem).
    dealt: u64,
}

impl Lab<'_> {
    /// Run trials `0..k` of each of `cases` under `strategy` on the
    /// session's supervisors, record each (diagnosis stems
    /// `STRATEGY.TAG.TRIAL`, TAG from `tag(case)`), and return the
    /// outcomes per case, trial by trial. After a Ctrl-C no trial starts:
    /// a case may come back with fewer than `k` outcomes.
    ///
    /// # Errors
    /// As [`Session::run_trials`].
    pub fn trials(
        &mut self,
        strategy: &Strategy,
        cases: &[&Written],
        k: u64,
        tag: &dyn Fn(usize) -> String,
    ) -> Result<Vec<Vec<Outcome>>, LabError> {
        let log_dir = std::path::absolute(self.rec.dir().join("log"))
            .unwrap_or_else(|_| self.rec.dir().join("log"));
        let (deadline, gdb) = (self.args.deadline, self.args.gdb);
        let cgroup_parent = self.session.cgroup_parent();
        let total = cases.len() as u64 * k;
        // Once the strategy's diagnoses are all written, a trial reads only
        // what finds its signatures.
        let diagnosed = self.rec.diagnosed_cells();
        let request = |i: u64| {
            let w = cases[(i / k) as usize];
            TrialRequest {
                plan: w.checked.plan.clone(),
                strategy: strategy.clone(),
                trial: i % k,
                deadline_us: deadline.map_or(w.checked.plan.deadline_us, |d| {
                    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
                }),
                cgroup_parent: cgroup_parent.clone(),
                gdb,
                keep_hung: false,
                trace: false,
                brief_verdicts: diagnosed.brief_verdicts(SCENARIO_NAME, &strategy.name, ""),
                log_dir: Some(log_dir.clone()),
            }
        };
        let replays: Vec<String> = cases.iter().map(|w| self.replay(w, strategy)).collect();
        let plan_hashes: Vec<String> = cases.iter().map(|w| w.checked.plan.hash()).collect();
        let mut outcomes: Vec<Vec<(u64, Outcome)>> = vec![Vec::new(); cases.len()];
        let base = self.dealt;
        self.dealt += total;
        let (rec, bar) = (&mut *self.rec, self.bar);
        self.session.run_trials(total, &request, &|_| {}, |i, o| {
            let c = (i / k) as usize;
            let w = cases[c];
            rec.record(&Finished {
                source: TrialSource::of(&w.checked.plan, &plan_hashes[c], base + i, None),
                strategy,
                outcome: &o,
                stem: &format!("{}.{}.{}", strategy.name, tag(c), i % k),
                replay: &replays[c],
            });
            let mut o = o;
            o.diagnosis = None;
            o.output = None;
            o.trace = None;
            outcomes[c].push((i % k, o));
            bar.inc(|| rec.tally().live_counts());
        })?;
        self.rec.check()?;
        Ok(outcomes
            .into_iter()
            .map(|mut v| {
                v.sort_by_key(|(t, _)| *t);
                v.into_iter().map(|(_, o)| o).collect()
            })
            .collect())
    }

    /// The command that replays `w` under `strategy`.
    pub fn replay(&self, w: &Written, strategy: &Strategy) -> String {
        let path = w.path.display().to_string();
        RunCommand {
            scenario: &path,
            seed: w.seed,
            overrides: &[],
            deadline_ms: self
                .args
                .deadline
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            no_cgroup: self.args.no_cgroup,
        }
        .replay(strategy)
    }
}

/// The first 8 hex digits of the SHA-256 of `text`.
pub fn hash8(text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    format!("{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

/// Write `text` to `path` whole, in its directory (created if needed)
/// opened as a directory of the caller's ([`OwnDir`]: no symlink of another
/// user's followed, none that others can write): a temporary file renamed
/// over the name under the directory's handle.
///
/// # Errors
/// [`LabError::Input`] when the directory is not the caller's (a planted
/// symlink, say); [`LabError::Io`] naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<(), LabError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LabError::Lab(format!("{}: not a file name", path.display())))?;
    OwnDir::open(dir, Missing::Create)?
        .replace(name, text.as_bytes())
        .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))
}

/// Render `case` with `header`, parse and plan it under `seed`, and write
/// it to `path_of(HASH)` (HASH: [`hash8`] of its text without the header,
/// so equal cases share a name); `None` when it does not plan.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
fn write_case(
    case: &generate::Case,
    seed: u64,
    header: &str,
    path_of: impl FnOnce(&str) -> PathBuf,
) -> Result<Option<Written>, LabError> {
    let Ok(checked) = case.check(SCENARIO_NAME, header, seed) else {
        return Ok(None);
    };
    let path = path_of(&hash8(&case.render(SCENARIO_NAME, "")));
    write_text(&path, &checked.text)?;
    Ok(Some(Written {
        path,
        checked,
        seed,
    }))
}

/// The plan seed a written case names on its [`SEED_LINE`], if any.
pub fn seed_of(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(SEED_LINE))
        .and_then(|s| s.trim().parse().ok())
}

/// The regression files of `dir` (`*.toml`, sorted by name), each parsed
/// and planned under the seed it names (else `seed`); none when `dir` does
/// not exist.
///
/// # Errors
/// [`LabError::Scenario`] for a file that cannot be read as a scenario
/// (read as `lab check` reads one: not a regular file, a dangling link or a
/// loop of links, over 1 MiB, not UTF-8) or does not parse (named with its
/// position); [`LabError::Input`] when `dir` is not a directory, or for a
/// file whose plan can never run (its gate is never reached);
/// [`LabError::Io`] when the directory cannot be read.
pub fn load_regressions(dir: &Path, seed: u64) -> Result<Vec<Written>, LabError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(LabError::Input(format!(
                "--regressions {}: not a directory; name the directory of regression files \
                 (default fuzz-regressions)",
                dir.display()
            )))
        }
        Err(e) => return Err(LabError::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let shown = path.display().to_string();
            let text = crate::scenario::read_source(&path, &shown)?;
            let scenario = Scenario::parse(&shown, &text)?;
            let seed = seed_of(&text).unwrap_or(seed);
            let plan = crate::plan::Plan::new(&scenario, seed);
            if let Some(why) = plan.unreachable_gate() {
                return Err(LabError::Input(format!("{shown}: seed {seed}: {why}")));
            }
            Ok(Written {
                path,
                checked: Checked {
                    text,
                    scenario,
                    plan,
                },
                seed,
            })
        })
        .collect()
}

/// Run `lab fuzz`: the regressions first, then `cases` generated cases
/// under each strategy, shrinking the first failing case of each failure
/// class (verdict x signatures) of each strategy.
///
/// # Errors
/// [`LabError::Input`] for a bad regression file; [`LabError::Io`] when
/// results cannot be written or supervisors cannot be started.
pub fn run(args: &FuzzArgs) -> Result<FuzzSummary, LabError> {
    // Its cases are run and the minimal ones written there: a directory
    // that exists must be the caller's.
    if std::fs::symlink_metadata(&args.regressions).is_ok() {
        crate::record::trust::check_dir(&args.regressions)?;
    }
    let regressions = load_regressions(&args.regressions, args.seed)?;
    crate::session::check_proc(&args.exe)?;
    let mut rec = Recorder::new_run(&args.out, SCENARIO_NAME, args.seed)?;
    let run_dir = rec.dir().to_path_buf();
    rec.limit_diagnoses(args.max_diagnoses);
    let session = Session::open(&args.exe, args.jobs, args.no_cgroup);
    crate::session::stop_on_interrupt();
    let names: Vec<&str> = args.strategies.iter().map(|s| s.name.as_str()).collect();
    crate::output::write_err(format_args!(
        "lab fuzz  seed {}  strategies {}  {} each  repeat {}  -j {}  regressions {} ({})  results {}\n",
        args.seed,
        names.join(", "),
        crate::text::plural(args.cases, "case"),
        args.repeat,
        session.jobs(),
        args.regressions.display(),
        regressions.len(),
        run_dir.display()
    ));
    let start = Instant::now();
    let bar = Bar::new(Progress::Auto, None);
    let mut lab = Lab {
        args,
        session: &session,
        rec: &mut rec,
        bar: &bar,
        dealt: 0,
    };
    let done = explore_all(&mut lab, &regressions, &run_dir);
    bar.finish();
    let (replayed, results) = done?;
    let summary = FuzzSummary {
        seed: args.seed,
        cases: args.cases,
        repeat: args.repeat,
        shrink_steps: args.shrink_steps,
        run_id: rec.context().run_id.clone(),
        csv: rec.csv_path().to_path_buf(),
        cgroup: session.has_cgroup(),
        pid_namespace: session.pid_namespace().label().into(),
        regressions: Regressions::of(&args.regressions, replayed),
        strategies: results,
        wall_s: start.elapsed().as_secs_f64(),
        interrupted: crate::session::interrupted(),
        interrupted_by: crate::session::interruption(),
    };
    drop(session);
    let json = crate::json::to_string_pretty(&summary).expect("a summary serializes");
    write_text(&run_dir.join("summary.json"), &json)?;
    Ok(summary)
}

/// The regressions, then each strategy's exploration and shrink.
fn explore_all(
    lab: &mut Lab<'_>,
    regressions: &[Written],
    run_dir: &Path,
) -> Result<(Vec<Replayed>, Vec<StrategyFuzz>), LabError> {
    let args = lab.args;
    let mut replayed = Vec::new();
    for strategy in &args.strategies {
        let refs: Vec<&Written> = regressions.iter().collect();
        let outcomes = lab.trials(strategy, &refs, args.repeat, &|i| format!("r{i}"))?;
        for (w, os) in regressions.iter().zip(outcomes) {
            if os.is_empty() {
                continue;
            }
            let failing = os.iter().find(|o| property::fails(o.verdict));
            replayed.push(Replayed {
                path: w.path.clone(),
                strategy: strategy.name.clone(),
                trials: os.len() as u64,
                still_failing: failing.is_some(),
                verdict: failing.or(os.first()).map_or(Verdict::Pass, |o| o.verdict),
                reason: failing.and_then(|o| o.reason.clone()),
                replay: lab.replay(w, strategy),
            });
        }
    }
    let mut results = Vec::new();
    if crate::session::interrupted() {
        return Ok((replayed, results));
    }
    // The cases, drawn and written once for every strategy.
    let cases_dir = run_dir.join("fuzz").join("cases");
    let mut cases = Vec::new();
    for i in 0..args.cases {
        if crate::session::interrupted() {
            break;
        }
        let tree = generate::case_tree(args.seed, i).map_err(LabError::Lab)?;
        let case = tree.current();
        if let Some(w) = write_case(&case, args.seed, &seed_header(args.seed), |h| {
            cases_dir.join(format!("case-{i}-{h}.toml"))
        })? {
            cases.push((i, w));
        }
    }
    for strategy in &args.strategies {
        results.push(explore(lab, strategy, &cases, run_dir)?);
        if crate::session::interrupted() {
            break;
        }
    }
    Ok((replayed, results))
}

/// Run every case of `cases` (index, file) once under `strategy`, group
/// the failing ones by [`FailureClass`](property::FailureClass) and shrink
/// the first case (lowest index) of each class within its class.
///
/// # Errors
/// As [`Lab::trials`] and [`shrink::shrink`].
fn explore(
    lab: &mut Lab<'_>,
    strategy: &Strategy,
    cases: &[(u64, Written)],
    run_dir: &Path,
) -> Result<StrategyFuzz, LabError> {
    let refs: Vec<&Written> = cases.iter().map(|(_, w)| w).collect();
    let outcomes = lab.trials(strategy, &refs, 1, &|c| format!("c{}", cases[c].0))?;
    let (mut ran, mut failing) = (0u64, 0u64);
    let mut verdicts = std::collections::BTreeMap::new();
    // Each class: its count and its first case (cases run in index order).
    let mut classes: Vec<(property::FailureClass, u64, u64, &Written, Outcome)> = Vec::new();
    for ((i, w), os) in cases.iter().zip(outcomes) {
        let Some(o) = os.into_iter().next() else {
            continue;
        };
        ran += 1;
        *verdicts.entry(o.verdict.name().to_string()).or_insert(0) += 1;
        let Some(class) = property::FailureClass::of(&o) else {
            continue;
        };
        failing += 1;
        match classes.iter_mut().find(|c| c.0 == class) {
            Some(c) => c.1 += 1,
            None => classes.push((class, 1, *i, w, o)),
        }
    }
    classes.sort_by_key(|c| c.2);
    let mut found = Vec::new();
    for (class, count, index, w, o) in classes {
        let shrunk = if crate::session::interrupted() {
            None
        } else {
            let start = shrink::FirstFailure {
                index,
                written: w,
                outcome: &o,
            };
            Some(shrink::shrink(lab, strategy, start, run_dir)?)
        };
        found.push(summary::ClassFound {
            class,
            failing_cases: count,
            first_case: index,
            found: shrunk,
        });
    }
    Ok(StrategyFuzz::new(strategy, ran, failing, verdicts, found))
}

/// The header comment of a written case: the seed of its plan.
pub fn seed_header(seed: u64) -> String {
    format!("{SEED_LINE}{seed}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_case_names_its_seed() {
        let text = format!("# x\n{}version = 1\n", seed_header(42));
        assert_eq!(seed_of(&text), Some(42));
        assert_eq!(seed_of("version = 1\n"), None);
        assert_eq!(hash8("a").len(), 8);
    }

    #[test]
    fn regressions_of_a_missing_directory_are_none_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_regressions(&dir.path().join("none"), 1)
            .unwrap()
            .is_empty());
        std::fs::write(dir.path().join("bad.toml"), "version = 2\n").unwrap();
        let e = load_regressions(dir.path(), 1).unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Input, "{e}");
        // A plan that can never run is refused as well, naming the file.
        let never = dir.path().join("never");
        std::fs::create_dir(&never).unwrap();
        std::fs::write(
            never.join("gate.toml"),
            "version = 1\nname = \"g\"\n[tree]\nbreadth = [2]\n[[kill]]\ntarget = \"root\"\n\
             signal = \"KILL\"\nat = \"gate:created\"\n[nodes.root]\nspawn_from_thread = true\n",
        )
        .unwrap();
        let e = load_regressions(&never, 1).unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Input, "{e}");
        assert!(e.to_string().contains("gate.toml: seed 1:"), "{e}");
        // A file given as the directory is bad input too.
        let e = load_regressions(&never.join("gate.toml"), 1).unwrap_err();
        assert_eq!(e.exit(), crate::error::Exit::Input, "{e}");
    }
}
