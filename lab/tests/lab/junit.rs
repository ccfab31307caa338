//! Issue 15, items 4 and 7: `--junit FILE` (one test case per scenario x
//! strategy cell, read back with a JUnit reader of the registries) and
//! `--max-diagnoses N` (at most N diagnoses written per cell, the rest
//! counted; the CSV keeps every row).

use std::path::{Path, PathBuf};

use super::{json, lab, out_dir};

/// `nested` renamed `nested-broken`, with legacy expected to pass: its
/// expectation broken on purpose, written to `dir`.
fn broken_nested(dir: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nested.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    for line in ["legacy = [\"orphan\"]", "name = \"nested\""] {
        assert!(text.contains(line), "nested.toml has no `{line}`");
    }
    let text = text
        .replace("legacy = [\"orphan\"]", "legacy = [\"pass\"]")
        .replace("name = \"nested\"", "name = \"nested-broken\"");
    let path = dir.join("nested-broken.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The JUnit file at `path`, parsed by `junit-parser`.
fn read_junit(path: &Path) -> junit_parser::TestSuites {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("no JUnit file at {}: {e}", path.display()));
    junit_parser::from_reader(std::io::BufReader::new(file))
        .unwrap_or_else(|e| panic!("{} does not parse as JUnit: {e}", path.display()))
}

/// `.json` diagnoses under `dir/diagnosis/`.
fn diagnoses(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("diagnosis")).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// The CTRF file at `path` parses, has the shape of the CTRF schema, and
/// says what the JUnit report `junit` says: the same tests, the same
/// failures, counts that add up.
fn check_ctrf(path: &Path, junit: &junit_parser::TestSuites) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no CTRF file at {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = &v["results"];
    assert_eq!(r["tool"]["name"], "lab", "{v}");
    let s = &r["summary"];
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("no summary.{k}: {s}"))
    };
    let tests = r["tests"].as_array().unwrap();
    assert_eq!(n("tests") as usize, tests.len());
    assert_eq!(
        n("passed") + n("failed") + n("pending") + n("skipped") + n("other"),
        n("tests")
    );
    assert!(
        n("start") > 1_600_000_000_000 && n("start") <= n("stop"),
        "{s}"
    );
    let mut from_junit: Vec<(String, String, bool)> = junit
        .suites
        .iter()
        .flat_map(|su| {
            su.cases.iter().map(|c| {
                (
                    su.name.clone(),
                    c.original_name.clone(),
                    c.status.is_failure(),
                )
            })
        })
        .collect();
    let mut from_ctrf: Vec<(String, String, bool)> = tests
        .iter()
        .map(|t| {
            let status = t["status"].as_str().unwrap();
            assert!(["passed", "failed"].contains(&status), "{t}");
            assert!(t["duration"].is_u64(), "{t}");
            assert_eq!(t.get("message").is_some(), status == "failed", "{t}");
            (
                t["suite"].as_str().unwrap().to_string(),
                t["name"].as_str().unwrap().to_string(),
                status == "failed",
            )
        })
        .collect();
    from_junit.sort();
    from_ctrf.sort();
    assert_eq!(from_ctrf, from_junit);
    assert_eq!(
        n("failed") as usize,
        from_ctrf.iter().filter(|t| t.2).count()
    );
}

