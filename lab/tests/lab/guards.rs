//! The guards of the canonical path: every deadlock of the casebook's hang
//! classes becomes a `panic` verdict with its reason, its site (`file:line`
//! of the guard) and its signature, known in a small fraction of the
//! deadline a hang would cost; the strategies without guards keep their
//! verdicts.

use std::collections::HashMap;

use super::{json, json_judged, lab, lab_run, named, names_of, scenario, strategy};
use serde_json::Value;

/// The deadline every run here is given: what a hang would cost each trial.
const DEADLINE_MS: u64 = 1000;

/// The runtime attendant check's strategy: copies (fork without exec), a
/// lifeline, pidfds, guards on.
const NOEXEC_GUARDED: &str = "create=fork-noexec,death=lifeline,observe=pidfd,guards=on";

/// One `lab run`: the JSON summary and the CSV rows (column -> value).
struct Run {
    summary: Value,
    rows: Vec<HashMap<String, String>>,
}

/// `lab run NAME --seed 1 --trials N --strategy S... --deadline 1000ms
/// --format json`, expecting exit status 0 when every strategy met its
/// expectation (a guard's panic where the scenario expects it) and 1
/// otherwise.
fn run(name: &str, trials: u32, strategies: &[&str]) -> Run {
    let deadline = format!("{DEADLINE_MS}ms");
    let (out, dir) = lab_run(name, trials, strategies, &["--deadline", &deadline]);
    let summary = json_judged(&out);
    let rows = csv::Reader::from_path(summary["csv"].as_str().unwrap())
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    Run { summary, rows }
}

impl Run {
    fn strategy(&self, name: &str) -> &Value {
        strategy(&self.summary, name)
    }

    fn rows(&self, strat: &str) -> impl Iterator<Item = &HashMap<String, String>> {
        let strat = strat.to_string();
        self.rows.iter().filter(move |r| r["strategy"] == strat)
    }

    /// Every trial of `strat` is a `panic` whose reason starts with
    /// `reason`, raised in `file`, naming `signature` (or none), and the
    /// median time to verdict is under a tenth of the deadline. Returns the
    /// reasons.
    fn assert_panics(
        &self,
        strat: &str,
        reason: &str,
        file: &str,
        signature: Option<&str>,
    ) -> Vec<String> {
        let s = self.strategy(strat);
        let trials = s["trials"].as_u64().unwrap();
        assert_eq!(s["panic"].as_u64(), Some(trials), "{s}");
        let panic_reasons = names_of(&s["panic_reasons"]);
        assert_eq!(
            panic_reasons
                .iter()
                .map(|r| named(&s["panic_reasons"], r).unwrap())
                .sum::<u64>(),
            trials,
            "{s}"
        );
        assert!(
            panic_reasons.iter().all(|r| r.starts_with(reason)),
            "reasons of {strat}: {panic_reasons:?}"
        );
        match signature {
            Some(sig) => assert_eq!(named(&s["signatures"], sig), Some(trials), "{s}"),
            None => assert_eq!(s["signatures"].as_array().map(Vec::len), Some(0), "{s}"),
        }
        for row in self.rows(strat) {
            assert_eq!(row["verdict"], "panic");
            let (site_file, line) = row["panic_site"].rsplit_once(':').unwrap();
            assert_eq!(site_file, file, "{row:?}");
            assert!(line.parse::<u32>().is_ok_and(|l| l > 0), "{row:?}");
            assert_eq!(row["signatures"], signature.unwrap_or(""), "{row:?}");
        }
        // A hang costs the whole deadline; a guard answers in a fraction.
        let median = s["median_verdict_us"].as_u64().unwrap();
        assert!(
            median * 10 < DEADLINE_MS * 1000,
            "{strat}: median time to verdict {median} us against a {DEADLINE_MS} ms deadline"
        );
        panic_reasons
    }
}

fn a_copy_of_the_attendant_node_is_refused_at_plan_time_under_canonical() {
    let r = run("mt-fork-attendant", 5, &["canonical"]);
    r.assert_panics(
        "canonical",
        "refused at plan time: node 0 would be a copy (clone3 without exec) of node root",
        "lab/src/node/guard.rs",
        None,
    );
    // Refused before anything was spawned.
    assert!(r.rows("canonical").all(|row| row["nodes_spawned"] == "0"));
}

