//! A Rust test binary (the libtest harness) as a suite source: its list
//! (`BIN --list --format terse`: `NAME: test` lines), and what its output
//! says of each test (`test NAME ... ok`, `FAILED`, `ignored`; a started
//! test's `test NAME ... ` line with no result yet is the test that was
//! running; a failure's message is its `---- NAME stdout ----` section).
//! Also the plain list of a generic runner: one name a line.

use std::collections::BTreeMap;
use std::time::Duration;

use super::capture::capture;
use super::test_result::TestResult;
use crate::error::LabError;

/// The tests of the libtest binary `bin`, in its order (sorted by name);
/// ignored tests only with `include_ignored`.
///
/// # Errors
/// [`LabError::Input`] when `bin` cannot start, fails, hangs, prints what is
/// not a libtest list, or lists no test.
pub fn list(bin: &str, include_ignored: bool, deadline: Duration) -> Result<Vec<String>, LabError> {
    let what = format!("--libtest {bin}");
    let argv = |extra: &[&str]| {
        let mut v = vec![
            bin.to_string(),
            "--list".into(),
            "--format".into(),
            "terse".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (code, text) = capture(&what, &argv(&[]), deadline)?;
    let all = parse_list(&what, code, &text)?;
    if include_ignored {
        return Ok(all);
    }
    let (code, text) = capture(&what, &argv(&["--ignored"]), deadline)?;
    let ignored = parse_list(&what, code, &text)?;
    Ok(all.into_iter().filter(|t| !ignored.contains(t)).collect())
}

/// How long `cargo test --no-run` may take before it is killed.
const BUILD_DEADLINE: Duration = Duration::from_secs(3600);

/// Build the test binaries of `cargo test --no-run --message-format json
/// ARGS` (`-p CRATE`, `--test NAME`, `--lib`, ...) and return the one it
/// makes (cargo's `executable`).
///
/// # Errors
/// [`LabError::Input`] when cargo cannot start or fails, or makes no test
/// binary or several (with their paths: choose one with `--test NAME` or
/// `--lib`, or give it to `--libtest`).
pub fn cargo_build(args: &[String]) -> Result<String, LabError> {
    let mut argv: Vec<String> = ["cargo", "test", "--no-run", "--message-format", "json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.extend(args.iter().cloned());
    let what = format!("--cargo-test {}", args.join(" "));
    let (code, text) = capture(&what, &argv, BUILD_DEADLINE)?;
    if code != Some(0) {
        return Err(LabError::Input(format!(
            "{what}: `{}` failed; run it yourself to see why",
            argv.join(" ")
        )));
    }
    let mut bins: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|m| m["executable"].as_str().map(str::to_string))
        .collect();
    bins.sort();
    bins.dedup();
    match bins.len() {
        1 => Ok(bins.remove(0)),
        0 => Err(LabError::Input(format!(
            "{what}: cargo built no test binary; name a crate with -p CRATE"
        ))),
        _ => Err(LabError::Input(format!(
            "{what}: cargo built {} test binaries ({}); choose one with --test NAME or --lib \
             after --, or give its path to --libtest",
            bins.len(),
            bins.join(", ")
        ))),
    }
}

/// The `NAME: test` lines of a libtest listing (benchmarks left out).
///
/// # Errors
/// [`LabError::Input`] for a failed listing or a line of another form.
fn parse_list(what: &str, code: Option<i32>, text: &str) -> Result<Vec<String>, LabError> {
    if code != Some(0) {
        return Err(LabError::Input(format!(
            "{what}: `--list --format terse` {}; is it a Rust test binary (cargo test --no-run \
             prints their paths)?",
            code.map_or("was killed by a signal".into(), |c| format!(
                "exited with status {c}"
            ))
        )));
    }
    let mut tests = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(name) = line.strip_suffix(": test") {
            tests.push(name.to_string());
        } else if line.ends_with(": bench") {
        } else {
            return Err(LabError::Input(format!(
                "{what}: not a libtest binary: its `--list --format terse` printed `{}` (a libtest \
                 binary prints `NAME: test` lines); give a test binary (cargo test --no-run \
                 prints their paths)",
                crate::text::bounded(line, 80)
            )));
        }
    }
    Ok(tests)
}

/// The tests a generic runner's list command prints, one a line (blank
/// lines skipped).
///
/// # Errors
/// [`LabError::Input`] when the command cannot start, fails, hangs, or
/// prints a line with a control character.
pub fn list_lines(list: &[String], deadline: Duration) -> Result<Vec<String>, LabError> {
    let what = format!("--list-cmd {}", list.join(" "));
    let (code, text) = capture(&what, list, deadline)?;
    if code != Some(0) {
        return Err(LabError::Input(format!(
            "{what}: {}; the list command must print one test name a line and exit 0",
            code.map_or("was killed by a signal".into(), |c| format!(
                "exited with status {c}"
            ))
        )));
    }
    let mut tests = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.chars().any(char::is_control) || line.contains('\u{fffd}') {
            return Err(LabError::Input(format!(
                "{what}: printed `{}`, not a test name (a control character or invalid UTF-8); \
                 the list command must print one test name a line",
                crate::text::bounded(&line.escape_debug().to_string(), 80)
            )));
        }
        tests.push(line.to_string());
    }
    Ok(tests)
}

