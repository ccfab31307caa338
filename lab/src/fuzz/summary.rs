//! What `lab fuzz` reports: the [`FuzzSummary`] (its JSON is `--format
//! json` and `RUN/summary.json`), its text, and its JUnit/CTRF test cases
//! (one per strategy).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::property::FailureClass;
use crate::forensics::Signature;
use crate::report::{verdict_counts, Failure, TestCase, TestOutcome, TestReport};
use crate::stats::Rate;
use crate::strategy::Strategy;
use crate::verdict::Verdict;

/// A fuzz run.
#[serde_with::serde_as]
#[derive(Clone, Debug, Serialize)]
pub struct FuzzSummary {
    /// The seed of the cases and their plans (a string in JSON).
    #[serde_as(as = "serde_with::DisplayFromStr")]
    pub seed: u64,
    /// Cases asked for, per strategy.
    pub cases: u64,
    /// Trials of each shrink step and regression replay (`--repeat`).
    pub repeat: u64,
    /// Shrink steps at most per failure class (`--shrink-steps`).
    pub shrink_steps: u64,
    /// The run id (names the results directory).
    pub run_id: String,
    /// The CSV of every trial.
    pub csv: PathBuf,
    /// Whether trials ran in cgroups of their own.
    pub cgroup: bool,
    /// The supervisors' PID namespace: `pid`, `pid+user` or `none`.
    pub pid_namespace: String,
    /// The regressions replayed first.
    pub regressions: Regressions,
    /// One entry per strategy, in the order asked.
    pub strategies: Vec<StrategyFuzz>,
    /// Wall time of the run (s).
    pub wall_s: f64,
    /// Whether a Ctrl-C (SIGINT) or a SIGTERM cut the run short.
    pub interrupted: bool,
    /// The signal that cut it short (`INT`, `TERM`); absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<crate::signal::Sig>,
}

/// The regressions replayed before the exploration.
#[derive(Clone, Debug, Serialize)]
pub struct Regressions {
    /// The directory they were read from (and minimal cases are copied to).
    pub dir: PathBuf,
    /// Replays (file x strategy) run.
    pub replayed: u64,
    /// Replays that still failed.
    pub still_failing: u64,
    /// Each replay.
    pub files: Vec<Replayed>,
}

impl Regressions {
    /// The regressions of `dir`, from its `replays`.
    pub fn of(dir: &Path, replays: Vec<Replayed>) -> Regressions {
        Regressions {
            dir: dir.to_path_buf(),
            replayed: replays.len() as u64,
            still_failing: replays.iter().filter(|r| r.still_failing).count() as u64,
            files: replays,
        }
    }
}

/// One regression file replayed under one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct Replayed {
    /// The file.
    pub path: PathBuf,
    /// The strategy.
    pub strategy: String,
    /// Trials run.
    pub trials: u64,
    /// Whether a trial failed the property.
    pub still_failing: bool,
    /// The first failing verdict, else the first trial's (`pass` or
    /// `panic`).
    pub verdict: Verdict,
    /// Its reason.
    pub reason: Option<String>,
    /// The command that replays it.
    pub replay: String,
}

/// The exploration under one strategy.
#[derive(Clone, Debug, Serialize)]
pub struct StrategyFuzz {
    /// The strategy.
    pub strategy: String,
    /// Cases run (one trial each).
    pub cases_run: u64,
    /// Cases whose trial failed the property.
    pub failing_cases: u64,
    /// `failing_cases / cases_run` with its 95% Wilson interval.
    pub failing: Rate,
    /// The cases' verdicts, counted (keys snake_case).
    #[serde(serialize_with = "crate::json::verdict_keys")]
    pub verdicts: BTreeMap<String, u64>,
    /// The first failing case, shrunk (the shrink of the first of
    /// `classes`); `None` when no case failed.
    pub found: Option<MinimalCase>,
    /// Each failure class found (verdict x signatures), in the order of
    /// its first case; their `failing_cases` add up to the strategy's.
    pub classes: Vec<ClassFound>,
}

impl StrategyFuzz {
    /// The summary of `strategy`'s exploration, from its failure `classes`
    /// (ordered by first case).
    pub fn new(
        strategy: &Strategy,
        cases_run: u64,
        failing_cases: u64,
        verdicts: BTreeMap<String, u64>,
        classes: Vec<ClassFound>,
    ) -> StrategyFuzz {
        StrategyFuzz {
            strategy: strategy.name.clone(),
            cases_run,
            failing_cases,
            failing: Rate::wilson(failing_cases, cases_run),
            verdicts,
            found: classes.first().and_then(|c| c.found.clone()),
            classes,
        }
    }
}

