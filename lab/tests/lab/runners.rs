//! Real test runners as suite sources: `lab suite` and `lab bisect` over a
//! Rust test binary (`--libtest`) and any runner (`--list-cmd`,
//! `--run-cmd`). The fixture crate `lab/tests/fixtures/attendant-tests`
//! (a workspace of its own: never built or run by `cargo test
//! --workspace`) has the attendant bug of casebook 4b among 22 innocent
//! tests; `--features fixed` is the same crate fixed. The tests build it
//! with cargo (offline: it has no dependency) under `target/lab-fixtures`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use super::{crate_path, json, lab, named};

/// The victim: passes alone, hangs after `cache::warm_cache`.
const VICTIM: &str = "spawn::fork_then_ask";
/// The polluter.
const POLLUTER: &str = "cache::warm_cache";
/// The deadline of each test-process run (and of a listing): what a hang
/// costs. The fixture's 24 tests take milliseconds.
const DEADLINE: &str = "3s";
/// The same for pytest, whose start alone (the interpreter, pytest's
/// imports) takes a second or more on a loaded machine.
const PYTEST_DEADLINE: &str = "8s";

/// The fixture's test binary, built once per test process (`fixed`: with
/// `--features fixed`).
fn fixture(fixed: bool) -> &'static str {
    static BROKEN: OnceLock<String> = OnceLock::new();
    static FIXED: OnceLock<String> = OnceLock::new();
    let cell = if fixed { &FIXED } else { &BROKEN };
    cell.get_or_init(|| build(fixed))
}

/// `cargo test --no-run` of the fixture crate; the test binary's path from
/// cargo's messages.
fn build(fixed: bool) -> String {
    let dir = crate_path("tests/fixtures", "attendant-tests");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lab-fixtures");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--no-run", "--offline", "--message-format", "json"])
        .arg("--manifest-path")
        .arg(Path::new(&dir).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    if fixed {
        cmd.args(["--features", "fixed"]);
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "cannot build the fixture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|m| m["executable"].as_str().map(str::to_string))
        .expect("cargo names the test binary")
}

/// `lab COMMAND --deadline 2s --format json --out DIR ARGS...` (a fresh `DIR`,
/// removed after; the number of rows its `trials.csv` had, under the
/// `csv_rows` key of the JSON).
fn lab_json(args: &[&str]) -> (Output, Value) {
    let dir = super::out_dir("runners");
    // The options after the command, before any arguments after `--`.
    let mut all = vec![args[0], "--deadline", DEADLINE, "--format", "json", "--out"];
    all.push(dir.to_str().unwrap());
    all.extend_from_slice(&args[1..]);
    let out = lab(&all, &[]);
    let mut v = json(&out);
    if let Some(csv) = v["csv"].as_str() {
        let rows = std::fs::read_to_string(csv).map_or(0, |t| t.lines().count() - 1);
        v["csv_rows"] = Value::from(rows);
    }
    let _ = std::fs::remove_dir_all(&dir);
    (out, v)
}

fn test_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no test {name}: {v}"))
}

fn a_test_that_hangs_only_after_its_polluter_is_named_with_its_signature() {
    let bin = fixture(false);
    let (out, v) = lab_json(&["suite", "--libtest", bin, "--repeat", "5"]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["source"], "libtest");
    assert!(v["order_note"].as_str().unwrap().contains("sorted order"));
    let tests = v["members"].as_array().unwrap();
    assert!(tests.len() >= 22, "{} tests", tests.len());
    let victim = test_of(&v, VICTIM);
    assert_eq!(
        victim["alone"]["verdicts"]["pass"].as_u64(),
        Some(5),
        "{victim}"
    );
    assert_eq!(victim["suite"]["runs"].as_u64(), Some(5), "{victim}");
    assert_eq!(
        victim["suite"]["verdicts"]["hang"].as_u64(),
        Some(5),
        "{victim}"
    );
    assert_eq!(
        named(&victim["suite"]["signatures"], "lone-futex-waiter"),
        Some(5),
        "{victim}"
    );
    let reasons = victim["suite"]["reasons"].to_string();
    assert!(
        reasons.contains(&format!("while test `{VICTIM}` was running")),
        "{reasons}"
    );
    assert_eq!(victim["order_dependent"], "fails-in-suite");
    // The only one: every other test that ran passed alone and in the suite.
    let found = v["order_dependent"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0]["bisect"]
        .as_str()
        .unwrap()
        .starts_with("lab bisect --libtest "));
    let command = found[0]["command"].as_str().unwrap();
    assert!(command.contains(&format!("{POLLUTER} ")), "{command}");
    for t in tests.iter().filter(|t| t["name"] != VICTIM) {
        assert_eq!(t["order_dependent"], Value::Null, "{t}");
        assert_eq!(t["broken"], false, "{t}");
        assert_eq!(t["alone"]["verdicts"]["pass"].as_u64(), Some(5), "{t}");
    }
    // The test process hung in every run of the whole suite.
    assert_eq!(v["process"]["verdicts"]["hang"].as_u64(), Some(5), "{v}");
    // Every run of the test process is a row of the results.
    assert_eq!(v["csv_rows"].as_u64(), v["runs"].as_u64(), "{v}");
    assert_eq!(v["clean"], false);
}

