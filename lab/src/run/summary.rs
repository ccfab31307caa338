//! What `lab run` reports: per strategy the counts, rates (95% Wilson
//! intervals), times (µs), reasons, first diagnosis and replay commands
//! ([`StrategySummary`]), and the whole run ([`RunSummary`], what
//! `--format json` prints and `summary.json` holds).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cgroup;
use crate::expect::{Comparison, Expect};
use crate::forensics::Diagnosis;
use crate::record::{ab, Tally};
use crate::report::{verdict_counts, TestCase, TestReport};
use crate::stats::Rate;
use crate::strategy::Strategy;
use crate::verdict::Timings;
use crate::verdict::{Outcome, Verdict};

/// One failing verdict of one strategy and how to replay it.
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// The verdict.
    pub verdict: Verdict,
    /// The trials that had it.
    pub trials: Vec<u64>,
    /// The command that replays one such trial.
    pub command: String,
}

/// The results of one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct StrategySummary {
    /// Strategy name.
    pub strategy: String,
    /// Trials run.
    pub trials: u64,
    /// Trials with verdict `pass`.
    pub pass: u64,
    /// ... `orphan`.
    pub orphan: u64,
    /// ... `hang`.
    pub hang: u64,
    /// ... `panic`.
    pub panic: u64,
    /// ... `leak`.
    pub leak: u64,
    /// ... `fail`.
    pub fail: u64,
    /// ... `early-death`.
    pub early_death: u64,
    /// ... `innocent-kill`.
    pub innocent_kill: u64,
    /// ... `error`.
    pub error: u64,
    /// The most frequent verdict and how many trials had it: the
    /// reproduction rate of a replayed plan (`--repeat K`).
    pub reproduction: Reproduction,
    /// The distinct survivor sets its trials left (`Outcome::survivors`,
    /// node paths, sorted), most frequent first: one for a plan that
    /// reproduces down to its survivors (`--repeat K`).
    pub survivor_sets: Vec<SurvivorSet>,
    /// Trials in which the `/proc` oracle saw at least one false orphan.
    pub trials_with_false_orphans: u64,
    /// False orphans of the `/proc` oracle over all trials.
    pub false_orphans_total: u64,
    /// Trials, of any verdict (`pass` included), in which a descendant of
    /// the program at the root failed on its own
    /// ([`Outcome::descendant_failures`]).
    pub trials_with_descendant_failures: u64,
    /// Each distinct descendant failure (``sh -c exit 2` exited with
    /// status 2`) with the number of trials in which it happened.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub descendant_failures: BTreeMap<String, u64>,
    /// Each verdict's rate with its 95% Wilson interval.
    #[serde(serialize_with = "crate::json::verdict_keys")]
    pub rates: BTreeMap<String, Rate>,
    /// Median time from a trial's start to its verdict (µs).
    pub median_verdict_us: u64,
    /// Where a trial's time goes: the mean of each phase (µs; means, so
    /// that they add up to the mean duration).
    pub mean_phases_us: Timings,
    /// Trials per second of wall time.
    pub trials_per_s: f64,
    /// Orphans counted over all trials.
    pub orphans_total: u64,
    /// How to replay each failing verdict.
    pub replay: Vec<Replay>,
    /// Distinct reasons of failing trials (every verdict but pass), with
    /// counts, by verdict. PIDs and pipe inodes, which differ in every
    /// trial, are written `pid N` and `pipe:[N]` here (the CSV keeps them).
    #[serde(serialize_with = "crate::json::named_counts_by_verdict")]
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// For each signature named in some trial, the number of trials that
    /// named it.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub signatures: BTreeMap<String, u64>,
    /// The distinct reasons of `panic` verdicts, with their counts (PIDs and
    /// pipe inodes written `N`, as in `reasons`).
    #[serde(serialize_with = "crate::json::named_counts")]
    pub panic_reasons: BTreeMap<String, u64>,
    /// The guards' sites in the lab's source (`file:line`) of `panic`
    /// verdicts, with their counts.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub panic_sites: BTreeMap<String, u64>,
    /// The diagnosis of the first diagnosed trial (hang first, else orphan).
    pub diagnosis: Option<FirstDiagnosis>,
    /// The last lines a program run as the root (`lab exec`) wrote in the
    /// first trial that did not pass.
    pub output: Option<FirstOutput>,
    /// Diagnoses of hangs and orphans left unwritten: beyond
    /// `--max-diagnoses` (their rows are in the CSV, with an empty
    /// diagnosis path).
    pub diagnoses_unwritten: u64,
    /// The command that replays its trials (the JUnit failure's).
    #[serde(skip)]
    pub replay_command: String,
    /// Whether it gave only the verdicts its expectation allows: the
    /// scenario's `[expect]` entry for it, or every trial `pass` when the
    /// scenario names none.
    pub expectation: Comparison,
}

