//! Issue 15: one JSON style. Every command that prints something prints
//! JSON with `--format json`: it parses, has the top-level `schema`, every
//! object key is snake_case, and every seed is a string. `lab list` shows
//! whole sentences and, in JSON, each scenario's expectations.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{crate_path, json, lab, out_dir};

/// The schema number every JSON output carries (`lab/src/json.rs`).
const SCHEMA: u64 = 1;

/// Every object key below `v` that is not snake_case (`[a-z0-9_]+`), and
/// every seed that is not a string, as `path: what`.
fn bad_keys(v: &Value, path: &str, bad: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let here = format!("{path}.{k}");
                if k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    bad.push(format!("{here}: not snake_case"));
                }
                if k == "seed" && !x.is_string() {
                    bad.push(format!("{here}: a seed that is not a string ({x})"));
                }
                if k == "seeds" && !x.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    bad.push(format!("{here}: seeds that are not strings ({x})"));
                }
                bad_keys(x, &here, bad);
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|x| bad_keys(x, &format!("{path}[]"), bad)),
        _ => {}
    }
}

/// Assert that `v` (what `what` printed or wrote) has the schema, and
/// snake_case keys and string seeds throughout.
fn assert_style(what: &str, v: &Value) {
    assert_eq!(v["schema"].as_u64(), Some(SCHEMA), "{what}: no schema: {v}");
    let mut bad = Vec::new();
    bad_keys(v, "", &mut bad);
    assert!(bad.is_empty(), "{what}: {bad:#?}\n{v:#}");
}

/// `lab ARGS --format json`: its JSON, checked for the style, after
/// checking the exit status is one of `codes`.
fn lab_json(args: &[&str], codes: &[i32]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = lab(&all, &[]);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        codes.contains(&code),
        "lab {}: exit {code}\n{}",
        all.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_style(&all.join(" "), &v);
    v
}

/// The same check of a JSON file the lab wrote.
fn assert_file_style(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_style(&path.display().to_string(), &v);
}

