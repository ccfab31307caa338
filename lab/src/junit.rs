//! `--junit FILE`: what `lab run`, `lab soak` and `lab suite` found, as a
//! JUnit XML report (the [`quick_junit`] crate) that CI systems show as
//! tests.
//!
//! One test suite per scenario (at a swept value), one test case per
//! strategy in it: a *cell*. A cell that did not meet its expectation (the
//! judgement of [`crate::expect`], the same that makes the exit status 1:
//! [`crate::error::Exit::of_expectations`]) is a `<failure>` whose message
//! carries its verdict counts, the command that replays it and the path of
//! its first diagnosis; a cell with no expectation (a soak's strategy that
//! neither `[expect]` nor `--gate` names) passes, as it does not fail the
//! exit status either. For `lab suite`, one test suite per strategy and
//! one test case per member, failing when its verdict depends on the order.
//!
//! The file is written whole and renamed over the name
//! ([`crate::results::replace_file`]): never through a symlink, never half
//! written. Its directory is checked before anything runs
//! ([`check_target`]), so a bad path costs no soak.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::error::LabError;
use crate::expect::Comparison;

/// One test case: a scenario x strategy cell (or a suite's member).
#[derive(Clone, Debug)]
pub struct Case {
    /// The test suite it belongs to: the scenario (with its swept value),
    /// or for `lab suite` the suite and strategy.
    pub suite: String,
    /// The test case's name: the strategy (or the member).
    pub name: String,
    /// Its class name (the scenario, or the suite).
    pub classname: String,
    /// Time its trials took (wall).
    pub time: Duration,
    /// Its verdict counts as text (`orphan 5/5`), the test case's output.
    pub counts: String,
    /// Why it failed, when it did.
    pub failure: Option<Failure>,
}

/// Why a test case failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// One line: what was unexpected, the verdict counts, the replay
    /// command and the diagnosis' path.
    pub message: String,
    /// The same over several lines (the `<failure>` element's text).
    pub description: String,
    /// Its `type`: `unexpected verdicts`, or `order-dependent`.
    pub kind: &'static str,
}

