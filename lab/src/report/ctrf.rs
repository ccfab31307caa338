//! `--ctrf FILE`: the same [`TestReport`] as `--junit` (one test case per
//! scenario x strategy cell, suite member or fuzzed strategy), as a CTRF report
//! (Common Test Report Format, <https://ctrf.io>): one JSON object
//! `{"results": {"tool": {"name": "lab"}, "summary": {...}, "tests": [...]}}`
//! that CI dashboards read without an XML parser.
//!
//! The summary counts the tests by status (`passed`, `failed`, `skipped`;
//! `pending` and `other` are always 0: every cell that ran is judged) and
//! carries the start and stop of the command in milliseconds since the Unix
//! epoch; each test has its `name` (the strategy or member), `suite` (the
//! scenario, or the suite and strategy), `status`, `duration` (ms) and, when
//! it failed, the `message` of its JUnit failure (verdict counts, replay
//! command, diagnosis path). Written whole and renamed over the name, as
//! the JUnit file. It only formats: the cases are the summaries' own.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{TestOutcome, TestReport};
use crate::error::LabError;

/// A CTRF report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The results.
    pub results: Results,
}

/// The report's results: the tool, the summary and the tests.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// The tool that made it (`lab`, with its version).
    pub tool: Tool,
    /// Counts by status, and the start and stop.
    pub summary: Summary,
    /// One per test case.
    pub tests: Vec<Test>,
}

/// The tool that made the report.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    /// `lab`.
    pub name: String,
    /// The lab's version.
    pub version: String,
}

/// The counts of the tests by status, and when the command ran.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Tests.
    pub tests: u64,
    /// Tests that passed (met their expectation).
    pub passed: u64,
    /// Tests that failed (unexpected verdicts, or order-dependent).
    pub failed: u64,
    /// Always 0.
    pub pending: u64,
    /// Tests that did not run.
    pub skipped: u64,
    /// Always 0.
    pub other: u64,
    /// When the command started (ms since the Unix epoch).
    pub start: u64,
    /// When it stopped (ms since the Unix epoch).
    pub stop: u64,
}

/// One test.
#[derive(Clone, Debug, Serialize)]
pub struct Test {
    /// The strategy (or the suite member).
    pub name: String,
    /// `passed`, `failed` or `skipped`.
    pub status: &'static str,
    /// Time its trials took (ms).
    pub duration: u64,
    /// Why it failed (its JUnit failure's message) or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The scenario (with its swept value), or the suite and strategy.
    pub suite: String,
}

/// Milliseconds since the Unix epoch of `t` (0 before it).
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// The CTRF report of `report`, for a command that ran from `start` to
/// `stop`.
pub fn report(report: &TestReport, start: SystemTime, stop: SystemTime) -> Report {
    let tests: Vec<Test> = report
        .cases
        .iter()
        .map(|c| {
            let (status, message) = match &c.outcome {
                TestOutcome::Passed => ("passed", None),
                TestOutcome::Failed(f) => ("failed", Some(f.message.clone())),
                TestOutcome::Skipped(why) => ("skipped", Some(why.clone())),
            };
            Test {
                name: c.name.clone(),
                status,
                duration: c.time.as_millis().try_into().unwrap_or(u64::MAX),
                message,
                suite: c.suite.clone(),
            }
        })
        .collect();
    let count = |status: &str| tests.iter().filter(|t| t.status == status).count() as u64;
    let (passed, failed, skipped) = (count("passed"), count("failed"), count("skipped"));
    Report {
        results: Results {
            tool: Tool {
                name: "lab".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            summary: Summary {
                tests: tests.len() as u64,
                passed,
                failed,
                pending: 0,
                skipped,
                other: 0,
                start: epoch_ms(start),
                stop: epoch_ms(stop),
            },
            tests,
        },
    }
}

/// Write the CTRF report of `test_report` to `path` when one was asked for
/// (`--ctrf`): whole, through a temporary file renamed over `path`.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
pub fn write(
    path: Option<&Path>,
    test_report: &TestReport,
    start: SystemTime,
    stop: SystemTime,
) -> Result<(), LabError> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_string_pretty(&report(test_report, start, stop))
        .map_err(|e| LabError::Lab(format!("cannot write the CTRF report: {e}")))?;
    super::write_file(path, "CTRF report", json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, TestCase};

    #[test]
    fn counts_and_statuses_follow_the_cases() {
        let case = |name: &str, failed: bool| TestCase {
            suite: "nested".into(),
            name: name.into(),
            classname: "nested".into(),
            time: Duration::from_millis(1500),
            counts: "pass 3/3".into(),
            outcome: if failed {
                TestOutcome::Failed(Failure {
                    message: "UNEXPECTED: orphan x3".into(),
                    details: String::new(),
                    kind: "unexpected verdicts",
                })
            } else {
                TestOutcome::Passed
            },
        };
        let start = UNIX_EPOCH + Duration::from_secs(10);
        let stop = start + Duration::from_secs(2);
        let cases = TestReport {
            name: "lab run nested".into(),
            cases: vec![case("canonical", false), case("legacy", true)],
        };
        let r = report(&cases, start, stop);
        let v = serde_json::to_value(&r).unwrap();
        let s = &v["results"]["summary"];
        assert_eq!(
            (
                s["tests"].as_u64(),
                s["passed"].as_u64(),
                s["failed"].as_u64()
            ),
            (Some(2), Some(1), Some(1))
        );
        assert_eq!(
            (s["start"].as_u64(), s["stop"].as_u64()),
            (Some(10_000), Some(12_000))
        );
        assert_eq!(v["results"]["tool"]["name"], "lab");
        let t = &v["results"]["tests"];
        assert_eq!(t[0]["status"], "passed");
        assert!(t[0].get("message").is_none());
        assert_eq!(t[1]["status"], "failed");
        assert_eq!(t[1]["duration"], 1500);
        assert_eq!(t[1]["message"], "UNEXPECTED: orphan x3");
    }
}