/// The first diagnosis of a strategy, as the summary carries it.
#[derive(Clone, Debug, Serialize)]
pub struct FirstDiagnosis {
    /// The trial's index.
    pub trial: u64,
    /// Where its JSON was written (the text sits beside it, `.txt`).
    pub path: PathBuf,
    /// The diagnosis.
    #[serde(flatten)]
    pub diagnosis: Diagnosis,
}

/// The last lines a program wrote in the first trial that did not pass.
#[derive(Clone, Debug, Serialize)]
pub struct FirstOutput {
    /// The trial's index.
    pub trial: u64,
    /// Its verdict.
    pub verdict: Verdict,
    /// `stderr`, or `stdout` when its stderr was empty.
    pub stream: &'static str,
    /// Its last lines (at most [`super::OUTPUT_LINES`]).
    pub tail: String,
}

/// How often a replayed plan gave its most frequent verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Reproduction {
    /// The most frequent verdict.
    pub verdict: Verdict,
    /// Trials with it.
    pub trials: u64,
    /// Trials run.
    pub of: u64,
    /// Its rate with the 95% Wilson interval.
    pub rate: Rate,
}

/// One set of survivors and how many trials left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SurvivorSet {
    /// Node paths of the survivors (orphans, or the blocked of a hang),
    /// sorted; empty when nothing survived.
    pub survivors: Vec<String>,
    /// Trials that left exactly this set.
    pub trials: u64,
}

/// The distinct survivor sets of `outcomes`, most frequent first (then in
/// the order of the sets).
pub(super) fn survivor_sets<'a>(
    outcomes: impl IntoIterator<Item = &'a Outcome>,
) -> Vec<SurvivorSet> {
    let mut count: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for o in outcomes {
        let mut set = o.survivors.clone();
        set.sort();
        *count.entry(set).or_default() += 1;
    }
    let mut sets: Vec<SurvivorSet> = count
        .into_iter()
        .map(|(survivors, trials)| SurvivorSet { survivors, trials })
        .collect();
    sets.sort_by_key(|s| std::cmp::Reverse(s.trials));
    sets
}

/// The text line of `sets`: `survivor sets: 1 (every trial left 0.0 0.0.0)`,
/// or their number and where the variation comes from: the plan, or,
/// with a `program` at the root (`lab exec`), whose plan fixes nothing of
/// what the program starts, the program's own timing.
pub(super) fn render_survivor_sets(sets: &[SurvivorSet], program: bool) -> String {
    match sets {
        [] => "survivor sets: 0".to_string(),
        [one] if one.survivors.is_empty() => "survivor sets: 1 (every trial left none)".to_string(),
        [one] => format!(
            "survivor sets: 1 (every trial left {})",
            one.survivors.join(" ")
        ),
        many => {
            let each: Vec<String> = many
                .iter()
                .map(|s| {
                    let set = if s.survivors.is_empty() {
                        "none".to_string()
                    } else {
                        s.survivors.join(" ")
                    };
                    format!("{set} x{}", s.trials)
                })
                .collect();
            let why = if program {
                "the program left different processes from trial to trial: its own timing \
                 (start-up and scheduling jitter) decides, which the lab's plan does not fix"
            } else {
                "the plan is nondeterministic"
            };
            format!("survivor sets: {}: {why} ({})", many.len(), each.join("; "))
        }
    }
}