/// One failure class of a strategy's exploration: its verdict and
/// signature set (JSON keys `verdict` and `signatures`), how many cases
/// fell in it, and its first case shrunk within the class.
#[derive(Clone, Debug, Serialize)]
pub struct ClassFound {
    /// The class.
    #[serde(flatten)]
    pub class: FailureClass,
    /// Cases of the exploration whose trial fell in it.
    pub failing_cases: u64,
    /// The first of them (lowest index), the one shrunk.
    pub first_case: u64,
    /// Its shrink, which kept the class; `None` when a Ctrl-C came before
    /// it.
    pub found: Option<MinimalCase>,
}

/// The first failing case of a failure class and the smallest case its
/// shrink reached that fails the same way.
#[derive(Clone, Debug, Serialize)]
pub struct MinimalCase {
    /// Its index among the run's cases.
    pub case: u64,
    /// The verdict of the first failing trial of the minimal case (its
    /// class's).
    pub verdict: Verdict,
    /// The signatures of the class kept, the first case's and the minimal
    /// case's.
    pub signatures: Vec<Signature>,
    /// Its reason.
    pub reason: String,
    /// The verdict of the case as first found.
    pub first_verdict: Verdict,
    /// The case as first found (`RUN/fuzz/first-STRATEGY-HASH.toml`).
    pub first: PathBuf,
    /// The minimal case (`RUN/fuzz/minimal-STRATEGY-HASH.toml`).
    pub minimal: PathBuf,
    /// Its copy in the regressions directory.
    pub regression: PathBuf,
    /// Nodes of the case as first found.
    pub nodes_before: u64,
    /// Nodes of the minimal case.
    pub nodes_after: u64,
    /// Shrink steps taken (candidates run).
    pub shrink_steps: u64,
    /// Steps whose candidate failed the same way and was kept.
    pub accepted_steps: u64,
    /// Steps whose candidate failed, but only in another class, and so
    /// was not kept.
    pub failing_otherwise: u64,
    /// Trials per step (`--repeat`).
    pub trials_per_step: u64,
    /// The command that replays the minimal case.
    pub replay: String,
}

impl FuzzSummary {
    /// Whether some case failed: a strategy's, or a regression that still
    /// fails.
    pub fn found_failing(&self) -> bool {
        self.regressions.still_failing > 0 || self.strategies.iter().any(|s| s.failing_cases > 0)
    }

    /// The exit status: 128 + the signal after an interruption (130 after
    /// Ctrl-C, 143 after SIGTERM), 1 when a case failed, else 0.
    pub fn exit(&self) -> crate::error::Exit {
        if let Some(sig) = self.interrupted_by {
            crate::error::Exit::Interrupted(sig)
        } else {
            crate::error::Exit::clean_if(!self.found_failing())
        }
    }

    /// The text summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let r = &self.regressions;
        let _ = writeln!(
            s,
            "regressions replayed: {}, still failing: {}  ({})",
            r.replayed,
            r.still_failing,
            r.dir.display()
        );
        for f in r.files.iter().filter(|f| f.still_failing) {
            let _ = writeln!(
                s,
                "  {} under {}: {}\n    replay: {}",
                f.path.display(),
                f.strategy,
                f.verdict,
                f.replay
            );
        }
        for st in &self.strategies {
            let _ = writeln!(
                s,
                "\n{}: {} run, failing {}",
                st.strategy,
                crate::text::plural(st.cases_run, "case"),
                st.failing.render()
            );
            let counts: Vec<String> = st
                .verdicts
                .iter()
                .map(|(v, n)| format!("{v} {n}"))
                .collect();
            let _ = writeln!(s, "  verdicts: {}", counts.join(", "));
            if !st.classes.is_empty() {
                let _ = writeln!(
                    s,
                    "  failure classes (verdict x signatures): {}; the first case of each \
                     shrunk within its class",
                    st.classes.len()
                );
            }
            for c in &st.classes {
                render_class(&mut s, c);
            }
        }
        let _ = writeln!(
            s,
            "\nresults: {}  ({:.1} s{})",
            self.csv.display(),
            self.wall_s,
            if self.interrupted {
                ", interrupted: partial"
            } else {
                ""
            }
        );
        s
    }

    /// The failure classes of `strategy` as lines of a test failure.
    fn class_lines(st: &StrategyFuzz) -> Vec<String> {
        let mut lines = Vec::new();
        for c in &st.classes {
            let Some(f) = &c.found else {
                lines.push(format!(
                    "class {}: {}, not shrunk",
                    c.class,
                    crate::text::plural(c.failing_cases, "case")
                ));
                continue;
            };
            lines.push(format!(
                "class {}: {}; minimal case ({} -> {} nodes, {}): {}",
                c.class,
                crate::text::plural(c.failing_cases, "case"),
                f.nodes_before,
                f.nodes_after,
                f.verdict,
                f.minimal.display()
            ));
            lines.push(format!("replay: {}", f.replay));
        }
        lines
    }

    /// The test report of the fuzz (`lab fuzz`): one test case per
    /// strategy, failing when one of its cases, or of its regression
    /// replays, failed.
    pub fn test_report(&self) -> TestReport {
        let per_strategy = self.wall_s / self.strategies.len().max(1) as f64;
        let cases = self
            .strategies
            .iter()
            .map(|st| {
                let stale: Vec<&Replayed> = self
                    .regressions
                    .files
                    .iter()
                    .filter(|r| r.strategy == st.strategy && r.still_failing)
                    .collect();
                let counts = verdict_counts(st.verdicts.iter().map(|(v, n)| (v.as_str(), *n)));
                let failure = (st.failing_cases > 0 || !stale.is_empty()).then(|| {
                    let mut lines = vec![format!(
                        "failing cases: {} ({counts}); regressions still failing: {}",
                        st.failing.render(),
                        stale.len()
                    )];
                    lines.extend(Self::class_lines(st));
                    for r in &stale {
                        lines.push(format!(
                            "regression {} ({}): {}",
                            r.path.display(),
                            r.verdict,
                            r.replay
                        ));
                    }
                    Failure {
                        message: lines.join("; "),
                        details: lines.join("\n") + "\n",
                        kind: "failing cases",
                    }
                });
                TestCase {
                    suite: "lab fuzz".into(),
                    name: st.strategy.clone(),
                    classname: "fuzz".into(),
                    time: Duration::from_secs_f64(per_strategy.max(0.0)),
                    counts,
                    outcome: failure.map_or(TestOutcome::Passed, TestOutcome::Failed),
                }
            })
            .collect();
        TestReport {
            name: "lab fuzz".to_string(),
            cases,
        }
    }
}