/// The subcommands `lab --help` lists.
fn subcommands() -> BTreeSet<String> {
    let out = lab(&["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

fn every_command_prints_snake_case_json_with_its_schema() {
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let dir = out_dir("json");
    inspection_commands(&mut covered, &dir);
    trial_commands(&mut covered, &dir);
    analysis_and_suite_commands(&mut covered, &dir);

    // Every command but `help`; `plot`, whose `--format` names the charts'
    // file format (it prints the paths it wrote, one a line); and
    // `completions` and `man`, which print a shell script and a roff page
    // (tests/lab/shell.rs checks them); and `wrap`, whose stdout is its
    // program's, untouched (its report is a CSV row: tests/lab/wrap.rs).
    let missed: Vec<String> = subcommands()
        .into_iter()
        .filter(|c| {
            !covered.contains(c.as_str())
                && !["help", "plot", "completions", "man", "wrap"].contains(&c.as_str())
        })
        .collect();
    assert!(
        missed.is_empty(),
        "commands without a JSON check: {missed:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The commands that read and print without running a trial: `list`,
/// `strategies`, `env`, `janitor`, `plan` and `check`.
fn inspection_commands(covered: &mut BTreeSet<&str>, dir: &Path) {
    covered.insert("list");
    lab_json(&["list"], &[0]);
    covered.insert("strategies");
    let v = lab_json(&["strategies"], &[0]);
    assert_eq!(v["presets"][0]["name"], "canonical", "{v}");
    covered.insert("env");
    lab_json(&["env"], &[0]);
    covered.insert("janitor");
    lab_json(&["janitor"], &[0]);
    covered.insert("plan");
    let v = lab_json(&["plan", "nested", "--seed", "18446744073709551615"], &[0]);
    assert_eq!(v["seed"], "18446744073709551615", "{v}");

    // A good file, a refused plan and a bad file: exit 2, each in the JSON.
    covered.insert("check");
    let bad = dir.join("bad.toml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&bad, "about = 1\n").unwrap();
    let v = lab_json(
        &[
            "check",
            "nested",
            "mt-fork-attendant",
            bad.to_str().unwrap(),
        ],
        &[2],
    );
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{v}");
    assert_eq!(
        (&files[0]["ok"], &files[0]["nodes"]),
        (&true.into(), &15.into())
    );
    assert_eq!(files[1]["refusals"][0]["strategy"], "canonical", "{v}");
    assert_eq!(files[2]["ok"], false, "{v}");
    assert!(
        files[2]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{v}"
    );
}

/// The commands that run trials: `run`, `exec`, `soak` and `fuzz`.
fn trial_commands(covered: &mut BTreeSet<&str>, dir: &Path) {
    let d = |sub: &str| dir.join(sub).display().to_string();
    // A run with a diagnosis (a legacy hang), its summary.json the same.
    covered.insert("run");
    let v = lab_json(
        &[
            "run",
            "stdio-dup",
            "--trials",
            "1",
            "-j",
            "2",
            "--out",
            &d("run"),
        ],
        &[0, 1],
    );
    assert!(v["results"][1]["diagnosis"].is_object(), "{v}");
    for r in v["results"].as_array().unwrap() {
        assert!(r["rates"]["early_death"].is_object(), "{r}");
    }
    let run_dir = Path::new(v["csv"].as_str().unwrap()).parent().unwrap();
    assert_file_style(&run_dir.join("summary.json"));

    // A program of the user's that fails: the summary carries its output.
    covered.insert("exec");
    let exec_dir = d("exec");
    let args = [
        "exec",
        "--trials",
        "1",
        "--format",
        "json",
        "--out",
        &exec_dir,
        "--",
        "sh",
        "-c",
        "echo bad >&2; exit 2",
    ];
    let out = lab(&args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_style(&args.join(" "), &v);
    assert_eq!(v["results"][0]["output"]["tail"], "bad", "{v}");

    covered.insert("soak");
    let v = lab_json(
        &[
            "soak",
            "--scenario",
            "nested",
            "--scenario",
            "stdio-dup",
            "--trials",
            "2",
            "-j",
            "2",
            "--deadline",
            "100ms",
            "--progress",
            "none",
            "--out",
            &d("soak"),
        ],
        &[0, 1],
    );
    assert!(v["groups"][0]["rates"]["innocent_kill"].is_object(), "{v}");
    assert_file_style(&dir.join("soak/summary.json"));

    covered.insert("fuzz");
    let v = lab_json(
        &[
            "fuzz",
            "--cases",
            "3",
            "--out",
            &d("fuzz"),
            "--regressions",
            &d("fuzz-regressions"),
        ],
        &[0, 1],
    );
    assert_eq!(v["seed"], "1", "{v}");
    let fuzz_dir = Path::new(v["csv"].as_str().unwrap()).parent().unwrap();
    assert_file_style(&fuzz_dir.join("summary.json"));
}

/// The commands that read results or run suites: `merge`, `report`,
/// `bench`, `suite` and `bisect` (over the soak of [`trial_commands`]).
fn analysis_and_suite_commands(covered: &mut BTreeSet<&str>, dir: &Path) {
    let d = |sub: &str| dir.join(sub).display().to_string();
    let attendant = crate_path("../scenarios/suites", "attendant.toml");
    covered.insert("merge");
    lab_json(&["merge", &d("soak"), "--out", &d("merged")], &[0]);
    assert_file_style(&dir.join("merged/summary.json"));

    covered.insert("report");
    let v = lab_json(&["report", &d("soak")], &[0]);
    assert_eq!(v["trials"], 8, "2 scenarios x 2 strategies x 2 trials: {v}");

    covered.insert("bench");
    lab_json(&["bench", "--trials", "2", "-j", "1"], &[0]);

    covered.insert("suite");
    lab_json(
        &[
            "suite",
            &attendant,
            "--strategy",
            "legacy",
            "--repeat",
            "1",
            "--deadline",
            "200ms",
        ],
        &[0, 1],
    );
    covered.insert("bisect");
    lab_json(
        &[
            "bisect",
            &attendant,
            "--victim",
            "fork-then-ask",
            "--repeat",
            "1",
            "--deadline",
            "200ms",
        ],
        &[0, 1],
    );
}

fn list_prints_whole_sentences_and_its_json_the_expectations() {
    let out = lab(&["list"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    // Not a terminal: 80 columns.
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
    // The whole `about`, its last sentence included, wrapped.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&text).contains("so under `canonical` nothing survives."),
        "{text}"
    );
    assert!(
        text.contains("expect: canonical pass, legacy orphan"),
        "{text}"
    );

    let v = lab_json(&["list"], &[0]);
    let scenarios = v["scenarios"].as_array().unwrap();
    let nested = scenarios.iter().find(|s| s["name"] == "nested").unwrap();
    assert_eq!(nested["nodes"], 15);
    assert!(nested["about"]
        .as_str()
        .unwrap()
        .ends_with("so under `canonical` nothing survives."));
    assert_eq!(
        nested["expect"],
        serde_json::json!([
            {"strategy": "canonical", "verdicts": ["pass"]},
            {"strategy": "legacy", "verdicts": ["orphan"]},
        ])
    );
    // Every built-in scenario states its expectations.
    for s in scenarios {
        assert!(s["expect"].as_array().is_some_and(|e| !e.is_empty()), "{s}");
    }
}

tests! {
    every_command_prints_snake_case_json_with_its_schema;
    list_prints_whole_sentences_and_its_json_the_expectations;
}