fn a_casebook_soak_writes_one_junit_test_case_per_cell_and_a_broken_expectation_fails() {
    let dir = out_dir("junit-soak");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = broken_nested(&dir);
    let soak = dir.join("soak");
    let xml = dir.join("soak.xml");
    let ctrf = dir.join("soak.ctrf.json");
    let out = lab(
        &[
            "soak",
            "--scenario",
            "nested",
            "--scenario",
            "pdeathsig-race",
            "--scenario",
            broken.to_str().unwrap(),
            "--trials",
            "5",
            "--progress",
            "none",
            "--max-diagnoses",
            "1",
            "--out",
            soak.to_str().unwrap(),
            "--junit",
            xml.to_str().unwrap(),
            "--ctrf",
            ctrf.to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    check_ctrf(&ctrf, &read_junit(&xml));
    let report = read_junit(&xml);
    let mut cases = Vec::new();
    for suite in &report.suites {
        for c in &suite.cases {
            cases.push((suite.name.clone(), c.original_name.clone(), c));
        }
    }
    let mut cells: Vec<(String, String)> = cases
        .iter()
        .map(|(s, n, _)| (s.clone(), n.clone()))
        .collect();
    cells.sort();
    let want: Vec<(String, String)> = ["nested", "nested-broken", "pdeathsig-race"]
        .iter()
        .flat_map(|s| ["canonical", "legacy"].map(|st| (s.to_string(), st.to_string())))
        .collect();
    assert_eq!(cells, want, "one test case per scenario x strategy cell");
    for (suite, name, c) in &cases {
        if suite == "nested-broken" && name == "legacy" {
            assert!(c.status.is_failure(), "{suite} {name}: {:?}", c.status);
            let f = c.status.failure_as_ref();
            assert!(f.message.contains("UNEXPECTED: orphan x5"), "{}", f.message);
            assert!(f.message.contains("verdicts: orphan 5/5"), "{}", f.message);
            assert!(
                f.message.contains("replay: lab run ") && f.message.contains("--strategy legacy"),
                "{}",
                f.message
            );
            let diag = f
                .message
                .split("diagnosis: ")
                .nth(1)
                .unwrap_or_else(|| panic!("no diagnosis in {}", f.message));
            assert!(Path::new(diag).is_file(), "{diag} is no file");
        } else {
            assert!(c.status.is_success(), "{suite} {name}: {:?}", c.status);
        }
    }
    // --max-diagnoses 1: each legacy cell of nested wrote one of its 5.
    assert!(
        text.contains("diagnoses not written (--max-diagnoses 1 per cell"),
        "{text}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(soak.join("summary.json")).unwrap()).unwrap();
    // Every hang and orphan is diagnosed: each cell wrote the first of
    // its diagnosed trials and counted the rest as unwritten.
    let mut written = 0;
    for g in summary["groups"].as_array().unwrap() {
        let count = |v: &str| g["rates"][v]["count"].as_u64().unwrap();
        let diagnosed = count("hang") + count("orphan");
        let name = format!("{} {}", g["scenario"], g["strategy"]);
        assert_eq!(
            g["diagnoses_unwritten"].as_u64().unwrap(),
            diagnosed.saturating_sub(1),
            "{name}"
        );
        if g["strategy"] == "legacy" && g["scenario"].as_str().unwrap().starts_with("nested") {
            assert_eq!(diagnosed, 5, "{name}");
        }
        written += diagnosed.min(1) as usize;
    }
    assert_eq!(diagnoses(&soak), written);
    let _ = std::fs::remove_dir_all(dir);
}

fn max_diagnoses_bounds_the_files_written_and_the_csv_keeps_every_row() {
    let dir = out_dir("max-diagnoses");
    let xml = dir.join("run.xml");
    std::fs::create_dir_all(&dir).unwrap();
    let out = lab(
        &[
            "run",
            "nested",
            "--seed",
            "1",
            "--strategy",
            "legacy",
            "--trials",
            "6",
            "--max-diagnoses",
            "2",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
            "--junit",
            xml.to_str().unwrap(),
            "--ctrf",
            dir.join("run.ctrf.json").to_str().unwrap(),
        ],
        &[],
    );
    let v = json(&out);
    check_ctrf(&dir.join("run.ctrf.json"), &read_junit(&xml));
    assert_eq!(out.status.code(), Some(0), "{v}");
    let legacy = &v["results"][0];
    assert_eq!(legacy["orphan"], 6, "{legacy}");
    assert_eq!(legacy["diagnoses_unwritten"], 4);
    assert_eq!(v["max_diagnoses"], 2);
    let run_dir = Path::new(v["csv"].as_str().unwrap()).parent().unwrap();
    assert_eq!(diagnoses(run_dir), 2);
    let csv = std::fs::read_to_string(run_dir.join("trials.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "diagnosis")
        .unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows.iter().filter(|r| !r[at].is_empty()).count(), 2);
    // As expected: the test case passes.
    let report = read_junit(&xml);
    assert_eq!(report.suites.len(), 1);
    assert_eq!(report.suites[0].cases.len(), 1);
    assert!(report.suites[0].cases[0].status.is_success());
    // The text says so too.
    let out = lab(
        &[
            "run",
            "nested",
            "--strategy",
            "legacy",
            "--trials",
            "3",
            "--max-diagnoses",
            "0",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("diagnoses: 3 not written (--max-diagnoses 0;"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_bad_junit_path_is_refused_before_anything_runs() {
    let dir = out_dir("junit-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no/such/dir/x.xml");
    for (cmd, target) in [
        ("run", missing.as_path()),
        ("soak", missing.as_path()),
        ("run", dir.as_path()),
    ] {
        let mut args = vec![cmd];
        if cmd == "run" {
            args.extend(["nested", "--trials", "1"]);
        } else {
            args.extend(["--scenario", "nested", "--trials", "1"]);
        }
        let out_arg = dir.join("out");
        args.extend(["--out", out_arg.to_str().unwrap()]);
        args.extend(["--junit", target.to_str().unwrap()]);
        let out = lab(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd} {target:?}: {err}");
        assert!(
            err.contains("--junit") && err.contains("nothing was run"),
            "{err}"
        );
        assert!(!dir.join("out").exists(), "{cmd} ran");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn a_suite_writes_one_junit_test_case_per_member_and_the_order_dependent_one_fails() {
    let dir = out_dir("junit-suite");
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("suite.xml");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/suites/attendant.toml");
    let out = lab(
        &[
            "suite",
            suite.to_str().unwrap(),
            "--strategy",
            "legacy",
            "--repeat",
            "2",
            "--junit",
            xml.to_str().unwrap(),
            "--ctrf",
            dir.join("suite.ctrf.json").to_str().unwrap(),
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    check_ctrf(&dir.join("suite.ctrf.json"), &read_junit(&xml));
    let report = read_junit(&xml);
    assert_eq!(report.suites.len(), 1);
    let cases = &report.suites[0].cases;
    assert_eq!(cases.len(), 7, "one test case per member");
    for c in cases {
        if c.original_name == "fork-then-ask" {
            let f = c.status.failure_as_ref();
            assert_eq!(f.failure_type, "order-dependent");
            assert!(
                f.message.contains("in the suite: hang 2/2")
                    && f.message.contains("replay: lab suite ")
                    && f.message.contains("--members ")
                    && f.message.contains("find the cause: lab bisect "),
                "{}",
                f.message
            );
        } else {
            assert!(c.status.is_success(), "{}: {:?}", c.original_name, c.status);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `lab exec --junit FILE`: one test case for the program, a failure whose
/// message carries the verdict counts.
fn exec_writes_a_junit_case_for_the_program() {
    let dir = out_dir("exec-junit");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("junit.xml");
    let out = lab(
        &[
            "exec",
            "--trials",
            "2",
            "--out",
            dir.to_str().unwrap(),
            "--junit",
            file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 5",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = read_junit(&file);
    assert_eq!(report.suites.len(), 1);
    let case = &report.suites[0].cases[0];
    assert!(case.status.is_failure(), "{:?}", case.status);
    let text = format!("{:?}", case.status);
    assert!(text.contains("fail"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_casebook_soak_writes_one_junit_test_case_per_cell_and_a_broken_expectation_fails;
    max_diagnoses_bounds_the_files_written_and_the_csv_keeps_every_row;
    a_bad_junit_path_is_refused_before_anything_runs;
    a_suite_writes_one_junit_test_case_per_member_and_the_order_dependent_one_fails;
    exec_writes_a_junit_case_for_the_program;
}