/// The summary of a run (what `--format json` prints).
#[serde_with::serde_as]
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The command that ran it (`lab run`, `lab exec`), for the text.
    #[serde(skip)]
    pub command: &'static str,
    /// Scenario name.
    pub scenario: String,
    /// What the scenario is about (its `about`, whitespace folded).
    pub about: String,
    /// Hash of the scenario file.
    pub scenario_hash: String,
    /// The seed.
    #[serde_as(as = "serde_with::PickFirst<(serde_with::DisplayFromStr, _)>")]
    pub seed: u64,
    /// Hash of the plan.
    pub plan_hash: String,
    /// Run id (names the results directory).
    pub run_id: String,
    /// One entry per strategy, in the order asked.
    pub results: Vec<StrategySummary>,
    /// Whether trials ran in cgroups of their own (else: subreaper alone).
    pub cgroup: bool,
    /// Why not, when `cgroup` is false.
    pub cgroup_note: Option<String>,
    /// The supervisors' PID namespace, as in the CSV: `pid`, `pid+user` or
    /// `none`.
    pub pid_namespace: String,
    /// The same for the header: `pid namespace`, or `no pid namespace
    /// (why)`.
    pub pid_namespace_note: String,
    /// The CSV written.
    pub csv: PathBuf,
    /// Kernel release.
    pub kernel: String,
    /// Lab version.
    pub lab_version: String,
    /// Whether every strategy met its expectation (exit status 0; see each
    /// result's `expectation`).
    pub as_expected: bool,
    /// Diagnoses written per strategy at most (`--max-diagnoses`).
    pub max_diagnoses: u64,
    /// Whether the root of each trial is a program (`lab exec`, or a
    /// scenario with a `command` at its root): what it starts is its own
    /// doing, not the plan's.
    pub program_root: bool,
    /// A Ctrl-C (SIGINT) or a SIGTERM stopped the run: the results are
    /// those of the trials done (a strategy that ran none is left out).
    pub interrupted: bool,
    /// The signal that stopped it (`INT`, `TERM`); absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<crate::signal::Sig>,
    /// How the plan's timed kills took their moments, when it has one
    /// (`moments drawn once per plan ...` or `... per trial ...`):
    /// [`crate::run::kill_moments_note`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_moments: Option<String>,
}

impl RunSummary {
    /// The exit status: 128 + the signal when interrupted (130 after
    /// Ctrl-C, 143 after SIGTERM), else 0 when every strategy met its
    /// expectation, else 1.
    pub fn exit(&self) -> crate::error::Exit {
        if let Some(sig) = self.interrupted_by {
            return crate::error::Exit::Interrupted(sig);
        }
        crate::error::Exit::of_expectations(self.results.iter().map(|r| &r.expectation))
    }