/// A cell's verdict counts as text: every verdict seen, `orphan 4/5, pass
/// 1/5` (or `no trials`).
pub fn verdict_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let seen: Vec<(&str, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    let total: u64 = seen.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return "no trials".to_string();
    }
    seen.iter()
        .map(|(v, n)| format!("{v} {n}/{total}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The test case of one scenario x strategy cell judged `judgement`, with
/// `counts` (from [`verdict_counts`]), the commands that replay its
/// unexpected verdicts and its first diagnosis, if any was written.
pub fn cell(
    suite: &str,
    classname: &str,
    judgement: &Comparison,
    counts: String,
    time: Duration,
    replay: &[String],
    diagnosis: Option<&Path>,
) -> Case {
    let failure = (!judgement.met()).then(|| {
        let replay_text = if replay.is_empty() {
            "none kept".to_string()
        } else {
            replay.join(" ; ")
        };
        let diagnosis_text = diagnosis.map_or_else(
            || "none written".to_string(),
            |p| p.with_extension("txt").display().to_string(),
        );
        let message = format!(
            "{}; verdicts: {counts}; replay: {replay_text}; diagnosis: {diagnosis_text}",
            judgement.render()
        );
        let mut description = format!("{}\nverdicts: {counts}\n", judgement.render());
        for r in replay {
            let _ = writeln!(description, "replay: {r}");
        }
        let _ = writeln!(description, "diagnosis: {diagnosis_text}");
        Failure {
            message,
            description,
            kind: "unexpected verdicts",
        }
    });
    Case {
        suite: suite.to_string(),
        name: judgement.strategy.clone(),
        classname: classname.to_string(),
        time,
        counts,
        failure,
    }
}

/// Refuse a `--junit` path the report could not be written to, before
/// anything runs: a directory, or a name whose directory does not exist.
///
/// # Errors
/// [`LabError::Input`] naming the path and what is wrong with it.
pub fn check_target(path: Option<&Path>) -> Result<(), LabError> {
    check_report_target("--junit", path)
}

/// Refuse the path of a report (`flag` names its option: `--junit`,
/// `--ctrf`) the report could not be written to, before anything runs: a
/// directory, or a name whose directory does not exist.
///
/// # Errors
/// [`LabError::Input`] naming the option, the path and what is wrong.
pub fn check_report_target(flag: &str, path: Option<&Path>) -> Result<(), LabError> {
    let Some(path) = path else { return Ok(()) };
    let bad = |why: &str| {
        Err(LabError::Input(format!(
            "{flag} {}: {why}; nothing was run",
            path.display()
        )))
    };
    if path.as_os_str().is_empty() {
        return bad("an empty path");
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return bad("is a directory (give the name of the file to write)");
    }
    let dir = parent_of(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bad(&format!("{} is not a directory", dir.display())),
        Err(e) => bad(&format!(
            "its directory {} cannot be used: {e}",
            dir.display()
        )),
    }
}

/// The directory `path` is written in.
fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The report `name` of `cases` as JUnit XML: one test suite per distinct
/// [`Case::suite`], in the order they first appear.
///
/// # Errors
/// [`LabError::Lab`] when the report does not serialize.
pub fn render(name: &str, cases: &[Case]) -> Result<String, LabError> {
    let mut suites: Vec<(String, Vec<TestCase>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for c in cases {
        let status = match &c.failure {
            None => TestCaseStatus::success(),
            Some(f) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(f.message.as_str())
                    .set_type(f.kind)
                    .set_description(f.description.as_str());
                s
            }
        };
        let mut t = TestCase::new(c.name.as_str(), status);
        t.set_classname(c.classname.as_str())
            .set_time(c.time)
            .set_system_out(c.counts.as_str());
        let i = *index.entry(c.suite.clone()).or_insert_with(|| {
            suites.push((c.suite.clone(), Vec::new()));
            suites.len() - 1
        });
        suites[i].1.push(t);
    }
    let mut report = Report::new(name);
    for (suite, tests) in suites {
        let mut s = TestSuite::new(suite.as_str());
        s.add_test_cases(tests);
        report.add_test_suite(s);
    }
    report
        .to_string()
        .map_err(|e| LabError::Lab(format!("cannot write the JUnit report: {e}")))
}

/// Write the report `name` of `cases` to `path` when one was asked for
/// (`--junit`): whole, through a temporary file renamed over `path`.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
pub fn write(path: Option<&Path>, name: &str, cases: &[Case]) -> Result<(), LabError> {
    let Some(path) = path else { return Ok(()) };
    let xml = render(name, cases)?;
    crate::results::replace_file(path, xml.as_bytes()).map_err(|e| {
        LabError::io(
            format!("cannot write the JUnit report {}", path.display()),
            e,
        )
    })
}

/// The test cases of a `lab run`: one per strategy, in the suite of the
/// scenario.
pub fn of_run(r: &crate::run::RunSummary) -> Vec<Case> {
    r.results
        .iter()
        .map(|s| {
            let counts = verdict_counts(s.rates.iter().map(|(v, rate)| (v.as_str(), rate.count)));
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
            cell(
                &r.scenario,
                &r.scenario,
                &s.expectation,
                counts,
                time,
                &replay,
                s.diagnosis.as_ref().map(|d| d.path.as_path()),
            )
        })
        .collect()
}

/// The test cases of a `lab soak`: one per scenario (at a swept value) x
/// strategy cell, judged as its exit status judges it.
pub fn of_soak(s: &crate::soak::SoakSummary) -> Vec<Case> {
    let per_trial = if s.trials_run > 0 {
        s.wall_s / s.trials_run as f64
    } else {
        0.0
    };
    s.groups
        .iter()
        .map(|g| {
            let suite = if g.sweep_key.is_empty() {
                g.scenario.clone()
            } else {
                format!("{} {}={}", g.scenario, g.sweep_key, g.sweep_value)
            };
            let counts = verdict_counts(g.rates.iter().map(|(v, rate)| (v.as_str(), rate.count)));
            let time = Duration::from_secs_f64((per_trial * g.trials as f64).max(0.0));
            let judged = s.expectations.iter().find(|j| {
                j.scenario == g.scenario
                    && j.sweep_value == g.sweep_value
                    && j.judgement.strategy == g.strategy
            });
            let judgement = judged.map_or_else(
                || crate::expect::Comparison {
                    strategy: g.strategy.clone(),
                    status: crate::expect::Status::NotJudged,
                    source: crate::expect::Source::None,
                    expected: Vec::new(),
                    unexpected: Vec::new(),
                },
                |j| j.judgement.clone(),
            );
            // The first trial of each unexpected verdict: its replay
            // command, and the first diagnosis written among them.
            let firsts: Vec<&crate::record::tally::Failing> = judgement
                .unexpected
                .iter()
                .filter_map(|u| g.first.get(u.verdict.name()))
                .collect();
            let replay: Vec<String> = firsts
                .iter()
                .map(|f| format!("{}   # {}", f.replay, f.verdict))
                .collect();
            let diagnosis = g
                .failing
                .iter()
                .chain(firsts.iter().copied())
                .filter(|f| {
                    judgement
                        .unexpected
                        .iter()
                        .any(|u| u.verdict.name() == f.verdict)
                })
                .find(|f| !f.diagnosis.is_empty())
                .map(|f| PathBuf::from(&f.diagnosis));
            cell(
                &suite,
                &g.scenario,
                &judgement,
                counts,
                time,
                &replay,
                diagnosis.as_deref(),
            )
        })
        .collect()
}

/// The test cases of a `lab suite`: one per member and strategy, in a
/// suite per strategy; a member whose verdict depends on the order fails,
/// naming its runs alone and in the suite, the command that replays it
/// and the one that bisects it.
pub fn of_suite(r: &crate::suite::run::SuiteReport) -> Vec<Case> {
    use crate::suite::run::Dependence;
    r.members
        .iter()
        .map(|m| {
            let counts = format!(
                "alone: {}; in the suite: {}",
                verdict_counts(m.alone.verdicts().iter().map(|(v, n)| (v.as_str(), *n))),
                verdict_counts(m.suite.verdicts().iter().map(|(v, n)| (v.as_str(), *n)))
            );
            let found = r
                .order_dependent
                .iter()
                .find(|d| d.name == m.name && d.strategy == m.strategy);
            let failure = found.map(|d| {
                let what = match d.dependence {
                    Dependence::FailsInSuite => "passes alone and fails in the suite",
                    Dependence::PassesOnlyInSuite => "fails alone and passes only in the suite",
                };
                let diagnosis = m
                    .suite
                    .diagnosis()
                    .or(m.alone.diagnosis())
                    .unwrap_or("none");
                let message = format!(
                    "order-dependent: {what}; verdicts {counts}; replay: {}; find the cause: {}; \
                     first diagnosis: {}",
                    d.replay,
                    d.bisect,
                    diagnosis.lines().next().unwrap_or("none")
                );
                let description = format!(
                    "order-dependent under {}: {what}\nverdicts {counts}\nreplay: {}\n\
                     find the cause: {}\ndiagnosis:\n{diagnosis}\n",
                    m.strategy, d.replay, d.bisect
                );
                Failure {
                    message,
                    description,
                    kind: "order-dependent",
                }
            });
            Case {
                suite: format!("{} {}", r.suite, m.strategy),
                name: m.name.clone(),
                classname: r.suite.clone(),
                time: Duration::ZERO,
                counts,
                failure,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{compare, RUN_DEFAULT};
    use crate::strategy::Strategy;
    use crate::verdict::Verdict;

    #[test]
    fn a_failing_cell_names_its_counts_replay_and_diagnosis_and_the_xml_escapes_them() {
        let legacy = Strategy::parse("legacy").unwrap();
        let j = compare(&legacy, None, &[], Some(RUN_DEFAULT), |v| {
            u64::from(v == Verdict::Orphan) * 3
        });
        let counts = verdict_counts([("orphan", 3), ("pass", 0)]);
        assert_eq!(counts, "orphan 3/3");
        let replay = vec!["lab run \"a&b\" --seed 1 --strategy legacy".to_string()];
        let c = cell(
            "nested",
            "nested",
            &j,
            counts,
            Duration::from_millis(5),
            &replay,
            Some(Path::new("out/diagnosis/legacy.0.json")),
        );
        let f = c.failure.as_ref().unwrap();
        assert!(
            f.message.starts_with("UNEXPECTED: orphan x3"),
            "{}",
            f.message
        );
        assert!(f.message.contains("verdicts: orphan 3/3"));
        assert!(f.message.contains(&replay[0]));
        assert!(f.message.contains("out/diagnosis/legacy.0.txt"));
        let xml = render("lab run nested", &[c]).unwrap();
        assert!(
            xml.contains("&quot;a&amp;b&quot;") || xml.contains("\"a&amp;b\""),
            "{xml}"
        );
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 1);
        assert_eq!(back.tests, 1);
        assert_eq!(back.failures, 1);
    }

    #[test]
    fn a_bad_target_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_target(None).is_ok());
        assert!(check_target(Some(&dir.path().join("x.xml"))).is_ok());
        assert!(check_target(Some(Path::new("x.xml"))).is_ok());
        let e = check_target(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = check_target(Some(&dir.path().join("no/such/x.xml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used"), "{e}");
    }
}
