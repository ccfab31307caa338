//! `--junit FILE`: a [`TestReport`] as JUnit XML (the [`quick_junit`]
//! crate), one `<testsuite>` per distinct [`TestCase::suite`] in the order
//! they first appear, each case's verdict counts as its `<system-out>` and
//! its failure as a `<failure>` with message, type and text. It only
//! formats: the cases are the summaries' own.

use std::collections::BTreeMap;
use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCaseStatus, TestSuite};

use super::{TestCase, TestOutcome, TestReport};
use crate::error::LabError;

/// The JUnit test case of `c`.
fn test_case(c: &TestCase) -> quick_junit::TestCase {
    let status = match &c.outcome {
        TestOutcome::Passed => TestCaseStatus::success(),
        TestOutcome::Failed(f) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(f.message.as_str())
                .set_type(f.kind)
                .set_description(f.details.as_str());
            s
        }
        TestOutcome::Skipped(why) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(why.as_str());
            s
        }
    };
    let mut t = quick_junit::TestCase::new(c.name.as_str(), status);
    t.set_classname(c.classname.as_str())
        .set_time(c.time)
        .set_system_out(c.counts.as_str());
    t
}

/// `report` as JUnit XML.
///
/// # Errors
/// [`LabError::Lab`] when the report does not serialize.
pub fn render(report: &TestReport) -> Result<String, LabError> {
    let mut suites: Vec<(String, Vec<quick_junit::TestCase>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for c in &report.cases {
        let i = *index.entry(c.suite.clone()).or_insert_with(|| {
            suites.push((c.suite.clone(), Vec::new()));
            suites.len() - 1
        });
        suites[i].1.push(test_case(c));
    }
    let mut xml = Report::new(report.name.as_str());
    for (suite, tests) in suites {
        let mut s = TestSuite::new(suite.as_str());
        s.add_test_cases(tests);
        xml.add_test_suite(s);
    }
    xml.to_string()
        .map_err(|e| LabError::Lab(format!("cannot write the JUnit report: {e}")))
}

/// Write `report` as JUnit XML to `path` when one was asked for
/// (`--junit`): whole, through a temporary file renamed over `path`.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
pub fn write(path: Option<&Path>, report: &TestReport) -> Result<(), LabError> {
    let Some(path) = path else { return Ok(()) };
    let xml = render(report)?;
    super::write_file(path, "JUnit report", xml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Failure;
    use std::time::Duration;

    #[test]
    fn a_failing_case_is_a_failure_and_the_xml_escapes_it() {
        let c = TestCase {
            suite: "nested".into(),
            name: "legacy".into(),
            classname: "nested".into(),
            time: Duration::from_millis(5),
            counts: "orphan 3/3".into(),
            outcome: TestOutcome::Failed(Failure {
                message: "UNEXPECTED: orphan x3; replay: lab run \"a&b\"".into(),
                details: "replay: lab run \"a&b\"\n".into(),
                kind: "unexpected verdicts",
            }),
        };
        let report = TestReport {
            name: "lab run nested".into(),
            cases: vec![c],
        };
        let xml = render(&report).unwrap();
        assert!(
            xml.contains("&quot;a&amp;b&quot;") || xml.contains("\"a&amp;b\""),
            "{xml}"
        );
        let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.test_suites.len(), 1);
        assert_eq!(back.tests, 1);
        assert_eq!(back.failures, 1);
    }
}