    /// The summary as text: the header, the scenario's `about`, one A/B
    /// table (strategies as columns, the verdicts seen and `pass` as rows),
    /// each strategy's expectation, then for each strategy that failed or
    /// has something to say a plain-words sentence per verdict, its
    /// reproduction, survivor sets, reasons, first diagnosis and replay
    /// commands.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mode = cgroup::mode_label(self.cgroup, self.cgroup_note.as_deref());
        let _ = writeln!(
            s,
            "{} {}  seed {}  plan {}  kernel {}  mode {}, {}",
            self.command,
            self.scenario,
            self.seed,
            self.plan_hash,
            self.kernel,
            mode,
            self.pid_namespace_note
        );
        if self.pid_namespace == "none" {
            let _ = writeln!(s, "{}", crate::pidns::FALLBACK_WARNING);
        }
        if !self.about.is_empty() {
            s.push_str(&ab::about_lines(&self.about, 0));
        }
        if let Some(note) = &self.kill_moments {
            let _ = writeln!(s, "{note}");
        }
        if let Some(sig) = self.interrupted_by {
            let done: u64 = self.results.iter().map(|r| r.trials).sum();
            let _ = writeln!(
                s,
                "interrupted ({}): the partial summary of the {} done",
                crate::error::Exit::interruption_name(sig),
                crate::text::plural(done, "trial")
            );
        }
        let columns: Vec<ab::Column<'_>> = self
            .results
            .iter()
            .map(|r| ab::Column {
                strategy: &r.strategy,
                trials: r.trials,
                rates: &r.rates,
                median_verdict_us: r.median_verdict_us,
            })
            .collect();
        let per_s = self
            .results
            .iter()
            .map(|r| format!("{:.1}", r.trials_per_s))
            .collect();
        s.push('\n');
        s.push_str(&ab::render(0, &columns, &[("trials/s", per_s)]));
        s.push('\n');
        for r in &self.results {
            let _ = writeln!(s, "{}: expectation: {}", r.strategy, r.expectation.render());
        }
        for r in &self.results {
            self.render_details(&mut s, r);
        }
        let unexpected: Vec<&str> = self
            .results
            .iter()
            .filter(|r| !r.expectation.met())
            .map(|r| r.strategy.as_str())
            .collect();
        if unexpected.is_empty() {
            let _ = writeln!(s, "\nevery strategy as expected");
        } else {
            let _ = writeln!(s, "\nUNEXPECTED under {}", unexpected.join(", "));
        }
        let _ = writeln!(s, "trials: {}", self.csv.display());
        s
    }

    /// The block of `r` below the table, when it has something to say: a
    /// verdict other than pass, false orphans of the `/proc` oracle, or a
    /// replayed plan (`--repeat`) whose reproduction matters.
    fn render_details(&self, s: &mut String, r: &StrategySummary) {
        let sentences = ab::sentences(&r.strategy, r.trials, &r.rates, &r.reasons, &r.signatures);
        if sentences.is_empty()
            && r.trials_with_false_orphans == 0
            && r.survivor_sets.len() < 2
            && r.trials_with_descendant_failures == 0
        {
            return;
        }
        s.push('\n');
        if sentences.is_empty() {
            let _ = writeln!(s, "{}:", r.strategy);
        }
        for line in &sentences {
            let _ = writeln!(s, "{line}");
        }
        let rp = &r.reproduction;
        let _ = writeln!(s, "  reproduced {}: {}", rp.verdict, rp.rate.render());
        let _ = writeln!(
            s,
            "  {}",
            render_survivor_sets(&r.survivor_sets, self.program_root)
        );
        if r.trials_with_false_orphans > 0 {
            let _ = writeln!(
                s,
                "  /proc oracle: {} in {} ({})",
                crate::text::plural(r.false_orphans_total, "false orphan"),
                crate::text::plural(r.trials_with_false_orphans, "trial"),
                Rate::wilson(r.trials_with_false_orphans, r.trials).render()
            );
        }
        if r.trials_with_descendant_failures > 0 {
            let each: Vec<String> = r
                .descendant_failures
                .iter()
                .map(|(f, n)| format!("{f} x{n}"))
                .collect();
            let _ = writeln!(
                s,
                "  descendants failed: in {} of {} ({}): {}",
                r.trials_with_descendant_failures,
                crate::text::plural(r.trials, "trial"),
                Rate::wilson(r.trials_with_descendant_failures, r.trials).render(),
                each.join("; ")
            );
        }
        for (verdict, reasons) in &r.reasons {
            for (reason, n) in reasons {
                let first = reason.lines().next().unwrap_or("");
                let _ = writeln!(s, "  {verdict} x{n}: {first}");
            }
        }
        if let Some(d) = &r.diagnosis {
            let _ = writeln!(
                s,
                "  first {} (trial {}):",
                d.diagnosis.subject.verdict, d.trial
            );
            for line in d.diagnosis.summary().lines() {
                let _ = writeln!(s, "    {line}");
            }
            let _ = writeln!(
                s,
                "    full diagnosis: {}",
                d.path.with_extension("txt").display()
            );
        }
        if let Some(o) = &r.output {
            let _ = writeln!(
                s,
                "\n  {} of trial {} ({}), last lines:",
                o.stream, o.trial, o.verdict
            );
            for line in o.tail.lines() {
                let _ = writeln!(s, "    | {line}");
            }
        }
        for rp in &r.replay {
            let _ = writeln!(
                s,
                "  replay {} ({}): {}",
                rp.verdict,
                crate::text::plural(rp.trials.len() as u64, "trial"),
                rp.command
            );
        }
        if r.diagnoses_unwritten > 0 {
            let _ = writeln!(
                s,
                "  diagnoses: {} not written (--max-diagnoses {}; every trial is in the CSV)",
                r.diagnoses_unwritten, self.max_diagnoses
            );
        }
    }
}

