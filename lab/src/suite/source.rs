//! Where a suite's tests come from: a suite file of scenarios (members run
//! as trials in one supervisor, the model of a test process), or a test
//! runner (a real test process, each of its runs one trial: see
//! [`runner`](super::runner)). `lab suite` and `lab bisect` see only
//! [`Source`]: its tests by name, and executions of ordered lists of them.

use std::time::Duration;

use super::runner::{Runner, RunnerKind};
use super::Suite;
use crate::error::LabError;

/// What the command line names as the tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// A suite file (`scenarios/suites/NAME.toml`), as given.
    File(String),
    /// A test runner.
    Runner(RunnerKind),
}

impl SourceSpec {
    /// How the report names it: the suite file, or the runner.
    pub fn label(&self) -> String {
        match self {
            SourceSpec::File(f) => f.clone(),
            SourceSpec::Runner(k) => k.label(),
        }
    }

    /// Load it: parse the suite file, or list the runner's tests (each run
    /// of its test process bounded by `deadline`, or
    /// [`super::runner::DEFAULT_DEADLINE`]).
    ///
    /// # Errors
    /// [`LabError::Input`] for a bad suite file, or a runner that cannot
    /// list its tests (see [`Runner::list`]).
    pub fn load(&self, deadline: Option<Duration>) -> Result<Source, LabError> {
        Ok(match self {
            SourceSpec::File(f) => Source::Suite(Suite::load(f)?),
            SourceSpec::Runner(kind) => {
                let deadline = deadline.unwrap_or(super::runner::DEFAULT_DEADLINE);
                let runner = Runner::list(kind.clone(), deadline)?;
                if runner.tests.is_empty() {
                    return Err(LabError::Input(format!(
                        "{}: lists no test; nothing to run (check its arguments, and \
                         --include-ignored for ignored tests)",
                        kind.label()
                    )));
                }
                Source::Runner(runner)
            }
        })
    }
}

/// A loaded source: its tests (a suite's members, or a runner's tests).
#[derive(Clone, Debug)]
pub enum Source {
    /// The members of a suite file.
    Suite(Suite),
    /// The tests of a runner.
    Runner(Runner),
}

impl Source {
    /// Its name in the report: the suite's name, or `libtest`, `pytest`,
    /// `command`.
    pub fn name(&self) -> String {
        match self {
            Source::Suite(s) => s.name.clone(),
            Source::Runner(r) => match r.kind {
                RunnerKind::Libtest { .. } => "libtest".into(),
                RunnerKind::Pytest { .. } => "pytest".into(),
                RunnerKind::Generic { .. } => "command".into(),
            },
        }
    }

    /// How many tests (members) it has.
    pub fn len(&self) -> usize {
        match self {
            Source::Suite(s) => s.members.len(),
            Source::Runner(r) => r.tests.len(),
        }
    }

    /// Whether it has no test.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of test `i`.
    pub fn name_of(&self, i: usize) -> &str {
        match self {
            Source::Suite(s) => &s.members[i].name,
            Source::Runner(r) => &r.tests[i],
        }
    }

    /// The index of the test named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        match self {
            Source::Suite(s) => s.index(name),
            Source::Runner(r) => r.tests.iter().position(|t| t == name),
        }
    }

    /// The names of its tests, for an error message: every one up to 20,
    /// then how many more.
    pub fn names(&self) -> String {
        let all: Vec<&str> = (0..self.len()).map(|i| self.name_of(i)).collect();
        if all.len() <= 20 {
            all.join(", ")
        } else {
            format!("{}, and {} more", all[..20].join(", "), all.len() - 20)
        }
    }

    /// The runner, when the tests come from one.
    pub fn runner(&self) -> Option<&Runner> {
        match self {
            Source::Runner(r) => Some(r),
            Source::Suite(_) => None,
        }
    }
}
