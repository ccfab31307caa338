//! Test runners as suite sources: a Rust test binary (libtest), pytest, or
//! any runner that lists its tests and runs a given list in one process.
//!
//! A runner's tests are listed once, by a bounded child ([`super::capture::capture`]: the
//! listing's deadline, killed through its pidfd past it). Every execution
//! of the test process (one test alone, or a list in one process) is a
//! trial: its program is the root of a one-node scenario, as `lab exec`
//! runs it ([`crate::program::ExecSpec`]), so it is contained (the trial's
//! cgroup and PID namespace), its output captured, its leftovers judged
//! `orphan` or `leak` with their lineage, and a hang diagnosed before
//! anything is killed. The runner's own output then says which test did
//! what ([`attribute`](Runner::attribute)): libtest prints `test NAME ...`
//! before a test and its result after it, so the test that was running when
//! the process hung is the last one started and not finished.
//!
//! Names are never passed through a shell: each is one argument of the
//! test process.

use std::time::Duration;

use super::test_result::TestResult;
use crate::error::LabError;
use crate::plan::Plan;
use crate::program::ExecSpec;
use crate::scenario::Scenario;
use crate::verdict::{Outcome, Verdict};

/// The deadline of one test-process run when `--deadline` is not given:
/// 60 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Which runner, and how it is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerKind {
    /// A Rust test binary (the libtest harness).
    Libtest {
        /// The binary.
        bin: String,
        /// Run ignored tests too (`--include-ignored`).
        include_ignored: bool,
    },
    /// pytest (`python3 -m pytest`), with the user's arguments.
    Pytest {
        /// What selects the tests (paths, `-k`, ...).
        args: Vec<String>,
    },
    /// Any runner: a list command that prints one test name a line, and a
    /// run command whose `{names}` argument becomes the names.
    Generic {
        /// The list command, as words.
        list: Vec<String>,
        /// The run command, as words, one of them `{names}`.
        run: Vec<String>,
    },
}

