//! `lab soak` and `lab merge`: streamed rows, shards that merge to the
//! unsharded soak, resume after SIGINT and SIGKILL without running a trial
//! twice, the gate, the sweep.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use super::{json, lab, out_dir, Marker, LAB};

/// `(scenario, sweep_value, strategy, trial, seed, plan_hash, verdict)` of
/// every row of `dir/trials.csv`, sorted.
fn rows(dir: &Path) -> Vec<(String, String, String, u64, u64, String, String)> {
    let mut out: Vec<_> = lab::record::csv::read_rows(&dir.join("trials.csv"))
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.scenario,
                r.sweep_value,
                r.strategy,
                r.trial,
                r.seed,
                r.plan_hash,
                r.verdict,
            )
        })
        .collect();
    out.sort();
    out
}

fn soak(dir: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["soak", "--progress", "none", "--format", "json", "-j", "2"];
    let d = dir.to_str().unwrap().to_string();
    if !extra.contains(&"--resume") {
        args.extend(["--out", &d]);
    }
    args.extend_from_slice(extra);
    let out = lab(&args, &[]);
    (out.status.code(), json(&out))
}

fn shards_merge_to_the_unsharded_soak() {
    let base = ["--scenario", "nested", "--trials", "6", "--seed", "3"];
    let (all, one, two, merged, whole) = (
        out_dir("soak-all"),
        out_dir("soak-1"),
        out_dir("soak-2"),
        out_dir("soak-merged"),
        out_dir("soak-whole"),
    );
    let (code, v) = soak(&all, &base);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["trials_run"], 12);
    let canonical = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["strategy"] == "canonical")
        .unwrap();
    assert_eq!(canonical["rates"]["pass"]["count"], 6, "{v}");
    let legacy = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["strategy"] == "legacy")
        .unwrap();
    assert_eq!(legacy["rates"]["orphan"]["count"], 6, "{v}");
    for (dir, shard) in [(&one, "1/2"), (&two, "2/2")] {
        let mut args = base.to_vec();
        args.extend(["--shard", shard]);
        let (code, v) = soak(dir, &args);
        assert_eq!((code, v["trials_run"].as_u64()), (Some(0), Some(6)), "{v}");
    }
    // Each shard ran only its own trial indices.
    assert!(rows(&one).iter().all(|r| r.3 % 2 == 0));
    assert!(rows(&two).iter().all(|r| r.3 % 2 == 1));
    let m = lab(
        &[
            "merge",
            one.to_str().unwrap(),
            two.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let w = lab(
        &[
            "merge",
            all.to_str().unwrap(),
            "--out",
            whole.to_str().unwrap(),
        ],
        &[],
    );
    assert!(w.status.success());
    let (merged_rows, whole_rows) = (rows(&merged), rows(&whole));
    assert_eq!(merged_rows.len(), 12);
    assert_eq!(merged_rows, whole_rows);
    // Shards of other soaks are refused.
    let other = out_dir("soak-other");
    let (code, _) = soak(
        &other,
        &[
            "--scenario",
            "nested",
            "--trials",
            "2",
            "--seed",
            "4",
            "--strategy",
            "canonical",
        ],
    );
    assert_eq!(code, Some(0));
    let bad = lab(
        &[
            "merge",
            all.to_str().unwrap(),
            other.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not shards of one soak"));
    for d in [all, one, two, merged, whole, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Start a soak with one progress line per trial, end the lab with `signal`
/// once `after` trials have ended, wait for every lab process to exit, and
/// resume it: every trial of the matrix ends up in the CSV exactly once.
fn interrupted_then_resumed(signal: rustix::process::Signal, tag: &str) {
    let dir = out_dir(tag);
    {
        let marker = Marker::new();
        let mut lab = marker
            .command(LAB)
            .args([
                "soak",
                "--scenario",
                "nested",
                "--trials",
                "30",
                "-j",
                "2",
                "--progress",
                "lines",
                "--out",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(lab.stderr.take().unwrap());
        let mut ended = 0;
        while ended < 6 {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "the soak ended early"
            );
            ended += line.starts_with("soak: ") as usize;
        }
        let pid = rustix::process::Pid::from_raw(lab.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let status = lab.wait().unwrap();
        assert!(!status.success());
        // The supervisors see their lifeline close, end their trials and
        // exit: wait for each through a pidfd.
        marker.wait_gone();
    }
    let before = rows(&dir).len();
    assert!((6..60).contains(&before), "{before} rows before the resume");
    let (code, v) = soak(&dir, &["--resume", dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["trials_run"].as_u64().unwrap() as usize, 60 - before);
    let after = rows(&dir);
    assert_eq!(after.len(), 60);
    let mut keys: Vec<_> = after.iter().map(|r| (r.2.clone(), r.3)).collect();
    keys.dedup();
    assert_eq!(keys.len(), 60, "a trial ran twice");
    // A finished soak resumed runs nothing.
    let (_, again) = soak(&dir, &["--resume", dir.to_str().unwrap()]);
    assert_eq!(again["trials_run"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

fn a_soak_killed_with_sigkill_leaves_nothing_and_resumes() {
    interrupted_then_resumed(rustix::process::Signal::KILL, "soak-sigkill");
}

fn a_soak_interrupted_with_sigint_leaves_nothing_and_resumes() {
    interrupted_then_resumed(rustix::process::Signal::INT, "soak-sigint");
}

fn the_gate_fails_on_a_strategy_that_does_not_pass() {
    let dir = out_dir("soak-gate");
    let (code, v) = soak(
        &dir,
        &["--scenario", "nested", "--trials", "3", "--gate", "legacy"],
    );
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["gate"]["failures"], 3);
    let replay = v["gate"]["replay"][0].as_str().unwrap();
    assert!(
        replay.starts_with("lab run nested --seed ") && replay.contains("--strategy legacy"),
        "{replay}"
    );
    // The replayed trial is the same plan: the seed in the command is the row's.
    let seed: u64 = replay.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(rows(&dir).iter().any(|r| r.4 == seed && r.2 == "legacy"));
    let again = out_dir("soak-gate-2");
    let (code, v) = soak(
        &again,
        &[
            "--scenario",
            "nested",
            "--trials",
            "3",
            "--gate",
            "canonical",
        ],
    );
    assert_eq!(code, Some(0), "{v}");
    // The same directory twice without --resume is refused.
    let (code, _) = {
        let d = again.to_str().unwrap();
        let out = lab(
            &["soak", "--scenario", "nested", "--trials", "1", "--out", d],
            &[],
        );
        (out.status.code(), ())
    };
    assert_eq!(code, Some(2));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(again);
}

fn a_sweep_runs_every_value_and_names_it_in_each_row() {
    let dir = out_dir("soak-sweep");
    let (code, v) = soak(
        &dir,
        &[
            "--scenario",
            "nested",
            "--strategy",
            "canonical",
            "--trials",
            "2",
            "--sweep",
            "depth=1..3/3",
        ],
    );
    assert_eq!(code, Some(0), "{v}");
    let r = lab::record::csv::read_rows(&dir.join("trials.csv")).unwrap();
    assert_eq!(r.len(), 6);
    let mut values: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r.sweep_key.as_str(), r.sweep_value.as_str()))
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            ("depth", "1"),
            ("depth", "1"),
            ("depth", "2"),
            ("depth", "2"),
            ("depth", "3"),
            ("depth", "3")
        ]
    );
    // Each value is its own scenario text, so its own plans; at depth 1
    // (root and 2 children) at most 3 nodes are born.
    let hashes: std::collections::BTreeSet<&str> =
        r.iter().map(|r| r.scenario_hash.as_str()).collect();
    assert_eq!(hashes.len(), 3);
    assert!(r
        .iter()
        .filter(|r| r.sweep_value == "1")
        .all(|r| r.nodes_spawned <= 3));
    assert!(r
        .iter()
        .filter(|r| r.sweep_value == "3")
        .all(|r| r.nodes_spawned > 7));
    let _ = std::fs::remove_dir_all(dir);
}

fn swept_values_are_summarised_in_the_order_of_their_values() {
    let dir = out_dir("soak-sweep-order");
    // As text the order would be 10s, 2s, 900ms.
    let out = lab(
        &[
            "soak",
            "--progress",
            "none",
            "--out",
            dir.to_str().unwrap(),
            "--scenario",
            "nested",
            "--strategy",
            "canonical",
            "--trials",
            "1",
            "--sweep",
            "limits.deadline=10s,2s,900ms",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let at = |v: &str| {
        text.find(&format!("\nnested  limits.deadline={v}\n"))
            .unwrap_or_else(|| panic!("no block for {v}:\n{text}"))
    };
    assert!(at("900ms") < at("2s") && at("2s") < at("10s"), "{text}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let values: Vec<&str> = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sweep_value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["900ms", "2s", "10s"], "{summary}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The case: kill moments swept as `child+D` come out in the
/// order of their delays (`child+0ms, child+200us, child+1ms, child+10ms`),
/// not as text (`child+0ms, child+10ms, child+1ms, child+200us`), in the
/// scenario blocks and in the `expectations:` block alike.
fn swept_kill_moments_are_summarised_in_the_order_of_their_delays() {
    let dir = out_dir("soak-sweep-child-order");
    let out = lab(
        &[
            "soak",
            "--progress",
            "none",
            "--out",
            dir.to_str().unwrap(),
            "--scenario",
            "pdeathsig-birth",
            "--strategy",
            "canonical",
            "--trials",
            "1",
            "--sweep",
            "kill.0.at=child+0ms,child+10ms,child+1ms,child+200us",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let order = ["child+0ms", "child+200us", "child+1ms", "child+10ms"];
    let block = |v: &str| {
        text.find(&format!("\npdeathsig-birth  kill.0.at={v}\n"))
            .unwrap_or_else(|| panic!("no block for {v}:\n{text}"))
    };
    let expectations = text
        .find("\nexpectations:\n")
        .unwrap_or_else(|| panic!("no expectations block:\n{text}"));
    let judged = |v: &str| {
        expectations
            + text[expectations..]
                .find(&format!("  pdeathsig-birth kill.0.at={v} canonical: "))
                .unwrap_or_else(|| panic!("{v} not judged:\n{text}"))
    };
    for w in order.windows(2) {
        assert!(
            block(w[0]) < block(w[1]),
            "{} after {}:\n{text}",
            w[0],
            w[1]
        );
        assert!(
            judged(w[0]) < judged(w[1]),
            "{} after {}:\n{text}",
            w[0],
            w[1]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A kill window in a soak: each trial runs the plan of its own seed, so
/// the moments differ from row to row, and the header says so.
fn a_kill_window_is_drawn_anew_for_every_trial_of_a_soak() {
    let dir = out_dir("soak-window");
    let out = lab(
        &[
            "soak",
            "--progress",
            "none",
            "--out",
            dir.to_str().unwrap(),
            "--scenario",
            "nested",
            "--set",
            "kill.0.at=2ms..20ms",
            "--strategy",
            "canonical",
            "--trials",
            "6",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("a kill window is drawn anew for every trial"),
        "{err}"
    );
    let mut csv = csv::Reader::from_path(dir.join("trials.csv")).unwrap();
    let col = csv
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "kill_planned_us")
        .unwrap();
    let moments: std::collections::BTreeSet<String> =
        csv.records().map(|r| r.unwrap()[col].to_string()).collect();
    assert!(moments.len() > 1, "one moment for every trial: {moments:?}");
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    shards_merge_to_the_unsharded_soak;
    a_soak_killed_with_sigkill_leaves_nothing_and_resumes;
    a_soak_interrupted_with_sigint_leaves_nothing_and_resumes;
    the_gate_fails_on_a_strategy_that_does_not_pass;
    a_sweep_runs_every_value_and_names_it_in_each_row;
    swept_values_are_summarised_in_the_order_of_their_values;
    swept_kill_moments_are_summarised_in_the_order_of_their_delays;
    a_kill_window_is_drawn_anew_for_every_trial_of_a_soak;
}