fn the_attendant_owner_check_panics_a_copy_at_run_time() {
    let r = run("mt-fork-attendant", 5, &[NOEXEC_GUARDED]);
    let grouped = r.assert_panics(
        NOEXEC_GUARDED,
        "worker thread belongs to pid ",
        "lab/src/node/hazard.rs",
        Some("lone-futex-waiter"),
    );
    // The summary groups the reasons with their pids written N: one per
    // copy that can panic first (node 0 or node 1)...
    assert!(grouped.len() <= 2, "{grouped:?}");
    assert!(grouped
        .iter()
        .all(|g| g.starts_with("worker thread belongs to pid N, this is pid N")));
    // ...and the CSV keeps each trial's own pids.
    let reasons: Vec<String> = r
        .rows(NOEXEC_GUARDED)
        .map(|row| row["reason"].clone())
        .collect();
    assert_eq!(reasons.len(), 5);
    for reason in &reasons {
        // "worker thread belongs to pid X, this is pid Y: ..."
        let rest = reason
            .strip_prefix("worker thread belongs to pid ")
            .unwrap();
        let (owner, rest) = rest.split_once(", this is pid ").unwrap();
        let me = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap();
        let (owner, me): (u32, u32) = (owner.parse().unwrap(), me.parse().unwrap());
        assert_ne!(owner, me, "{reason}");
        assert!(reason.contains("set exec = true"), "{reason}");
    }
    // The same axes without the guards: the copy waits forever.
    let unguarded = "create=fork-noexec,death=lifeline,observe=pidfd,guards=off";
    let (out, dir) = lab_run("mt-fork-attendant", 1, &[unguarded], &[]);
    let v = json(&out);
    assert_eq!(strategy(&v, unguarded)["hang"].as_u64(), Some(1), "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

fn duplicated_stdio_is_a_panic_of_the_stdio_audit_under_canonical() {
    let r = run("stdio-dup", 5, &["canonical"]);
    let reasons = r.assert_panics(
        "canonical",
        "duplicated stdio: fd 1 and fd 10 -> pipe:[",
        "lab/src/node/audit.rs",
        Some("duplicated-stdio"),
    );
    assert!(
        reasons.iter().all(|r| r.contains("in node 0 (pid ")),
        "{reasons:?}"
    );
}

fn a_lifeline_write_end_in_the_child_is_a_panic_with_guards_and_an_orphan_without() {
    let guarded = "create=fork,death=lifeline,observe=pidfd,guards=on";
    let r = run("lifeline-leak", 5, &[guarded, "lifeline-leaky"]);
    let reasons = r.assert_panics(
        guarded,
        "lifeline write end found in the child: fd ",
        "lab/src/node/audit.rs",
        Some("self-pipe-keeper"),
    );
    assert!(
        reasons.iter().all(|r| r.contains(" -> pipe:[")),
        "{reasons:?}"
    );
    // The leaky preset has no guards: the subtree of the killed node lives on.
    let leaky = r.strategy("lifeline-leaky");
    assert_eq!(leaky["orphan"].as_u64(), Some(5), "{leaky}");
    assert_eq!(leaky["panic"].as_u64(), Some(0), "{leaky}");
}

fn a_node_threaded_at_run_time_is_refused_at_spawn_time_where_clone3_refused() {
    let file = scenario("threaded-at-run-time.toml");
    // The plan marks no copy of a threaded node: the plan-time check passes.
    let out = lab(&["check", &file], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run(&file, 5, &["canonical"]);
    r.assert_panics(
        "canonical",
        "refused at spawn time: node 0 is multithreaded (2 threads) and asked clone3 for a copy",
        "lab/src/node/create.rs",
        None,
    );
}

fn check_and_plan_print_a_refusal_and_exit_1() {
    let refusal = "refused at plan time under canonical: node 0 would be a copy";
    let out = lab(&["check", "mt-fork-attendant", "nested"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("mt-fork-attendant: ok") && stdout.contains("nested: ok"));
    assert_eq!(
        stderr.lines().collect::<Vec<_>>().len(),
        1,
        "one refusal: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!("mt-fork-attendant: {refusal}")),
        "{stderr}"
    );
    // Only the strategies asked for, with the seed asked for.
    let out = lab(
        &[
            "check",
            "mt-fork-attendant",
            "--strategy",
            "legacy",
            "--seed",
            "3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let out = lab(
        &[
            "check",
            "mt-fork-attendant",
            "--strategy",
            "legacy",
            "--strategy",
            "create=clone3,death=pdeathsig,observe=proc",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("refused at plan time under create=clone3,death=pdeathsig,observe=proc: node 0"));
    // Bad input stays status 2.
    let out = lab(&["check", "mt-fork-attendant", "--strategy", "bogus"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // `lab plan` prints the plan (JSON still parses) and the refusal.
    let out = lab(&["plan", "mt-fork-attendant", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["scenario"], "mt-fork-attendant");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(refusal));
    let out = lab(&["plan", "mt-fork-attendant", "--strategy", "legacy"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("plan "));
    let out = lab(&["plan", "nested", "--seed", "7"], &[]);
    assert_eq!(out.status.code(), Some(0));
}

fn strategies_show_the_guards_switch() {
    let out = lab(&["strategies"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for (preset, guards) in [
        ("canonical", "on"),
        ("legacy", "off"),
        ("pdeathsig-checked", "off"),
        ("lifeline-leaky", "off"),
        ("fork-noexec", "off"),
        ("std-command", "off"),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(preset))
            .unwrap_or_else(|| panic!("{preset} in {text}"));
        // The columns: strategy, create, death, observe, guards, about.
        assert_eq!(line.split_whitespace().nth(4), Some(guards), "{line}");
    }
}

tests! {
    a_copy_of_the_attendant_node_is_refused_at_plan_time_under_canonical;
    the_attendant_owner_check_panics_a_copy_at_run_time;
    duplicated_stdio_is_a_panic_of_the_stdio_audit_under_canonical;
    a_lifeline_write_end_in_the_child_is_a_panic_with_guards_and_an_orphan_without;
    a_node_threaded_at_run_time_is_refused_at_spawn_time_where_clone3_refused;
    check_and_plan_print_a_refusal_and_exit_1;
    strategies_show_the_guards_switch;
}