/// A runner whose tests are listed.
#[derive(Clone, Debug)]
pub struct Runner {
    /// How it is called.
    pub kind: RunnerKind,
    /// Its tests, in the order it lists them.
    pub tests: Vec<String>,
    /// The deadline of one test-process run.
    pub deadline: Duration,
    /// `NAME=VALUE` set in the test process's environment (pytest: the
    /// ordering plugin's directory on `PYTHONPATH`).
    pub env: Vec<String>,
    /// The lab's own directory of what the runs need (pytest's plugin),
    /// removed when the last copy of the runner is dropped.
    pub support: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Runner {
    /// List the tests of `kind` (a bounded child, [`super::capture::capture`], with the
    /// deadline of a test-process run).
    ///
    /// # Errors
    /// [`LabError::Input`] when the listing cannot start, fails, hangs past
    /// `deadline`, prints what is not a list, or lists nothing.
    pub fn list(kind: RunnerKind, deadline: Duration) -> Result<Runner, LabError> {
        let tests = match &kind {
            RunnerKind::Libtest {
                bin,
                include_ignored,
            } => super::libtest::list(bin, *include_ignored, deadline)?,
            RunnerKind::Pytest { args } => super::pytest::list(args, deadline)?,
            RunnerKind::Generic { list, .. } => super::libtest::list_lines(list, deadline)?,
        };
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = tests.iter().find(|t| !seen.insert(t.as_str())) {
            return Err(LabError::Input(format!(
                "{}: lists the test `{twice}` twice; a test's name must name one test",
                kind.label()
            )));
        }
        let mut runner = Runner {
            kind,
            tests,
            deadline,
            env: Vec::new(),
            support: None,
        };
        if matches!(runner.kind, RunnerKind::Pytest { .. }) {
            let dir = tempfile::Builder::new()
                .prefix("lab-pytest-")
                .tempdir()
                .map_err(|e| LabError::io("cannot make a temporary directory", e))?;
            let path = super::pytest::write_plugin(dir.path())?;
            let mut python_path = path.display().to_string();
            if let Ok(old) = std::env::var("PYTHONPATH") {
                python_path = format!("{python_path}:{old}");
            }
            runner.env = vec![
                format!("PYTHONPATH={python_path}"),
                "PYTHONDONTWRITEBYTECODE=1".into(),
            ];
            runner.support = Some(std::sync::Arc::new(dir));
        }
        Ok(runner)
    }

    /// Whether the runner runs the names it is given in its own order
    /// (libtest sorts them), not in the order given.
    pub fn sorts(&self) -> bool {
        matches!(self.kind, RunnerKind::Libtest { .. })
    }

    /// The test process that runs `names` in one process, as argv.
    pub fn argv(&self, names: &[&str]) -> Vec<String> {
        match &self.kind {
            RunnerKind::Libtest {
                bin,
                include_ignored,
            } => {
                let mut v = vec![bin.clone(), "--exact".to_string()];
                v.extend(names.iter().map(|n| n.to_string()));
                v.push("--test-threads=1".into());
                if *include_ignored {
                    v.push("--include-ignored".into());
                }
                v
            }
            RunnerKind::Pytest { .. } => super::pytest::run_argv(names),
            RunnerKind::Generic { run, .. } => {
                let mut v = Vec::new();
                for w in run {
                    if w == "{names}" {
                        v.extend(names.iter().map(|n| n.to_string()));
                    } else {
                        v.push(w.clone());
                    }
                }
                v
            }
        }
    }

    /// The plan of one run of the test process over `names`: a scenario of
    /// one node whose root is the test process, as `lab exec` makes it
    /// (output captured: a process still holding it once the test process
    /// exited is a `leak`).
    ///
    /// # Errors
    /// [`LabError::Input`] when the scenario is refused (an argument with a
    /// NUL byte).
    pub fn plan(&self, names: &[&str]) -> Result<Plan, LabError> {
        let spec = ExecSpec {
            command: self.argv(names),
            capture: true,
            env: self.env.clone(),
            deadline: self.deadline,
            name: Some(self.kind.scenario_name().into()),
            ..ExecSpec::default()
        };
        let scenario = Scenario::parse("test-process", &spec.scenario_text())?;
        Ok(Plan::new(&scenario, 1))
    }

    /// What each of `names` did in a run of the test process that came to
    /// `process`, from its output: one entry per name, in the order given,
    /// `None` for a test that did not run (after a hang, or skipped).
    ///
    /// A passing process passed every test it was given. A test the runner
    /// reports failing is `fail` with its message. The test running when
    /// the process hung gets the process's `hang`, with its diagnosis and a
    /// reason that names it; when it died otherwise, the process's verdict.
    /// A process that left processes behind (`orphan`, `leak`) after
    /// running one test gives that test its verdict; after several, the
    /// tests keep the runner's results and the caller reports the process.
    pub fn attribute(&self, names: &[&str], process: &Outcome) -> Vec<Option<Outcome>> {
        let pass = || Some(with_verdict(process, Verdict::Pass, None));
        if process.verdict == Verdict::Pass {
            return names.iter().map(|_| pass()).collect();
        }
        let stdout = process.output.as_ref().map_or("", |o| o.stdout.as_str());
        let results = match &self.kind {
            RunnerKind::Pytest { .. } => super::pytest::results(stdout),
            _ => super::libtest::results(stdout),
        };
        let leftovers = matches!(process.verdict, Verdict::Orphan | Verdict::Leak);
        names
            .iter()
            .map(|name| match results.get(*name) {
                Some(TestResult::Ok) if leftovers && names.len() == 1 => Some(process.clone()),
                Some(TestResult::Ok) => pass(),
                Some(TestResult::Skipped) => None,
                Some(TestResult::Failed(message)) => {
                    let reason = if message.is_empty() {
                        format!("the runner reports test `{name}` failed")
                    } else {
                        format!("the runner reports test `{name}` failed: {message}")
                    };
                    Some(with_verdict(process, Verdict::Fail, Some(reason)))
                }
                Some(TestResult::Running) => {
                    let mut o = process.clone();
                    let what = match o.verdict {
                        Verdict::Hang => "hung",
                        _ => "ended",
                    };
                    let reason = format!(
                        "the test process {what} ({}) while test `{name}` was running (its \
                         last started test)",
                        o.verdict
                    );
                    o.reason = Some(reason);
                    Some(o)
                }
                // Not reported at all: after a hang it never started; a
                // process that did not pass without a word of it (it
                // crashed before printing, or the runner prints nothing)
                // gives a silent test its verdict only when it ran that
                // test alone; in a list, the test is not counted.
                None if names.len() == 1 => Some(process.clone()),
                None => None,
            })
            .collect()
    }

    /// The command that runs `names` in one process, for a shell (each word
    /// quoted as it needs); `None` for pytest, whose runs need the lab's
    /// ordering plugin (`lab suite --pytest --only ...` replays them).
    pub fn command_line(&self, names: &[&str]) -> Option<String> {
        if matches!(self.kind, RunnerKind::Pytest { .. }) {
            return None;
        }
        Some(
            self.argv(names)
                .iter()
                .map(|w| super::shell_word(w))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

impl RunnerKind {
    /// The runner as the report names it: `libtest BIN`, `pytest ARGS`,
    /// `command LIST`.
    pub fn label(&self) -> String {
        match self {
            RunnerKind::Libtest { bin, .. } => format!("libtest {bin}"),
            RunnerKind::Pytest { args } => format!("pytest {}", args.join(" ")),
            RunnerKind::Generic { list, .. } => format!("command {}", list.join(" ")),
        }
    }

    /// The scenario name of its test-process runs.
    fn scenario_name(&self) -> &'static str {
        match self {
            RunnerKind::Libtest { .. } => "libtest",
            RunnerKind::Pytest { .. } => "pytest",
            RunnerKind::Generic { .. } => "test-command",
        }
    }

    /// The source flags of a `lab` command line that names this runner:
    /// `--libtest BIN`, `--pytest -- ARGS` (last), `--list-cmd .. --run-cmd ..`.
    pub fn flags(&self) -> (String, String) {
        let q = |w: &str| super::shell_word(w);
        match self {
            RunnerKind::Libtest {
                bin,
                include_ignored,
            } => (
                format!(
                    "--libtest {}{}",
                    q(bin),
                    if *include_ignored {
                        " --include-ignored"
                    } else {
                        ""
                    }
                ),
                String::new(),
            ),
            RunnerKind::Pytest { args } => (
                "--pytest".into(),
                format!(
                    " -- {}",
                    args.iter().map(|a| q(a)).collect::<Vec<_>>().join(" ")
                ),
            ),
            RunnerKind::Generic { list, run } => (
                format!(
                    "--list-cmd {} --run-cmd {}",
                    q(&list.join(" ")),
                    q(&run.join(" "))
                ),
                String::new(),
            ),
        }
    }
}

/// `process` as the outcome of one test of it: `verdict`, with `reason`,
/// without the process's diagnosis, output and trace.
fn with_verdict(process: &Outcome, verdict: Verdict, reason: Option<String>) -> Outcome {
    Outcome {
        verdict,
        reason,
        survivors: Vec::new(),
        signatures: Vec::new(),
        diagnosis: None,
        output: None,
        trace: None,
        ..process.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::ProgramOutput;

    fn libtest(tests: &[&str]) -> Runner {
        Runner {
            kind: RunnerKind::Libtest {
                bin: "./t".into(),
                include_ignored: false,
            },
            tests: tests.iter().map(|t| t.to_string()).collect(),
            deadline: DEFAULT_DEADLINE,
            env: Vec::new(),
            support: None,
        }
    }

    fn process(verdict: Verdict, stdout: &str) -> Outcome {
        let mut o = Outcome::error("x".into(), 0);
        o.verdict = verdict;
        o.reason = Some("the process's reason".into());
        o.output = Some(ProgramOutput {
            stdout: stdout.into(),
            ..ProgramOutput::default()
        });
        o
    }

    fn verdicts(v: &[Option<Outcome>]) -> Vec<Option<Verdict>> {
        v.iter().map(|o| o.as_ref().map(|o| o.verdict)).collect()
    }

    #[test]
    fn a_hang_goes_to_the_running_test_and_the_tests_after_it_did_not_run() {
        let r = libtest(&["a", "b", "c"]);
        let out = "running 3 tests\ntest a ... ok\ntest b ... ";
        let got = r.attribute(&["a", "b", "c"], &process(Verdict::Hang, out));
        assert_eq!(
            verdicts(&got),
            [Some(Verdict::Pass), Some(Verdict::Hang), None]
        );
        let reason = got[1].as_ref().unwrap().reason.clone().unwrap();
        assert!(reason.contains("while test `b` was running"), "{reason}");
    }

    #[test]
    fn a_failing_test_is_a_fail_with_the_runners_message_and_a_pass_passes_all() {
        let r = libtest(&["a", "b"]);
        let out = "test a ... FAILED\ntest b ... ok\n\nfailures:\n\n---- a stdout ----\nboom\n";
        let got = r.attribute(&["a", "b"], &process(Verdict::Fail, out));
        assert_eq!(verdicts(&got), [Some(Verdict::Fail), Some(Verdict::Pass)]);
        let reason = got[0].as_ref().unwrap().reason.clone().unwrap();
        assert!(reason.ends_with("failed: boom"), "{reason}");
        let got = r.attribute(&["a", "b"], &process(Verdict::Pass, ""));
        assert_eq!(verdicts(&got), [Some(Verdict::Pass), Some(Verdict::Pass)]);
    }

    #[test]
    fn leftovers_are_the_tests_verdict_only_when_it_ran_alone() {
        let r = libtest(&["a", "b"]);
        let got = r.attribute(&["a"], &process(Verdict::Orphan, "test a ... ok\n"));
        assert_eq!(verdicts(&got), [Some(Verdict::Orphan)]);
        let out = "test a ... ok\ntest b ... ok\n";
        let got = r.attribute(&["a", "b"], &process(Verdict::Leak, out));
        assert_eq!(verdicts(&got), [Some(Verdict::Pass), Some(Verdict::Pass)]);
    }

    #[test]
    fn names_are_arguments_of_their_own() {
        let r = libtest(&["a b", "c;d"]);
        assert_eq!(
            r.argv(&["a b", "c;d"]),
            ["./t", "--exact", "a b", "c;d", "--test-threads=1"]
        );
        assert_eq!(
            r.command_line(&["a b"]).unwrap(),
            "./t --exact 'a b' --test-threads=1"
        );
        let g = Runner {
            kind: RunnerKind::Generic {
                list: vec!["l".into()],
                run: vec!["run".into(), "{names}".into(), "-v".into()],
            },
            ..libtest(&[])
        };
        assert_eq!(g.argv(&["x y", "$(z)"]), ["run", "x y", "$(z)", "-v"]);
    }
}