fn the_fixed_crate_is_clean_and_prints_its_bound() {
    let bin = fixture(true);
    let (out, v) = lab_json(&["suite", "--libtest", bin, "--repeat", "5", "--expect-clean"]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["clean"], true);
    assert_eq!(v["failing_suite_runs"].as_u64(), Some(0));
    assert_eq!(v["suite_runs"].as_u64(), Some(5));
    let bound = v["bound"].as_str().unwrap();
    assert!(
        bound.starts_with("0 failing runs in 5 suite runs (95% upper bound "),
        "{bound}"
    );
    let victim = test_of(&v, VICTIM);
    assert_eq!(
        victim["suite"]["verdicts"]["pass"].as_u64(),
        Some(5),
        "{victim}"
    );
    // Text: the bound is printed.
    let dir = super::out_dir("runners");
    let out = lab(
        &[
            "suite",
            "--libtest",
            bin,
            "--repeat",
            "1",
            "--expect-clean",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("clean: 0 failing runs in 1 suite run (95% upper bound "),
        "{text}"
    );
}

fn bisect_names_the_polluting_test_and_the_command_that_replays_it() {
    let bin = fixture(false);
    let (out, v) = lab_json(&[
        "bisect",
        "--libtest",
        bin,
        "--victim",
        VICTIM,
        "--repeat",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let polluters: Vec<&str> = v["polluters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(polluters, [POLLUTER]);
    // The candidates: the tests libtest runs before the victim.
    let preds = v["predecessors"].as_array().unwrap();
    assert!(preds.len() >= 18 && preds.iter().all(|p| p.as_str().unwrap() < VICTIM));
    let command = v["command"].as_str().unwrap();
    assert_eq!(
        command,
        format!("{bin} --exact {POLLUTER} {VICTIM} --test-threads=1")
    );
    // Runs: the checks and about log2(18) steps of at most 3 runs.
    let runs = v["runs"].as_u64().unwrap();
    assert!(runs <= 3 * (2 + 2 * 5 + 4), "{runs} runs");
    // The command replays it: the test process hangs, bare, under a timeout.
    let replay = v["replay"].as_str().unwrap();
    assert!(
        replay.contains(&format!("--only {POLLUTER} --only {VICTIM}")),
        "{replay}"
    );
}

fn bad_runners_and_names_are_refused_with_status_2() {
    let bin = fixture(false);
    let cases: &[(&[&str], &str)] = &[
        (&["suite", "--libtest", "/bin/echo"], "not a libtest binary"),
        (&["suite", "--libtest", "/bin/true"], "lists no test"),
        (
            &["suite", "--libtest", "/nonexistent/tests"],
            "cannot start",
        ),
        (
            &["suite", "--libtest", "/bin/false"],
            "exited with status 1",
        ),
        (
            &["bisect", "--libtest", bin, "--victim", "nope"],
            "no test `nope` in its list",
        ),
        (
            &["suite", "--libtest", bin, "--only", "a b; rm -rf /"],
            "no test `a b; rm -rf /`",
        ),
        (&["suite", "--libtest", bin, "--reverse"], "sorted order"),
        (
            &[
                "suite",
                "--list-cmd",
                "sleep 100",
                "--run-cmd",
                "true {names}",
                "--deadline",
                "1s",
            ],
            "did not finish within 1 s",
        ),
        (
            &[
                "suite",
                "--list-cmd",
                "printf \\001",
                "--run-cmd",
                "true {names}",
            ],
            "not a test name",
        ),
        (
            &["suite", "--list-cmd", "true", "--run-cmd", "true"],
            "no {names} word",
        ),
    ];
    for (args, message) in cases {
        let out = lab(args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `lab ARGS...` run in `dir`, the lab's own marker checked as [`lab`]
/// does.
fn lab_in(dir: &str, args: &[&str]) -> Output {
    let results = super::out_dir("runners");
    let marker = super::Marker::new();
    // `--out DIR` after the command, before pytest's arguments.
    let out = marker
        .command(super::LAB)
        .arg(args[0])
        .arg("--out")
        .arg(&results)
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("run lab");
    marker.assert_gone(&format!("`lab {}` in {dir}", args.join(" ")));
    let _ = std::fs::remove_dir_all(&results);
    out
}

fn pytest_runs_the_given_ids_in_the_given_order_and_finds_the_polluter() {
    let dir = crate_path("tests/fixtures", "pytest-attendant");
    let victim = "test_attendant.py::test_fork_then_ask";
    let polluter = "test_attendant.py::test_warm_cache";
    let json = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--deadline",
            PYTEST_DEADLINE,
            "--format",
            "json",
            "--",
            "test_attendant.py",
        ]);
        let out = lab_in(&dir, &all);
        let v = super::json(&out);
        (out, v)
    };
    let (out, v) = json(&["suite", "--pytest", "--repeat", "3"]);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["source"], "pytest");
    let t = test_of(&v, victim);
    assert_eq!(t["alone"]["verdicts"]["pass"].as_u64(), Some(3), "{t}");
    assert_eq!(t["suite"]["verdicts"]["hang"].as_u64(), Some(3), "{t}");
    assert_eq!(
        named(&t["suite"]["signatures"], "lone-futex-waiter"),
        Some(3),
        "{t}"
    );
    assert_eq!(v["order_dependent"].as_array().unwrap().len(), 1, "{v}");
    // The ids given run in the order given: the victim before the
    // polluter passes (pytest alone would run them in the file's order).
    let (out, v) = json(&[
        "suite", "--pytest", "--repeat", "1", "--only", victim, "--only", polluter,
    ]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["order"], serde_json::json!([victim, polluter]));
    assert_eq!(
        test_of(&v, victim)["suite"]["verdicts"]["pass"].as_u64(),
        Some(1),
        "{v}"
    );
    let (out, v) = json(&["bisect", "--pytest", "--victim", victim, "--repeat", "2"]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["polluters"], serde_json::json!([polluter]));
}

fn any_runner_that_lists_and_runs_names_is_a_source_and_names_are_never_split() {
    let dir = crate_path("tests/fixtures", "shell-runner");
    let source = [
        "--list-cmd",
        "./run-tests --list",
        "--run-cmd",
        "./run-tests {names}",
    ];
    let mut args = vec!["suite"];
    args.extend(source);
    args.extend(["--repeat", "2", "--format", "json"]);
    let out = lab_in(&dir, &args);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["source"], "command");
    // The name with spaces and shell metacharacters reached the runner as
    // one argument, unchanged (its case checks that), and passed.
    let odd = test_of(&v, "it's $(echo pwned); x");
    assert_eq!(odd["suite"]["verdicts"]["pass"].as_u64(), Some(2), "{odd}");
    assert_eq!(odd["alone"]["verdicts"]["pass"].as_u64(), Some(2), "{odd}");
    let victim = test_of(&v, "checks state");
    assert_eq!(victim["order_dependent"], "fails-in-suite", "{victim}");
    assert_eq!(
        victim["suite"]["verdicts"]["fail"].as_u64(),
        Some(2),
        "{victim}"
    );
    let reasons = victim["suite"]["reasons"].to_string();
    assert!(
        reasons.contains("the runner reports test `checks state` failed"),
        "{reasons}"
    );
    // A test that leaves a process behind: a leak alone (the holder named
    // with its lineage), the test process's leak in the whole list, and
    // neither order-dependent nor clean.
    let sleeper = test_of(&v, "leaves a sleeper");
    assert_eq!(
        sleeper["alone"]["verdicts"]["leak"].as_u64(),
        Some(2),
        "{sleeper}"
    );
    assert_eq!(sleeper["broken"], true, "{sleeper}");
    assert_eq!(sleeper["order_dependent"], Value::Null, "{sleeper}");
    let reasons = sleeper["alone"]["reasons"].to_string();
    assert!(
        reasons.contains("fd 1 of pid N (`sleep 1000`)"),
        "{reasons}"
    );
    assert_eq!(v["process"]["verdicts"]["leak"].as_u64(), Some(2), "{v}");
    // A test that passes only after the one that sets the state it needs.
    let needs = test_of(&v, "needs the cache");
    assert_eq!(needs["order_dependent"], "passes-only-in-suite", "{needs}");
    assert_eq!(needs["broken"], false, "{needs}");
    assert_eq!(v["order_dependent"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["clean"], false);
    let mut args = vec!["bisect"];
    args.extend(source);
    args.extend([
        "--victim",
        "checks state",
        "--repeat",
        "1",
        "--format",
        "json",
    ]);
    let out = lab_in(&dir, &args);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["polluters"], serde_json::json!(["warm cache"]));
    assert_eq!(
        v["command"], "./run-tests 'warm cache' 'checks state'",
        "{v}"
    );
    // --opposite: what the test that fails alone needs before it.
    let mut args = vec!["bisect"];
    args.extend(source);
    args.extend([
        "--victim",
        "needs the cache",
        "--opposite",
        "--repeat",
        "1",
        "--format",
        "json",
    ]);
    let out = lab_in(&dir, &args);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["polluters"], serde_json::json!(["warm cache"]));
}

/// The generic source of the fixture `lab/tests/fixtures/flaky-runner`.
const FLAKY_SOURCE: [&str; 4] = [
    "--list-cmd",
    "./run-tests --list",
    "--run-cmd",
    "./run-tests {names}",
];

/// `lab bisect` over the flaky-runner fixture, `--format json`, in its
/// directory (nothing left running: [`lab_in`] checks the marker).
fn bisect_flaky_runner(args: &[&str]) -> (Output, Value) {
    let dir = crate_path("tests/fixtures", "flaky-runner");
    let mut all = vec!["bisect"];
    all.extend(FLAKY_SOURCE);
    all.extend_from_slice(args);
    all.extend(["--format", "json"]);
    let out = lab_in(&dir, &all);
    let v = json(&out);
    (out, v)
}

/// A real polluter that fails its victim in about half the runs
/// (`sometimes warm` draws a byte from /dev/urandom in each run) is found
/// with `--repeat 5` in at least nine of ten bisections. The ten are not
/// `--seed`ed: for a runner `--seed N` shuffles the order of its tests
/// (the polluter would follow the victim in about half the seeds), and
/// the chance here is the runner's own, a fresh draw in every run.
///
/// The check before the search, the victim after the whole list, runs up
/// to 3 x 5 times before it concludes that nothing pollutes (a polluter
/// that draws "clean" 15 times in a row: 1 in 32,768), so a miss is rare;
/// one that happens must be that one (the message says so). Each
/// bisection is 20 to 40 runs of a shell runner (tens of ms each under a
/// debug lab): 2 to 8 s in all.
fn a_flaky_real_polluter_is_found_in_nine_bisections_of_ten() {
    let mut found = 0;
    let mut runs = Vec::new();
    for _ in 0..10 {
        let (out, v) = bisect_flaky_runner(&["--victim", "checks warm", "--repeat", "5"]);
        runs.push(v["runs"].as_u64().unwrap());
        // The victim passes alone in every run, whatever was found.
        assert_eq!(v["alone"]["verdicts"]["pass"].as_u64(), Some(5), "{v}");
        if v["after_all"]["verdicts"]["pass"].as_u64() == Some(15) {
            // The polluter drew "clean" in all 15 runs of the check.
            assert_eq!(out.status.code(), Some(1), "{v}");
            let message = v["message"].as_str().unwrap();
            assert!(message.contains("passes after the whole list"), "{v}");
            eprintln!("missed: the check passed 15 of 15 runs");
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "{v}");
        assert_eq!(v["polluters"], serde_json::json!(["sometimes warm"]), "{v}");
        found += 1;
    }
    eprintln!("the flaky polluter found in {found} of 10 bisections; runs: {runs:?}");
    assert!(found >= 9, "found in {found} of 10; runs {runs:?}");
}

/// Two tests harmful only together (`sets left`, `sets right`) are found
/// as a pair, nothing else with them: the binary search finds no single
/// polluter and ddmin keeps both. `--repeat 1` (the pair is
/// deterministic): about 45 runs, mostly the binary search's steps before
/// ddmin; about a second.
fn two_real_polluters_harmful_only_together_are_found_as_a_pair() {
    let (out, v) = bisect_flaky_runner(&["--victim", "checks both", "--repeat", "1"]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        v["polluters"],
        serde_json::json!(["sets left", "sets right"]),
        "{v}"
    );
    assert_eq!(
        v["command"], "./run-tests 'sets left' 'sets right' 'checks both'",
        "{v}"
    );
    // The candidates: everything listed before the victim.
    assert_eq!(v["predecessors"].as_array().unwrap().len(), 24, "{v}");
    eprintln!("the pair found in {} runs", v["runs"]);
}

fn cargo_test_builds_the_binary_and_runs_its_tests() {
    fixture(false);
    let dir = crate_path("tests/fixtures", "attendant-tests");
    let manifest = format!("{dir}/Cargo.toml");
    let target = format!("{}/../target/lab-fixtures", env!("CARGO_MANIFEST_DIR"));
    let (out, v) = lab_json(&[
        "suite",
        "--cargo-test",
        "--only",
        VICTIM,
        "--repeat",
        "1",
        "--",
        "--offline",
        "--manifest-path",
        &manifest,
        "--target-dir",
        &target,
    ]);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["source"], "libtest");
    assert_eq!(v["file"], format!("libtest {}", fixture(false)));
    assert_eq!(
        test_of(&v, VICTIM)["alone"]["verdicts"]["pass"].as_u64(),
        Some(1)
    );
}