/// The summary of `strategy` from its trials' `outcomes` (by index), the
/// tally of their rows (one group), the wall time and the replay command,
/// judged against the scenario's `expect`.
pub(super) fn summarize(
    strategy: &Strategy,
    outcomes: &[(u64, Outcome)],
    tally: &Tally,
    wall: Duration,
    replay: &str,
    expect: Option<&Expect>,
) -> StrategySummary {
    let n = outcomes.len() as u64;
    // The rates, times, reasons and signatures are the soak's tally of this
    // strategy's rows (one group: one scenario, one strategy).
    let g = tally.summaries().pop().expect("a strategy with trials");
    let count = |v: Verdict| g.rates[v.name()].count;
    let replays = Verdict::ALL
        .iter()
        .filter(|&&v| v != Verdict::Pass)
        .filter_map(|&v| {
            let mut trials: Vec<u64> = outcomes
                .iter()
                .filter(|(_, o)| o.verdict == v)
                .map(|(i, _)| *i)
                .collect();
            trials.sort_unstable();
            (!trials.is_empty()).then(|| Replay {
                verdict: v,
                trials,
                command: replay.to_string(),
            })
        })
        .collect();
    let modal = Verdict::ALL
        .iter()
        .copied()
        .max_by_key(|&v| (count(v), std::cmp::Reverse(v)))
        .unwrap_or(Verdict::Pass);
    let expectation = crate::expect::compare(
        strategy,
        expect,
        &[],
        Some(crate::expect::RUN_DEFAULT),
        count,
    );
    StrategySummary {
        expectation,
        strategy: strategy.name.clone(),
        trials: n,
        pass: count(Verdict::Pass),
        orphan: count(Verdict::Orphan),
        hang: count(Verdict::Hang),
        panic: count(Verdict::Panic),
        leak: count(Verdict::Leak),
        fail: count(Verdict::Fail),
        early_death: count(Verdict::EarlyDeath),
        innocent_kill: count(Verdict::InnocentKill),
        error: count(Verdict::Error),
        reproduction: Reproduction {
            verdict: modal,
            trials: count(modal),
            of: n,
            rate: Rate::wilson(count(modal), n),
        },
        survivor_sets: survivor_sets(outcomes.iter().map(|(_, o)| o)),
        trials_with_false_orphans: outcomes.iter().filter(|(_, o)| o.false_orphans > 0).count()
            as u64,
        false_orphans_total: outcomes.iter().map(|(_, o)| o.false_orphans as u64).sum(),
        trials_with_descendant_failures: outcomes
            .iter()
            .filter(|(_, o)| !o.descendant_failures.is_empty())
            .count() as u64,
        descendant_failures: outcomes
            .iter()
            .flat_map(|(_, o)| {
                let mut once: Vec<&String> = o.descendant_failures.iter().collect();
                once.sort();
                once.dedup();
                once
            })
            .fold(BTreeMap::new(), |mut m, f| {
                *m.entry(f.clone()).or_insert(0) += 1;
                m
            }),
        median_verdict_us: g.median_verdict_us,
        mean_phases_us: mean_phases(outcomes.iter().map(|(_, o)| o.timings)),
        trials_per_s: if wall.as_secs_f64() > 0.0 {
            n as f64 / wall.as_secs_f64()
        } else {
            0.0
        },
        orphans_total: outcomes.iter().map(|(_, o)| o.orphans as u64).sum(),
        replay: replays,
        panic_reasons: g
            .reasons
            .get(Verdict::Panic.name())
            .cloned()
            .unwrap_or_default(),
        rates: g.rates,
        reasons: g.reasons,
        signatures: g.signatures,
        panic_sites: g.panic_sites,
        diagnoses_unwritten: g.diagnoses_unwritten,
        replay_command: replay.to_string(),
        diagnosis: None,
        output: None,
    }
}