/// Append to `s` the text of one failure class: its count, its first case
/// and the minimal case its shrink reached, with the files and the replay
/// command.
fn render_class(s: &mut String, c: &ClassFound) {
    let _ = write!(
        s,
        "  {}: {}, first case {}",
        c.class,
        crate::text::plural(c.failing_cases, "case"),
        c.first_case
    );
    let Some(f) = &c.found else {
        let _ = writeln!(s, ", not shrunk (interrupted)");
        return;
    };
    let otherwise = if f.failing_otherwise > 0 {
        format!(", {} failing another way not kept", f.failing_otherwise)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        " ({} nodes)\n    \
         shrunk: {} -> {} nodes in {} steps ({} kept{otherwise}, {} trials each)\n    \
         minimal: {}: {}\n    \
         minimal file: {}\n    \
         first file:   {}\n    \
         regression:   {}\n    \
         replay: {}",
        f.nodes_before,
        f.nodes_before,
        f.nodes_after,
        f.shrink_steps,
        f.accepted_steps,
        f.trials_per_step,
        f.verdict,
        crate::text::bounded(&f.reason, 300),
        f.minimal.display(),
        f.first.display(),
        f.regression.display(),
        f.replay
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(failing: u64, stale: bool, interrupted: bool) -> FuzzSummary {
        let strategy = Strategy::parse("legacy").unwrap();
        let replay = Replayed {
            path: "reg/minimal-legacy-1.toml".into(),
            strategy: "legacy".into(),
            trials: 3,
            still_failing: stale,
            verdict: if stale {
                Verdict::Orphan
            } else {
                Verdict::Pass
            },
            reason: None,
            replay: "lab run reg/minimal-legacy-1.toml --seed 1 --strategy legacy --trials 1"
                .into(),
        };
        let minimal = |case: u64, verdict: Verdict, signatures: Vec<Signature>, hash: &str| {
            MinimalCase {
                case,
                verdict,
                signatures,
                reason: "alive".into(),
                first_verdict: verdict,
                first: format!("r/fuzz/first-legacy-{case}.toml").into(),
                minimal: format!("r/fuzz/minimal-legacy-{hash}.toml").into(),
                regression: format!("reg/minimal-legacy-{hash}.toml").into(),
                nodes_before: 10,
                nodes_after: 1,
                shrink_steps: 40,
                accepted_steps: 36,
                failing_otherwise: 2,
                trials_per_step: 3,
                replay: format!(
                    "lab run r/fuzz/minimal-legacy-{hash}.toml --seed 1 --strategy legacy --trials 1"
                ),
            }
        };
        // Two classes: an orphan without signature (the first case), and a
        // hang with one, whose shrink was cut short.
        let mut classes = Vec::new();
        if failing > 0 {
            classes.push(ClassFound {
                class: FailureClass {
                    verdict: Verdict::Orphan,
                    signatures: Default::default(),
                },
                failing_cases: failing - 1,
                first_case: 1,
                found: Some(minimal(1, Verdict::Orphan, vec![], "2")),
            });
            let hang = vec![Signature::LoneFutexWaiter];
            classes.push(ClassFound {
                class: FailureClass {
                    verdict: Verdict::Hang,
                    signatures: hang.iter().copied().collect(),
                },
                failing_cases: 1,
                first_case: 5,
                found: (!interrupted).then(|| minimal(5, Verdict::Hang, hang, "3")),
            });
        }
        let verdicts = BTreeMap::from([
            ("orphan".to_string(), failing.saturating_sub(1)),
            ("hang".to_string(), failing.min(1)),
            ("pass".into(), 12 - failing),
        ]);
        FuzzSummary {
            seed: 1,
            cases: 12,
            repeat: 3,
            shrink_steps: 40,
            run_id: "x".into(),
            csv: "r/trials.csv".into(),
            cgroup: true,
            pid_namespace: "pid".into(),
            regressions: Regressions::of(Path::new("reg"), vec![replay]),
            strategies: vec![StrategyFuzz::new(&strategy, 12, failing, verdicts, classes)],
            wall_s: 2.0,
            interrupted,
            interrupted_by: interrupted.then_some(crate::signal::Sig::Int),
        }
    }

    #[test]
    fn the_exit_status_and_the_test_case_follow_the_failing_cases_and_regressions() {
        use crate::error::Exit;
        assert_eq!(summary(0, false, false).exit(), Exit::Clean);
        assert_eq!(summary(2, false, false).exit(), Exit::Found);
        assert_eq!(summary(0, true, false).exit(), Exit::Found);
        assert_eq!(
            summary(2, false, true).exit(),
            Exit::Interrupted(crate::signal::Sig::Int)
        );
        assert!(summary(0, false, false).test_report().cases[0]
            .failure()
            .is_none());
        let cases = summary(2, true, false).test_report().cases;
        let f = cases[0].failure().unwrap();
        for part in [
            "2/12",
            "class orphan: 1 case; minimal case (10 -> 1 nodes, orphan): r/fuzz/minimal-legacy-2.toml",
            "class hang (lone-futex-waiter): 1 case; minimal case (10 -> 1 nodes, hang): \
             r/fuzz/minimal-legacy-3.toml",
            "lab run r/fuzz/minimal-legacy-3.toml --seed 1 --strategy legacy",
            "reg/minimal-legacy-1.toml",
        ] {
            assert!(f.message.contains(part), "{part}: {}", f.message);
        }
        assert_eq!(cases[0].time, Duration::from_secs(2));
        let text = summary(0, false, false).render();
        assert!(
            text.contains("regressions replayed: 1, still failing: 0"),
            "{text}"
        );
        assert!(
            text.contains("failing 0/12 (95% upper bound 24.2%)"),
            "{text}"
        );
        assert!(!text.contains("failure classes"), "{text}");
    }

    #[test]
    fn each_failure_class_is_listed_with_its_count_minimal_file_and_replay() {
        let s = summary(4, false, false);
        assert_eq!(
            s.strategies[0].found.as_ref().map(|f| f.case),
            Some(1),
            "`found` is the first class's shrink"
        );
        let text = s.render();
        for part in [
            "failure classes (verdict x signatures): 2;",
            "  orphan: 3 cases, first case 1 (10 nodes)\n    shrunk: 10 -> 1 nodes in 40 steps \
             (36 kept, 2 failing another way not kept, 3 trials each)",
            "    minimal file: r/fuzz/minimal-legacy-2.toml\n",
            "  hang (lone-futex-waiter): 1 case, first case 5 (10 nodes)",
            "    minimal: hang: alive\n",
            "    replay: lab run r/fuzz/minimal-legacy-3.toml --seed 1 --strategy legacy --trials 1\n",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&crate::json::to_string_pretty(&s).unwrap()).unwrap();
        let classes = &json["strategies"][0]["classes"];
        assert_eq!(classes[1]["verdict"], "hang");
        assert_eq!(classes[1]["signatures"][0], "lone-futex-waiter");
        assert_eq!(classes[1]["failing_cases"], 1);
        assert_eq!(classes[1]["found"]["signatures"][0], "lone-futex-waiter");
        assert_eq!(classes[0]["signatures"].as_array().map(Vec::len), Some(0));
        // A class whose shrink a Ctrl-C cut short is still listed.
        let text = summary(4, false, true).render();
        assert!(
            text.contains(
                "  hang (lone-futex-waiter): 1 case, first case 5, not shrunk (interrupted)\n"
            ),
            "{text}"
        );
    }
}
