//! What a command found, as test cases that CI systems show as tests: the
//! neutral [`TestReport`] of [`TestCase`]s that each summary produces
//! itself (`RunSummary::test_report` for `lab run` and `lab exec`,
//! `SoakSummary::test_report`, `SuiteReport::test_report`,
//! `FuzzSummary::test_report`), and the writers that only format it:
//! [`junit`] (`--junit FILE`) and [`ctrf`] (`--ctrf FILE`).
//!
//! For `lab run` and `lab soak`, one test suite per scenario (at a swept
//! value), one test case per strategy in it: a *cell* ([`TestCase::cell`]).
//! A cell that did not meet its expectation (the comparison of
//! [`crate::expect`], the same that makes the exit status 1:
//! [`crate::error::Exit::of_expectations`]) fails with a message that
//! carries its verdict counts, the command that replays it and the path of
//! its first diagnosis; a cell with no expectation (a soak's strategy that
//! neither `[expect]` nor `--gate` names) passes, as it does not fail the
//! exit status either. For `lab suite`, one test suite per strategy and one
//! test case per member, failing when its verdict depends on the order;
//! for `lab fuzz`, one test case per strategy, failing when one of its
//! cases or regression replays failed.
//!
//! A report file is written whole and renamed over its name
//! ([`crate::record::files::replace_file`]): never through a symlink, never half
//! written. Its directory is checked before anything runs
//! ([`check_target`]), so a bad path costs no soak.

pub mod ctrf;
pub mod junit;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::LabError;
use crate::expect::Comparison;

/// What a command found, as test cases: the report `name` (`lab soak`,
/// `lab run nested`) and its cases in the order they are shown.
#[derive(Clone, Debug)]
pub struct TestReport {
    /// The report's name (JUnit's `<testsuites name>`).
    pub name: String,
    /// Its test cases, grouped into suites by [`TestCase::suite`] in the
    /// order the suites first appear.
    pub cases: Vec<TestCase>,
}

/// One test case: a scenario x strategy cell, a suite's member, or a
/// fuzzed strategy.
#[derive(Clone, Debug)]
pub struct TestCase {
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
    /// Whether it passed, failed (and why) or was skipped.
    pub outcome: TestOutcome,
}

/// How a test case ended.
#[derive(Clone, Debug)]
pub enum TestOutcome {
    /// It met its expectation (or had none).
    Passed,
    /// It did not: why.
    Failed(Failure),
    /// It did not run: why (one line).
    Skipped(String),
}

/// Why a test case failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// One line: what was unexpected, the verdict counts, the replay
    /// command and the diagnosis' path.
    pub message: String,
    /// The same over several lines (JUnit's `<failure>` element's text).
    pub details: String,
    /// Its kind (JUnit's `type`): `unexpected verdicts`, `order-dependent`
    /// or `failing cases`.
    pub kind: &'static str,
}

impl TestCase {
    /// Why it failed, when it did.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            TestOutcome::Failed(f) => Some(f),
            TestOutcome::Passed | TestOutcome::Skipped(_) => None,
        }
    }

    /// The test case of one scenario x strategy cell judged `comparison`,
    /// in `suite` with `classname`, with `counts` (from
    /// [`verdict_counts`]), the commands that replay its unexpected
    /// verdicts and its first diagnosis, if any was written.
    pub fn cell(
        suite: &str,
        classname: &str,
        comparison: &Comparison,
        counts: String,
        time: Duration,
        replay: &[String],
        diagnosis: Option<&Path>,
    ) -> TestCase {
        let outcome = if comparison.met() {
            TestOutcome::Passed
        } else {
            TestOutcome::Failed(unexpected(comparison, &counts, replay, diagnosis))
        };
        TestCase {
            suite: suite.to_string(),
            name: comparison.strategy.clone(),
            classname: classname.to_string(),
            time,
            counts,
            outcome,
        }
    }
}

/// The failure of a cell whose `comparison` was not met.
fn unexpected(
    comparison: &Comparison,
    counts: &str,
    replay: &[String],
    diagnosis: Option<&Path>,
) -> Failure {
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
        comparison.render()
    );
    let mut details = format!("{}\nverdicts: {counts}\n", comparison.render());
    for r in replay {
        let _ = writeln!(details, "replay: {r}");
    }
    let _ = writeln!(details, "diagnosis: {diagnosis_text}");
    Failure {
        message,
        details,
        kind: "unexpected verdicts",
    }
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

/// Refuse the path of a report (`flag` names its option: `--junit`,
/// `--ctrf`) the report could not be written to, before anything runs: a
/// directory, or a name whose directory does not exist. `None` (no report
/// asked for) is fine.
///
/// # Errors
/// [`LabError::Input`] naming the option, the path and what is wrong.
pub fn check_target(flag: &str, path: Option<&Path>) -> Result<(), LabError> {
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

/// Write `bytes` whole to `path` (through a temporary file renamed over
/// it); `what` names the report in the error.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
fn write_file(path: &Path, what: &str, bytes: &[u8]) -> Result<(), LabError> {
    crate::record::files::replace_file(path, bytes)
        .map_err(|e| LabError::io(format!("cannot write the {what} {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{compare, RUN_DEFAULT};
    use crate::strategy::Strategy;
    use crate::verdict::Verdict;

    #[test]
    fn a_failing_cell_names_its_counts_replay_and_diagnosis() {
        let legacy = Strategy::parse("legacy").unwrap();
        let j = compare(&legacy, None, &[], Some(RUN_DEFAULT), |v| {
            u64::from(v == Verdict::Orphan) * 3
        });
        let counts = verdict_counts([("orphan", 3), ("pass", 0)]);
        assert_eq!(counts, "orphan 3/3");
        let replay = vec!["lab run \"a&b\" --seed 1 --strategy legacy".to_string()];
        let c = TestCase::cell(
            "nested",
            "nested",
            &j,
            counts,
            Duration::from_millis(5),
            &replay,
            Some(Path::new("out/diagnosis/legacy.0.json")),
        );
        let f = c.failure().unwrap();
        assert!(
            f.message.starts_with("UNEXPECTED: orphan x3"),
            "{}",
            f.message
        );
        assert!(f.message.contains("verdicts: orphan 3/3"));
        assert!(f.message.contains(&replay[0]));
        assert!(f.message.contains("out/diagnosis/legacy.0.txt"));
    }

    #[test]
    fn a_bad_target_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let check = |p: Option<&Path>| check_target("--junit", p);
        assert!(check(None).is_ok());
        assert!(check(Some(&dir.path().join("x.xml"))).is_ok());
        assert!(check(Some(Path::new("x.xml"))).is_ok());
        let e = check(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let e = check(Some(&dir.path().join("no/such/x.xml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used"), "{e}");
    }
}
