//! Suites: "passes alone, hangs in the suite". `lab suite` runs members
//! alone and together in one supervisor (the suite's test process); `lab
//! bisect` finds the members that make a victim fail. The suites under
//! `lab/tests/suites/` reuse the members of `scenarios/suites/attendant/`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::{crate_path, json, lab, named, names_of};

/// K for every run here.
const K: u64 = 3;
/// The deadline of every trial: what the victim's hang costs.
const DEADLINE: &str = "200ms";
/// The legacy axes with the guards on: a copy's request to the host's
/// attendant panics with the owner check's reason.
const GUARDED_FORK: &str = "create=fork,death=pdeathsig,observe=proc,guards=on";

fn shipped(name: &str) -> String {
    crate_path("../scenarios/suites", name)
}

fn test_suite(name: &str) -> String {
    crate_path("tests/suites", name)
}

/// `lab COMMAND FILE ARGS... --repeat K --deadline 200ms --format json`;
/// `args` may set its own `--repeat`, which then wins.
fn lab_json(command: &str, file: &str, args: &[&str]) -> (Output, Value) {
    let k = K.to_string();
    let mut all = vec![command, file];
    all.extend_from_slice(args);
    if !args.contains(&"--repeat") {
        all.extend(["--repeat", &k]);
    }
    all.extend(["--deadline", DEADLINE, "--format", "json"]);
    let out = lab(&all, &[]);
    let v = json(&out);
    (out, v)
}

fn member<'a>(v: &'a Value, name: &str, strategy: &str) -> &'a Value {
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name && m["strategy"] == strategy)
        .unwrap_or_else(|| panic!("no member {name} under {strategy}: {v}"))
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

fn the_victim_passes_alone_and_hangs_in_the_suite_under_legacy_only() {
    let (out, v) = lab_json(
        "suite",
        &shipped("attendant.toml"),
        &[
            "--strategy",
            "legacy",
            "--strategy",
            "canonical",
            "--strategy",
            GUARDED_FORK,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "order-dependent: exit 1\n{v}");
    assert_eq!(v["suite"], "attendant");
    assert_eq!(
        names(&v["order"]),
        [
            "spawn-and-wait",
            "exit-codes",
            "warm-cache",
            "deep-tree",
            "exec-children",
            "fork-then-ask",
            "small-output"
        ]
    );
    assert_eq!(v["members"].as_array().unwrap().len(), 7 * 3);
    // Legacy: alone K/K pass, in the suite K/K hang, a lone futex waiter,
    // and the reason names the member that started the host's worker.
    let victim = member(&v, "fork-then-ask", "legacy");
    let counts = |m: &Value, keys: &[&str]| -> Vec<u64> {
        keys.iter().map(|k| m[k].as_u64().unwrap()).collect()
    };
    let keys = [
        "repeat",
        "alone_pass",
        "alone_hang",
        "suite_pass",
        "suite_hang",
        "suite_panic",
    ];
    assert_eq!(counts(victim, &keys), [K, K, 0, 0, K, 0], "{victim}");
    assert_eq!(victim["order_dependent"], "fails-in-suite");
    assert_eq!(
        named(&victim["suite"]["signatures"], "lone-futex-waiter"),
        Some(K),
        "{victim}"
    );
    let reasons = names_of(&victim["suite"]["reasons"]);
    assert!(
        !reasons.is_empty()
            && reasons.iter().all(|r| r.contains("not ready: root")
                && r.contains("attendant worker started by scenario warm-cache")),
        "{reasons:?}"
    );
    // Canonical never hangs: the root of a member after warm-cache is
    // exec'd (clone3 copies no process with threads) and every member
    // passes everywhere.
    for m in v["members"].as_array().unwrap() {
        if m["strategy"] == "canonical" {
            assert_eq!(counts(m, &keys), [K, K, 0, K, 0, 0], "{m}");
        }
    }
    // The legacy axes with the guards on: the copy's request panics with
    // the attendant's owner check, never hangs.
    let guarded = member(&v, "fork-then-ask", GUARDED_FORK);
    assert_eq!(counts(guarded, &keys), [K, K, 0, 0, 0, K], "{guarded}");
    let reasons = names_of(&guarded["suite"]["reasons"]);
    assert!(
        !reasons.is_empty()
            && reasons.iter().all(|r| r.starts_with(
            "worker thread belongs to pid N, this is pid N: node root is a copy (no exec) of the host"
        )),
        "{reasons:?}"
    );
    // Every other member passes alone and in the suite, under each strategy.
    for m in v["members"].as_array().unwrap() {
        if m["name"] != "fork-then-ask" {
            assert_eq!(
                (m["alone_pass"].as_u64(), m["suite_pass"].as_u64()),
                (Some(K), Some(K)),
                "{m}"
            );
            assert_eq!(m["order_dependent"], Value::Null, "{m}");
        }
    }
    // Called out, with the command that replays the suite up to the victim.
    let found = v["order_dependent"].as_array().unwrap();
    let called: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["strategy"].as_str().unwrap()))
        .collect();
    assert_eq!(
        called,
        [("fork-then-ask", "legacy"), ("fork-then-ask", GUARDED_FORK)]
    );
    let replay = found[0]["replay"].as_str().unwrap();
    assert!(
        replay.starts_with("lab suite ")
            && replay.contains(
                " --members spawn-and-wait,exit-codes,warm-cache,deep-tree,exec-children,fork-then-ask "
            )
            && replay.contains(" --strategy legacy --repeat 3 --deadline 200ms"),
        "{replay}"
    );
    assert!(found[0]["bisect"]
        .as_str()
        .unwrap()
        .contains(" --victim fork-then-ask --strategy legacy"));
    // K runs alone per member and K runs of the suite, per strategy.
    assert_eq!(v["runs"].as_u64(), Some(3 * (7 * K + K)));
}