/// What libtest's output says of each test it started: `test NAME ... ok`,
/// `FAILED`, `ignored`; a `test NAME ... ` line without a result is the
/// test that was running. A failure's message is the first lines of its
/// `---- NAME stdout ----` section.
pub fn results(stdout: &str) -> BTreeMap<String, TestResult> {
    let mut results = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.split_once(" ... ") else {
            if let Some(name) = rest.strip_suffix(" ...") {
                results.insert(name.to_string(), TestResult::Running);
            }
            continue;
        };
        let r = match result.trim() {
            "ok" => TestResult::Ok,
            "FAILED" => TestResult::Failed(failure_message(stdout, name)),
            r if r.starts_with("ignored") => TestResult::Skipped,
            _ => TestResult::Running,
        };
        results.insert(name.to_string(), r);
    }
    results
}

/// The first lines (at most 4, 400 characters) of test `name`'s failure
/// section, `---- NAME stdout ----` up to the next section or the summary.
fn failure_message(stdout: &str, name: &str) -> String {
    let header = format!("---- {name} stdout ----");
    let Some(at) = stdout.find(&header) else {
        return String::new();
    };
    let lines: Vec<&str> = stdout[at + header.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.starts_with("---- ") && *l != "failures:")
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .take(4)
        .collect();
    crate::text::bounded(&lines.join(" / "), 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_name_colon_test_lines() {
        let l = parse_list("x", Some(0), "a::b: test\nc: test\nd: bench\n\n").unwrap();
        assert_eq!(l, ["a::b", "c"]);
        let e = parse_list("x", Some(0), "hello world\n").unwrap_err();
        assert!(e.to_string().contains("not a libtest binary"), "{e}");
        let e = parse_list("x", Some(1), "").unwrap_err();
        assert!(e.to_string().contains("exited with status 1"), "{e}");
    }

    #[test]
    fn the_output_says_what_each_test_did_and_which_was_running() {
        let out = "\nrunning 4 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... ignored, slow\n\
                   test d ... \n\nfailures:\n\n---- b stdout ----\n\nthread 'b' panicked at \
                   src/lib.rs:3:5:\nassertion failed: x\nnote: run with `RUST_BACKTRACE=1`\n\n\
                   failures:\n    b\n";
        let r = results(out);
        assert_eq!(r["a"], TestResult::Ok);
        assert_eq!(
            r["b"],
            TestResult::Failed(
                "thread 'b' panicked at src/lib.rs:3:5: / assertion failed: x".into()
            )
        );
        assert_eq!(r["c"], TestResult::Skipped);
        assert_eq!(r["d"], TestResult::Running);
        // The last line, not yet ended by a newline.
        assert_eq!(results("test e ... ")["e"], TestResult::Running);
    }
}