/// The mean of each phase over `phases` (µs; 0 for none).
fn mean_phases(phases: impl Iterator<Item = Timings>) -> Timings {
    let all: Vec<Timings> = phases.collect();
    let n = all.len().max(1) as u64;
    let m = |f: fn(&Timings) -> u64| all.iter().map(f).sum::<u64>() / n;
    Timings {
        setup_us: m(|p| p.setup_us),
        spawn_us: m(|p| p.spawn_us),
        build_us: m(|p| p.build_us),
        course_us: m(|p| p.course_us),
        cascade_us: m(|p| p.cascade_us),
        cleanup_us: m(|p| p.cleanup_us),
    }
}

impl RunSummary {
    /// The test report `name` (`lab run nested`, `lab exec`) of the run:
    /// one test case per strategy, in the suite of the scenario, failing
    /// when the strategy's expectation was not met.
    pub fn test_report(&self, name: &str) -> TestReport {
        let cases = self
            .results
            .iter()
            .map(|s| {
                let counts =
                    verdict_counts(s.rates.iter().map(|(v, rate)| (v.as_str(), rate.count)));
                let time = if s.trials_per_s > 0.0 {
                    Duration::from_secs_f64(s.trials as f64 / s.trials_per_s)
                } else {
                    Duration::ZERO
                };
                let replay = if s.expectation.met() {
                    Vec::new()
                } else {
                    vec![s.replay_command.clone()]
                };
                TestCase::cell(
                    &self.scenario,
                    &self.scenario,
                    &s.expectation,
                    counts,
                    time,
                    &replay,
                    s.diagnosis.as_ref().map(|d| d.path.as_path()),
                )
            })
            .collect();
        TestReport {
            name: name.to_string(),
            cases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left(paths: &[&str]) -> Outcome {
        let mut o = Outcome::error("unused".to_string(), 0);
        o.survivors = paths.iter().map(|p| p.to_string()).collect();
        o
    }

    #[test]
    fn survivor_sets_are_counted_in_any_order_most_frequent_first() {
        let outcomes = [
            left(&["0.0", "0.0.1"]),
            left(&["0.0.1", "0.0"]),
            left(&[]),
            left(&["0.0", "0.0.1"]),
        ];
        let sets = survivor_sets(&outcomes);
        assert_eq!(
            sets,
            vec![
                SurvivorSet {
                    survivors: vec!["0.0".into(), "0.0.1".into()],
                    trials: 3
                },
                SurvivorSet {
                    survivors: vec![],
                    trials: 1
                },
            ]
        );
        assert_eq!(
            render_survivor_sets(&sets, false),
            "survivor sets: 2: the plan is nondeterministic (0.0 0.0.1 x3; none x1)"
        );
        assert_eq!(
            render_survivor_sets(&sets, true),
            "survivor sets: 2: the program left different processes from trial to trial: its \
             own timing (start-up and scheduling jitter) decides, which the lab's plan does not \
             fix (0.0 0.0.1 x3; none x1)"
        );
        assert_eq!(
            render_survivor_sets(&sets[..1], true),
            "survivor sets: 1 (every trial left 0.0 0.0.1)"
        );
        assert_eq!(
            render_survivor_sets(&sets[1..], false),
            "survivor sets: 1 (every trial left none)"
        );
    }
}
