//! The test report of `lab suite` (what `--junit` and `--ctrf` write): one
//! test case per member and strategy; a member whose verdict depends on the
//! order fails.

use std::time::Duration;

use super::run::{Dependence, MemberReport, SuiteReport};
use crate::report::{verdict_counts, Failure, TestCase, TestOutcome, TestReport};

impl SuiteReport {
    /// The test report of the suite (`lab suite`): one test case per member
    /// and strategy, in a suite per strategy; a member whose verdict
    /// depends on the order fails, naming its runs alone and in the suite,
    /// the command that replays it and the one that bisects it.
    pub fn test_report(&self) -> TestReport {
        TestReport {
            name: "lab suite".to_string(),
            cases: self.members.iter().map(|m| self.test_case(m)).collect(),
        }
    }

    /// The test case of member `m` under its strategy.
    fn test_case(&self, m: &MemberReport) -> TestCase {
        let counts = format!(
            "alone: {}; in the suite: {}",
            verdict_counts(m.alone.verdicts().iter().map(|(v, n)| (v.as_str(), *n))),
            verdict_counts(m.suite.verdicts().iter().map(|(v, n)| (v.as_str(), *n)))
        );
        let found = self
            .order_dependent
            .iter()
            .find(|d| d.name == m.name && d.strategy == m.strategy);
        let not_run = self
            .interrupted_by
            .filter(|_| found.is_none() && m.alone.runs() + m.suite.runs() == 0)
            .map(|sig| {
                TestOutcome::Skipped(format!(
                    "not run: interrupted ({})",
                    crate::error::Exit::interruption_name(sig)
                ))
            });
        let passed = not_run.unwrap_or(TestOutcome::Passed);
        let outcome = found.map_or(passed, |d| {
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
            let details = format!(
                "order-dependent under {}: {what}\nverdicts {counts}\nreplay: {}\n\
                 find the cause: {}\ndiagnosis:\n{diagnosis}\n",
                m.strategy, d.replay, d.bisect
            );
            TestOutcome::Failed(Failure {
                message,
                details,
                kind: "order-dependent",
            })
        });
        TestCase {
            suite: format!("{} {}", self.suite, m.strategy),
            name: m.name.clone(),
            classname: self.suite.clone(),
            time: Duration::ZERO,
            counts,
            outcome,
        }
    }
}
