//! Issue 15, item 1: scenarios state what each strategy is expected to give
//! (`[expect]`), and `lab run` and `lab soak` exit 0 when every strategy met
//! it and 1 when one did not, saying "as expected" or "UNEXPECTED" per
//! strategy.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{json, lab, out_dir, strategy};

/// The text of a shipped scenario.
fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(path).unwrap()
}

/// `nested` with legacy expected to pass: its expectation broken on purpose,
/// written to `dir`.
fn broken_nested(dir: &Path) -> PathBuf {
    let text = shipped("nested");
    let line = "legacy = [\"orphan\"]";
    assert!(text.contains(line), "nested expects orphans of legacy");
    let path = dir.join("nested-broken.toml");
    std::fs::write(&path, text.replace(line, "legacy = [\"pass\"]")).unwrap();
    path
}

/// Every key of `v`, at any depth, is snake_case.
fn assert_snake_case_keys(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert!(
                    k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "key `{k}` is not snake_case"
                );
                assert_snake_case_keys(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_snake_case_keys),
        _ => {}
    }
}

fn run_args<'a>(scenario: &'a str, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        scenario,
        "--seed",
        "1",
        "--trials",
        "5",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

fn lab_run_nested_exits_0_as_expected_under_both_strategies() {
    let dir = out_dir("expect-nested");
    let out = lab(&run_args("nested", &dir, &[]), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for s in ["canonical", "legacy"] {
        assert!(
            text.contains(&format!("\n{s}: expectation: as expected (")),
            "{s}: {text}"
        );
    }
    // One A/B table: strategies as columns, the verdicts seen and pass as
    // rows, no row of a verdict nobody gave.
    let header = text.lines().find(|l| l.starts_with("verdict ")).unwrap();
    assert!(
        header.contains("canonical") && header.contains("legacy"),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("orphan ")), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("hang ")), "{text}");
    // The scenario's about, and one plain sentence for the failing one.
    assert!(text.contains("Kill one interior node"), "{text}");
    assert!(
        text.contains("\nlegacy: in 5 of 5 trials a process outlived the teardown (orphan): "),
        "{text}"
    );
    assert!(text.contains("\nevery strategy as expected\n"), "{text}");
    assert!(!text.contains("UNEXPECTED"), "{text}");

    let out = lab(&run_args("nested", &dir, &["--format", "json"]), &[]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["as_expected"], true, "{v}");
    let canonical = &strategy(&v, "canonical")["expectation"];
    assert_eq!(canonical["status"], "as_expected", "{canonical}");
    assert_eq!(canonical["source"], "scenario");
    assert_eq!(canonical["expected"], serde_json::json!(["pass"]));
    assert_eq!(canonical["unexpected"], serde_json::json!([]));
    let legacy = &strategy(&v, "legacy")["expectation"];
    assert_eq!(legacy["status"], "as_expected", "{legacy}");
    assert_eq!(legacy["expected"], serde_json::json!(["orphan"]));
    for r in v["results"].as_array().unwrap() {
        assert_snake_case_keys(&r["expectation"]);
    }
    assert_snake_case_keys(&serde_json::json!({ "as_expected": v["as_expected"] }));
    let _ = std::fs::remove_dir_all(dir);
}

fn a_broken_expectation_exits_1_with_unexpected() {
    let tmp = tempfile::tempdir().unwrap();
    let file = broken_nested(tmp.path());
    let file = file.to_str().unwrap();
    let dir = out_dir("expect-broken");
    let out = lab(&run_args(file, &dir, &[]), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "legacy: expectation: UNEXPECTED: orphan x5 (expected pass; the scenario's [expect])"
        ),
        "{text}"
    );
    assert!(text.contains("\nUNEXPECTED under legacy\n"), "{text}");
    // Canonical still met its own.
    assert!(
        text.contains("canonical: expectation: as expected (pass;"),
        "{text}"
    );

    let out = lab(&run_args(file, &dir, &["--format", "json"]), &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["as_expected"], false);
    let legacy = &strategy(&v, "legacy")["expectation"];
    assert_eq!(legacy["status"], "unexpected", "{legacy}");
    assert_eq!(
        legacy["unexpected"],
        serde_json::json!([{ "verdict": "orphan", "trials": 5 }])
    );
    assert_eq!(
        strategy(&v, "canonical")["expectation"]["status"],
        "as_expected"
    );
    // A strategy the file does not name must pass every trial, as before.
    let out = lab(
        &run_args(
            "nested",
            &dir,
            &["--strategy", "pdeathsig-checked", "--format", "json"],
        ),
        &[],
    );
    let v = json(&out);
    let e = &strategy(&v, "pdeathsig-checked")["expectation"];
    assert_eq!(e["source"], "default", "{e}");
    assert_eq!(
        out.status.code(),
        Some(if e["status"] == "as_expected" { 0 } else { 1 }),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `lab soak --trials 3 --progress none --format json --out DIR` of `scenario`
/// plus `extra`: the exit status and the summary.
fn soak(scenario: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let dir = out_dir("expect-soak");
    let mut args = vec![
        "soak",
        "--scenario",
        scenario,
        "--trials",
        "3",
        "--progress",
        "none",
        "--format",
        "json",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = lab(&args, &[]);
    let v = json(&out);
    let _ = std::fs::remove_dir_all(dir);
    (out.status.code(), v)
}

fn soak_group<'a>(v: &'a Value, strat: &str) -> &'a Value {
    v["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["strategy"] == strat)
        .unwrap_or_else(|| panic!("no expectation of {strat} in {v}"))
}

fn soak_status<'a>(v: &'a Value, strat: &str) -> &'a Value {
    &soak_group(v, strat)["status"]
}

fn lab_soak_judges_the_file_s_expectation_and_gate_overrides_it() {
    let (code, v) = soak("nested", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(soak_status(&v, "legacy"), "as_expected");
    assert_eq!(soak_status(&v, "canonical"), "as_expected");
    assert_snake_case_keys(&v["expectations"]);

    let tmp = tempfile::tempdir().unwrap();
    let file = broken_nested(tmp.path());
    let file = file.to_str().unwrap();
    let (code, v) = soak(file, &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(soak_status(&v, "legacy"), "unexpected");
    // With the commands that replay the unexpected trials.
    let replay = soak_group(&v, "legacy")["replay"][0].as_str().unwrap();
    assert!(
        replay.contains(" --strategy legacy --trials 1") && replay.ends_with("# orphan"),
        "{replay}"
    );
    // --gate overrides the file's expectation of the strategy it names.
    let (code, v) = soak(file, &["--gate", "legacy:orphan"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(soak_status(&v, "legacy"), "as_expected");
    assert_eq!(v["gate"]["failures"], 0);
}

tests! {
    lab_run_nested_exits_0_as_expected_under_both_strategies;
    a_broken_expectation_exits_1_with_unexpected;
    lab_soak_judges_the_file_s_expectation_and_gate_overrides_it;
}