fn the_text_table_calls_out_the_order_dependent_member() {
    let out = lab(
        &[
            "suite",
            &shipped("attendant.toml"),
            "--strategy",
            "legacy",
            "--repeat",
            "1",
            "--deadline",
            DEADLINE,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("fork-then-ask"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("1/1") && row.contains("0/1") && row.contains("hang x1 (lone-futex-waiter)"),
        "{row}"
    );
    assert!(row.ends_with("<- order-dependent"), "{row}");
    assert!(
        text.contains("order-dependent under legacy: fork-then-ask passes alone 1/1 and fails in the suite 1/1"),
        "{text}"
    );
    assert!(text.contains("  replay: lab suite "), "{text}");
}

fn bisect_finds_the_polluter_and_its_replay_reproduces() {
    let (out, v) = lab_json(
        "bisect",
        &shipped("attendant.toml"),
        &["--victim", "fork-then-ask"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["victim"], "fork-then-ask");
    assert_eq!(v["strategy"], "legacy", "legacy is bisect's default");
    assert_eq!(names(&v["polluters"]), ["warm-cache"]);
    assert_eq!(v["alone"]["verdicts"]["pass"].as_u64(), Some(K));
    assert!(v["after_all"]["verdicts"]["hang"].as_u64().unwrap() >= 1);
    // The replay: `lab suite FILE --members warm-cache,fork-then-ask ...`.
    let replay = v["replay"].as_str().unwrap();
    assert!(
        replay.contains(" --members warm-cache,fork-then-ask "),
        "{replay}"
    );
    let args: Vec<&str> = replay
        .strip_prefix("lab ")
        .unwrap()
        .split_whitespace()
        .chain(["--format", "json"])
        .collect();
    let out = lab(&args, &[]);
    assert_eq!(out.status.code(), Some(1), "{replay}");
    let again = json(&out);
    assert_eq!(names(&again["order"]), ["warm-cache", "fork-then-ask"]);
    let victim = member(&again, "fork-then-ask", "legacy");
    assert_eq!(victim["suite_hang"].as_u64(), Some(K), "{victim}");
}

fn bisect_needs_runs_logarithmic_in_the_number_of_predecessors() {
    let (out, v) = lab_json(
        "bisect",
        &test_suite("many-innocents.toml"),
        &["--victim", "fork-then-ask", "-j", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(names(&v["polluters"]), ["warm-cache"]);
    let n = v["predecessors"].as_array().unwrap().len() as u64;
    assert_eq!(n, 16);
    let runs = v["runs"].as_u64().unwrap();
    let log = (n as f64).log2().ceil() as u64;
    // The victim alone, after the whole list, and two subsets per halving.
    assert!(
        runs <= K * (2 + 2 * log),
        "{runs} runs for {n} predecessors"
    );
    assert!(
        runs < n * K,
        "no better than trying each predecessor: {runs}"
    );
    // The steps halve: no subset is tried twice, and the last one kept is
    // the polluter alone.
    let steps = v["steps"].as_array().unwrap();
    assert!(steps.len() as u64 <= 2 * log, "{steps:?}");
    let last_kept = steps.iter().rev().find(|s| s["kept"] == true).unwrap();
    assert_eq!(names(&last_kept["before"]), ["warm-cache"]);
}

fn two_polluters_that_must_both_run_are_both_found() {
    let (out, v) = lab_json(
        "bisect",
        &test_suite("two-polluters.toml"),
        &["--victim", "fork-then-ask"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(names(&v["polluters"]), ["register-service", "warm-up"]);
    // Each one alone was tried, and neither made the victim fail.
    for alone in ["register-service", "warm-up"] {
        let step = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| names(&s["before"]) == [alone])
            .unwrap_or_else(|| panic!("{alone} alone was not tried: {v}"));
        assert_eq!(step["kept"], false, "{step}");
        assert_eq!(step["verdicts"]["pass"].as_u64(), Some(K), "{step}");
    }
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("register-service then warm-up"));
}

fn a_flaky_polluter_missed_by_one_run_is_searched_with_three() {
    let file = test_suite("flaky.toml");
    // Its draws for runs 0..5 are no, yes, no, yes, yes: in the suite the
    // victim hangs in 3 of 5 runs.
    let (out, v) = lab_json("suite", &file, &["--strategy", "legacy", "--repeat", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let victim = member(&v, "fork-then-ask", "legacy");
    assert_eq!(
        (
            victim["alone_pass"].as_u64(),
            victim["suite_pass"].as_u64(),
            victim["suite_hang"].as_u64()
        ),
        (Some(5), Some(2), Some(3)),
        "{victim}"
    );
    // One run: run 0 draws no, so the victim passes after everything in
    // its first run; the check goes on to 3 runs, and run 1 shows it:
    // every step then runs up to 3 times, and the replay repeats 3 times.
    let (out, v) = lab_json(
        "bisect",
        &file,
        &["--victim", "fork-then-ask", "--repeat", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(names(&v["polluters"]), ["sometimes-warm"]);
    assert_eq!(v["after_all"]["runs"].as_u64(), Some(2), "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.ends_with("(after the whole list it showed only in run 2 of up to 3: each step ran up to 3 times, not 1)"),
        "{v}"
    );
    assert!(
        v["replay"].as_str().unwrap().contains(" --repeat 3 "),
        "{v}"
    );
    // Five runs find it.
    let (out, v) = lab_json(
        "bisect",
        &file,
        &["--victim", "fork-then-ask", "--repeat", "5"],
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(names(&v["polluters"]), ["sometimes-warm"]);
}

fn bisect_says_plainly_when_the_victim_is_not_order_dependent() {
    let file = shipped("attendant.toml");
    // Canonical: the victim passes after the whole list.
    let (out, v) = lab_json(
        "bisect",
        &file,
        &["--victim", "fork-then-ask", "--strategy", "canonical"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("the victim passes after the whole list of its predecessors (5)"),
        "{v}"
    );
    assert_eq!(v["polluters"].as_array().unwrap().len(), 0);
    // The reverse dependency: it passes alone, so nothing helps it.
    let (out, v) = lab_json(
        "bisect",
        &file,
        &["--victim", "fork-then-ask", "--opposite"],
    );
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("the victim passes alone"),
        "{v}"
    );
    // First in the order: nothing runs before it.
    let (out, v) = lab_json(
        "bisect",
        &file,
        &[
            "--victim",
            "fork-then-ask",
            "--members",
            "fork-then-ask,warm-cache",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("nothing runs before it"),
        "{v}"
    );
    // Bad input: exit 2.
    let out = lab(&["bisect", &file, "--victim", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no member `nope` (members: spawn-and-wait,")
    );
}

fn a_bad_suite_file_is_refused_with_its_location() {
    let dir = super::out_dir("bad-suite");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "version = 1\nname = \"bad\"\n[[member]]\nscenario = {:?}\n[[member]]\nscenario = \"missing.toml\"\n",
            Path::new(&shipped("attendant/deep-tree.toml")).display().to_string()
        ),
    )
    .unwrap();
    let out = lab(&["suite", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:6:12: the scenario \"missing.toml\" does not load:\n")
            && err.contains("missing.toml: cannot read the file"),
        "{err}"
    );
    let out = lab(
        &[
            "suite",
            &shipped("attendant.toml"),
            "--members",
            "deep-tree,nope",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

fn lab_run_gives_each_trial_of_a_host_action_a_fresh_supervisor() {
    let dir = super::out_dir("host-and-root");
    let scenario = test_suite("members/host-and-root.toml");
    // The host draws no, yes, no for trials 0, 1, 2: only trial 1 hangs,
    // also on one supervisor (-j 1), because trial 2 starts on a fresh one.
    let out = lab(
        &[
            "run",
            &scenario,
            "--seed",
            "7",
            "--trials",
            "3",
            "-j",
            "1",
            "--strategy",
            "legacy",
            "--deadline",
            DEADLINE,
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let r = &v["results"][0];
    assert_eq!(
        (r["pass"].as_u64(), r["hang"].as_u64()),
        (Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["replay"][0]["trials"], serde_json::json!([1]));
    let _ = std::fs::remove_dir_all(dir);
}

fn members_that_share_nothing_are_warned_of_and_not_bisected() {
    let file = test_suite("commands.toml");
    // Every member in the order runs a command at its root: lab suite warns
    // instead of saying "no order-dependent member".
    let args = ["--members", "run-true,run-sh", "--strategy", "legacy"];
    let (out, v) = lab_json("suite", &file, &args);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let warning = v["warning"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(
        warning.starts_with("every member runs a command at its root")
            && warning.contains("no member can be order-dependent"),
        "{warning}"
    );
    let mut text_args = vec!["suite", &file, "--repeat", "1", "--deadline", DEADLINE];
    text_args.extend_from_slice(&args);
    let out = lab(&text_args, &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\nwarning: every member runs a command"),
        "{text}"
    );
    assert!(!text.contains("no order-dependent member"), "{text}");
    // No member is marked: the table has its four columns and no stray one.
    let rule = text
        .lines()
        .find(|l| l.trim_start().starts_with("---"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(rule.split_whitespace().count(), 4, "{text}");
    // A victim that runs a command: nothing to bisect, exit 2, before any run.
    let out = lab(&["bisect", &file, "--victim", "run-sh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the victim `run-sh` runs a command at its root (`sh -c exit 0`)")
            && err.contains("nothing to bisect"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

tests! {
    the_victim_passes_alone_and_hangs_in_the_suite_under_legacy_only;
    the_text_table_calls_out_the_order_dependent_member;
    bisect_finds_the_polluter_and_its_replay_reproduces;
    bisect_needs_runs_logarithmic_in_the_number_of_predecessors;
    two_polluters_that_must_both_run_are_both_found;
    a_flaky_polluter_missed_by_one_run_is_searched_with_three;
    bisect_says_plainly_when_the_victim_is_not_order_dependent;
    a_bad_suite_file_is_refused_with_its_location;
    lab_run_gives_each_trial_of_a_host_action_a_fresh_supervisor;
    members_that_share_nothing_are_warned_of_and_not_bisected;
}