/// The holder of a leak that a runner's test leaves is named with who
/// started it. The kernel's process events give that; a `/proc` scan
/// (every 2 ms at most) can miss a parent that exits first.
fn a_runner_s_leaked_process_is_named_with_who_started_it() {
    let dir = crate_path("tests/fixtures", "shell-runner");
    let out = lab_in(
        &dir,
        &[
            "suite",
            "--list-cmd",
            "./run-tests --list",
            "--run-cmd",
            "./run-tests {names}",
            "--only",
            "leaves a sleeper",
            "--repeat",
            "1",
            "--format",
            "json",
        ],
    );
    let v = json(&out);
    let reasons = test_of(&v, "leaves a sleeper")["alone"]["reasons"].to_string();
    assert!(
        reasons.contains("(`sleep 1000`), started by `./run-tests"),
        "{reasons}"
    );
}

tests! {
    a_test_that_hangs_only_after_its_polluter_is_named_with_its_signature needs testkit::CARGO;
    the_fixed_crate_is_clean_and_prints_its_bound needs testkit::CARGO;
    bisect_names_the_polluting_test_and_the_command_that_replays_it needs testkit::CARGO;
    bad_runners_and_names_are_refused_with_status_2 needs testkit::CARGO;
    pytest_runs_the_given_ids_in_the_given_order_and_finds_the_polluter needs testkit::PYTEST;
    any_runner_that_lists_and_runs_names_is_a_source_and_names_are_never_split;
    a_runner_s_leaked_process_is_named_with_who_started_it needs crate::PROC_CONNECTOR;
    cargo_test_builds_the_binary_and_runs_its_tests needs testkit::CARGO;
    a_flaky_real_polluter_is_found_in_nine_bisections_of_ten;
    two_real_polluters_harmful_only_together_are_found_as_a_pair;
}
