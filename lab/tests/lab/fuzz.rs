//! `lab fuzz`: generated scenarios run as real trials. Under `legacy` seed
//! 1 finds a failing case (a daemon that escapes the group kill: casebook
//! 6) and shrinks it to a small tree whose file replays with `lab run` to
//! the same verdict; under `canonical` the same cases all hold the
//! property; the JUnit file carries the failing strategy; and the next run
//! replays the kept regression first. Under `legacy` seed 99, case 0 hangs
//! (an attendant's copy, `lone-futex-waiter`) and one of its shrink
//! candidates is a daemon orphan: the shrink keeps the hang; and the first
//! 14 cases of seed 99 fall in two failure classes, each listed and shrunk.

use super::*;

/// `lab fuzz --format json --seed 1 --cases CASES --out DIR --regressions
/// REG` with `extra`; the JSON summary and the exit status.
fn fuzz(cases: &str, dir: &Path, regressions: &Path, extra: &[&str]) -> (Value, i32) {
    fuzz_seed("1", cases, dir, regressions, extra)
}

/// [`fuzz`] with `--seed SEED`.
fn fuzz_seed(
    seed: &str,
    cases: &str,
    dir: &Path,
    regressions: &Path,
    extra: &[&str],
) -> (Value, i32) {
    let mut args = vec![
        "fuzz",
        "--format",
        "json",
        "--seed",
        seed,
        "--cases",
        cases,
        "--out",
        dir.to_str().unwrap(),
        "--regressions",
        regressions.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = lab(&args, &[]);
    (json(&out), out.status.code().unwrap_or(-1))
}

fn legacy_fails_shrinks_replays_and_is_kept_as_a_regression() {
    let dir = out_dir("fuzz-legacy");
    let regressions = dir.join("regressions");
    let junit = dir.join("fuzz-junit.xml");
    std::fs::create_dir_all(&dir).unwrap();
    let (v, code) = fuzz(
        "12",
        &dir,
        &regressions,
        &[
            "--strategy",
            "legacy",
            "--repeat",
            "2",
            "--shrink-steps",
            "40",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "a failing case exits 1: {v}");
    assert_eq!(v["seed"], "1", "seeds travel as strings");
    assert_eq!(v["regressions"]["replayed"], 0);
    let s = &v["strategies"][0];
    assert_eq!(
        (s["strategy"].as_str(), s["cases_run"].as_u64()),
        (Some("legacy"), Some(12))
    );
    assert!(s["failing_cases"].as_u64().unwrap() >= 1, "{s}");
    let found = &s["found"];
    let (before, after) = (
        found["nodes_before"].as_u64().unwrap(),
        found["nodes_after"].as_u64().unwrap(),
    );
    assert!(
        after <= 3 && after <= before,
        "shrunk from {before} to {after}: {found}"
    );
    assert!(found["shrink_steps"].as_u64().unwrap() >= 1, "{found}");
    let minimal = found["minimal"].as_str().unwrap();
    assert!(minimal.contains("/fuzz/minimal-legacy-"), "{minimal}");
    let text = std::fs::read_to_string(minimal).unwrap();
    assert!(
        text.contains("# Replay it: lab run THIS_FILE --seed 1 --strategy legacy"),
        "{text}"
    );
    let replay = found["replay"].as_str().unwrap();
    assert_eq!(
        replay,
        format!("lab run {minimal} --seed 1 --strategy legacy --trials 1")
    );
    // The minimal case is kept as a regression.
    let kept = found["regression"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(kept).unwrap(), text);
    // The JUnit file: one failing test case, legacy, naming the minimal
    // file and its replay command.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(case.attribute("name"), Some("legacy"));
    let failure = case.children().find(|n| n.has_tag_name("failure")).unwrap();
    let message = failure.attribute("message").unwrap();
    assert!(
        message.contains(minimal) && message.contains(replay),
        "{message}"
    );

    // The minimal file replays with `lab run` to a failing verdict.
    let verdict = found["verdict"].as_str().unwrap();
    let (out, run_dir) = lab_run(minimal, 2, &["legacy"], &[]);
    let r = json(&out);
    let legacy = strategy(&r, "legacy");
    assert_eq!(legacy[verdict].as_u64(), Some(2), "{legacy}");
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(run_dir);

    // Every class's minimal case is kept (the legacy races can add a rare
    // class to the orphan's).
    let kept_all: std::collections::BTreeSet<&str> = s["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["found"]["regression"].as_str().unwrap())
        .collect();
    assert!(kept_all.contains(kept), "{s}");
    let kept_n = kept_all.len() as u64;

    // The next run replays the regressions first, and the orphan's still
    // fails.
    let (v, code) = fuzz(
        "1",
        &dir,
        &regressions,
        &[
            "--strategy",
            "legacy",
            "--shrink-steps",
            "0",
            "--repeat",
            "1",
        ],
    );
    assert_eq!(code, 1, "{v}");
    let r = &v["regressions"];
    assert_eq!(r["replayed"].as_u64(), Some(kept_n), "{r}");
    let replay = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == Some(kept))
        .unwrap();
    assert_eq!(replay["still_failing"], true, "{r}");
    // The regressions' rows come first in the CSV, each with its replay.
    let csv = std::fs::read_to_string(v["csv"].as_str().unwrap()).unwrap();
    let command = format!("lab run {kept} --seed 1 --strategy legacy --trials 1");
    assert!(
        csv.lines()
            .skip(1)
            .take(kept_n as usize)
            .any(|row| row.ends_with(&command)),
        "{csv}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn canonical_holds_the_property_over_the_same_cases() {
    let dir = out_dir("fuzz-canonical");
    let regressions = dir.join("regressions");
    let (v, code) = fuzz("12", &dir, &regressions, &[]);
    let s = &v["strategies"][0];
    assert_eq!(s["strategy"], "canonical");
    assert_eq!(
        (s["cases_run"].as_u64(), s["failing_cases"].as_u64()),
        (Some(12), Some(0)),
        "{s}"
    );
    assert!(s["found"].is_null());
    assert!(
        s["failing"]["high"].as_f64().unwrap() > 0.2,
        "a 95% upper bound: {s}"
    );
    assert_eq!(code, 0);
    // Nothing failed, so nothing is kept.
    assert!(!regressions.exists());
    let rows = std::fs::read_to_string(v["csv"].as_str().unwrap()).unwrap();
    assert_eq!(rows.lines().count(), 13, "one row per case");
    let _ = std::fs::remove_dir_all(dir);
}

fn report_and_plot_read_a_fuzz_run() {
    let dir = out_dir("fuzz-report");
    let regressions = dir.join("regressions");
    let (v, code) = fuzz(
        "6",
        &dir,
        &regressions,
        &[
            "--strategy",
            "legacy",
            "--repeat",
            "2",
            "--shrink-steps",
            "10",
        ],
    );
    assert!(matches!(code, 0 | 1), "{v}");
    let csv = Path::new(v["csv"].as_str().unwrap());
    let run = csv.parent().unwrap().to_str().unwrap();
    // Every case is the scenario `fuzz` at trial 0..repeat: the rows'
    // trial numbers tell them apart.
    let rows = lab::record::csv::read_rows(csv).unwrap();
    let trials: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.trial).collect();
    assert_eq!(trials.len(), rows.len(), "distinct trial numbers");
    let report = lab(&["report", run], &[]);
    let err = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&report.stdout).contains("\n## fuzz\n"));
    let charts = dir.join("charts");
    let plot = lab(&["plot", run, "--out", charts.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&plot.stderr);
    assert_eq!(plot.status.code(), Some(0), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

fn bad_input_exits_2_before_anything_runs() {
    let dir = out_dir("fuzz-bad");
    let out = lab(
        &["fuzz", "--strategy", "nope", "--out", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = lab(
        &["fuzz", "--cases", "0", "--out", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let regressions = dir.join("regressions");
    std::fs::create_dir_all(&regressions).unwrap();
    std::fs::write(regressions.join("bad.toml"), "version = 1\nname = \"x\"\n").unwrap();
    let out = lab(
        &[
            "fuzz",
            "--out",
            dir.to_str().unwrap(),
            "--regressions",
            regressions.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    let made: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        made,
        vec![std::ffi::OsString::from("regressions")],
        "no run directory"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The failure class `{verdict, signatures}` of `v` as text:
/// `hang (lone-futex-waiter)`, `orphan`.
fn class_of(v: &Value) -> String {
    let names: Vec<&str> = v["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    let verdict = v["verdict"].as_str().unwrap();
    if names.is_empty() {
        verdict.to_string()
    } else {
        format!("{verdict} ({})", names.join(", "))
    }
}

fn a_hang_that_could_shrink_to_an_orphan_stays_a_hang() {
    let dir = out_dir("fuzz-keeps-class");
    let regressions = dir.join("regressions");
    // Case 0 of seed 99: a tree of 3 nodes whose copies of an attendant
    // hang (`lone-futex-waiter`). Its second shrink candidate is an orphan
    // (a daemon root the group kill misses), which a shrink that kept any
    // failure would have taken.
    let (v, code) = fuzz_seed(
        "99",
        "1",
        &dir,
        &regressions,
        &[
            "--strategy",
            "legacy",
            "--repeat",
            "1",
            "--shrink-steps",
            "6",
        ],
    );
    assert_eq!(code, 1, "{v}");
    let s = &v["strategies"][0];
    assert_eq!(s["failing_cases"], 1, "{s}");
    let classes = s["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 1, "{s}");
    assert_eq!(class_of(&classes[0]), "hang (lone-futex-waiter)", "{s}");
    let found = &classes[0]["found"];
    assert_eq!(found, &s["found"], "`found` is the first class's shrink");
    assert_eq!(found["first_verdict"], "hang");
    assert_eq!(class_of(found), "hang (lone-futex-waiter)", "{found}");
    assert!(
        found["failing_otherwise"].as_u64().unwrap() >= 1,
        "a candidate failed another way and was not kept: {found}"
    );
    assert!(found["accepted_steps"].as_u64().unwrap() >= 1, "{found}");
    let minimal = found["minimal"].as_str().unwrap();
    let text = std::fs::read_to_string(minimal).unwrap();
    assert!(text.contains(": hang (lone-futex-waiter).\n"), "{text}");
    assert!(text.contains("hazard = \"attendant\""), "{text}");
    // Replayed by its command, the minimal case is still the hang.
    let replay = found["replay"].as_str().unwrap();
    let mut args: Vec<&str> = replay.split(' ').skip(1).collect();
    let out_dir = dir.join("replay");
    args.extend(["--format", "json", "--out", out_dir.to_str().unwrap()]);
    let r = json(&lab(&args, &[]));
    assert_eq!(strategy(&r, "legacy")["hang"].as_u64(), Some(1), "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

fn each_failure_class_found_is_listed_and_shrunk() {
    let dir = out_dir("fuzz-classes");
    let regressions = dir.join("regressions");
    // Seed 99's first 14 cases: hangs of attendant copies (cases 0 and 9)
    // and an orphan (case 13).
    let (v, code) = fuzz_seed(
        "99",
        "14",
        &dir,
        &regressions,
        &[
            "--strategy",
            "legacy",
            "--repeat",
            "1",
            "--shrink-steps",
            "4",
        ],
    );
    assert_eq!(code, 1, "{v}");
    let s = &v["strategies"][0];
    let classes = s["classes"].as_array().unwrap();
    let names: Vec<String> = classes.iter().map(class_of).collect();
    let hang = names.iter().position(|n| n == "hang (lone-futex-waiter)");
    let orphan = names.iter().position(|n| n == "orphan");
    assert!(hang.is_some() && orphan.is_some(), "{names:?}: {s}");
    assert_eq!(classes[hang.unwrap()]["first_case"], 0, "{s}");
    assert_eq!(classes[orphan.unwrap()]["first_case"], 13, "{s}");
    let counted: u64 = classes
        .iter()
        .map(|c| c["failing_cases"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(counted), s["failing_cases"].as_u64(), "{s}");
    let firsts: Vec<u64> = classes
        .iter()
        .map(|c| c["first_case"].as_u64().unwrap())
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    // Each class is shrunk within itself, to a file of its own that is
    // kept, with its replay command.
    for c in classes {
        let found = &c["found"];
        assert_eq!(class_of(found), class_of(c), "{c}");
        assert_eq!(found["case"], c["first_case"]);
        let minimal = found["minimal"].as_str().unwrap();
        assert!(Path::new(minimal).exists(), "{minimal}");
        assert!(Path::new(found["regression"].as_str().unwrap()).exists());
        assert_eq!(
            found["replay"].as_str().unwrap(),
            format!("lab run {minimal} --seed 99 --strategy legacy --trials 1")
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    legacy_fails_shrinks_replays_and_is_kept_as_a_regression;
    canonical_holds_the_property_over_the_same_cases;
    report_and_plot_read_a_fuzz_run;
    bad_input_exits_2_before_anything_runs;
    a_hang_that_could_shrink_to_an_orphan_stays_a_hang;
    each_failure_class_found_is_listed_and_shrunk;
}
