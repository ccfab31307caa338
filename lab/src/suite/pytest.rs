//! pytest as a suite source. The tests: the node ids `python3 -m pytest
//! --collect-only -q ARGS` prints. A run: `python3 -u -m pytest -v -p
//! no:randomly -p no:cacheprovider -p lab_pytest_order ARGS IDS...`, where
//! `lab_pytest_order` is a plugin of a few lines that the lab writes to a
//! directory of its own (put on `PYTHONPATH`): pytest runs the items it
//! collects in its own order, so the plugin sorts them into the order of
//! the ids given (as detect-test-pollution does). `-u` writes each line as
//! it is printed: `-v` prints a test's id before it runs and its result
//! after, so the id without a result is the test that was running at a
//! hang. A failure's message is its line of the short summary
//! (`FAILED ID - MESSAGE`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::capture::capture;
use super::test_result::TestResult;
use crate::error::LabError;

/// The plugin's module name (`-p`).
pub const PLUGIN: &str = "lab_pytest_order";

/// The plugin: the collected items in the order of the ids on the command
/// line.
const PLUGIN_SOURCE: &str = r#"# Written by the lab: run the collected tests in the order of the node ids
# given on the command line (pytest collects them in its own order).
def pytest_collection_modifyitems(session, config, items):
    order = {arg: i for i, arg in enumerate(config.args)}
    items.sort(key=lambda item: order.get(item.nodeid, len(order)))
"#;

/// The options of every pytest run: no plugin that reorders or remembers.
const FIXED: [&str; 4] = ["-p", "no:randomly", "-p", "no:cacheprovider"];

/// The node ids pytest collects from `args`.
///
/// # Errors
/// [`LabError::Input`] when pytest cannot start, collects nothing, fails
/// to collect, or hangs past `deadline`.
pub fn list(args: &[String], deadline: Duration) -> Result<Vec<String>, LabError> {
    let what = format!("--pytest -- {}", args.join(" "));
    let mut argv: Vec<String> = ["python3", "-m", "pytest", "--collect-only", "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(FIXED.iter().map(|s| s.to_string()));
    argv.extend(args.iter().cloned());
    let (code, text) = capture(&what, &argv, deadline)?;
    match code {
        Some(0) => {}
        Some(5) => return Ok(Vec::new()),
        other => {
            return Err(LabError::Input(format!(
                "{what}: `pytest --collect-only` {}: {}; check the arguments after --, and that \
                 pytest is installed (python3 -m pip install pytest)",
                other.map_or("was killed by a signal".into(), |c| format!(
                    "exited with status {c}"
                )),
                crate::text::bounded(text.lines().last().unwrap_or(""), 200)
            )))
        }
    }
    Ok(text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.contains("::"))
        .map(str::to_string)
        .collect())
}

/// The test process that runs `names` in this order. The node ids select
/// the tests; the arguments that selected them at collection are not
/// repeated (a `-k EXPR` would select again).
pub fn run_argv(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["python3", "-u", "-m", "pytest", "-v"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(FIXED.iter().map(|s| s.to_string()));
    v.extend(["-p".to_string(), PLUGIN.to_string()]);
    v.extend(names.iter().map(|n| n.to_string()));
    v
}

/// Write the ordering plugin into `dir` (the lab's own temporary
/// directory); its path, for `PYTHONPATH`.
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
pub fn write_plugin(dir: &Path) -> Result<PathBuf, LabError> {
    let file = dir.join(format!("{PLUGIN}.py"));
    std::fs::write(&file, PLUGIN_SOURCE)
        .map_err(|e| LabError::io(format!("cannot write {}", file.display()), e))?;
    Ok(dir.to_path_buf())
}

/// The words pytest's `-v` prints after a test's id.
const RESULTS: [&str; 6] = ["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL", "XPASS"];

/// What pytest's `-v` output says of each test: `ID PASSED [ 50%]`,
/// `FAILED`, `SKIPPED`, ...; an id printed without a result is the test
/// that was running. A failure's message is its line of the short summary.
pub fn results(stdout: &str) -> BTreeMap<String, TestResult> {
    let mut results = BTreeMap::new();
    let mut messages = BTreeMap::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("FAILED ").or(line.strip_prefix("ERROR ")) {
            if let Some((id, message)) = rest.split_once(" - ") {
                messages.insert(id.to_string(), message.to_string());
            }
            continue;
        }
        if !line.contains("::") {
            continue;
        }
        // Drop the progress `[ 50%]`.
        let body = match line.rfind(" [") {
            Some(at) if line.trim_end().ends_with("%]") => &line[..at],
            _ => line,
        };
        let body = body.trim_end();
        // The result word after the id, alone or with its reason after it.
        let word = RESULTS.iter().find_map(|w| {
            let at = body.rfind(&format!(" {w}"))?;
            let after = &body[at + 1 + w.len()..];
            (after.is_empty() || after.starts_with(" (")).then_some((at, *w))
        });
        let (id, result) = match word {
            Some((at, w)) => {
                let r = match w {
                    "PASSED" | "XFAIL" => TestResult::Ok,
                    "SKIPPED" => TestResult::Skipped,
                    _ => TestResult::Failed(String::new()),
                };
                (body[..at].trim_end(), r)
            }
            None => (body, TestResult::Running),
        };
        results.insert(id.to_string(), result);
    }
    for (id, message) in messages {
        if let Some(TestResult::Failed(m)) = results.get_mut(&id) {
            *m = crate::text::bounded(&message, 400);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verbose_output_says_what_each_test_did_and_which_was_running() {
        let out = "============ test session starts ============\n\
                   t.py::test_a PASSED                     [ 25%]\n\
                   t.py::test_b[x y] FAILED                [ 50%]\n\
                   t.py::test_c SKIPPED (slow)             [ 75%]\n\
                   t.py::test_d \n\
                   =========== short test summary info ===========\n\
                   FAILED t.py::test_b[x y] - assert 1 == 2\n";
        let r = results(out);
        assert_eq!(r["t.py::test_a"], TestResult::Ok);
        assert_eq!(
            r["t.py::test_b[x y]"],
            TestResult::Failed("assert 1 == 2".into())
        );
        assert_eq!(r["t.py::test_c"], TestResult::Skipped);
        assert_eq!(r["t.py::test_d"], TestResult::Running);
    }
}
