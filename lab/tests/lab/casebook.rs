//! The casebook: every shipped scenario reproduces on its legacy side and
//! not on the canonical one, with small trial counts.

use super::{json, json_judged, lab, lab_run, named, names_of, scenario, strategy};
use serde_json::Value;

/// [`lab_run`], expecting exit status 0 when every strategy met its
/// expectation and 1 otherwise; the JSON summary.
fn run(name: &str, trials: u32, strategies: &[&str], extra: &[&str]) -> Value {
    let (out, dir) = lab_run(name, trials, strategies, extra);
    let v = json_judged(&out);
    let _ = std::fs::remove_dir_all(dir);
    v
}

/// `(trials, count of verdict)` of one strategy.
fn count(v: &Value, strat: &str, verdict: &str) -> (u64, u64) {
    let s = strategy(v, strat);
    (s["trials"].as_u64().unwrap(), s[verdict].as_u64().unwrap())
}

/// The distinct reasons of `verdict` (keyed in snake_case: `early_death`).
fn reasons(v: &Value, strat: &str, verdict: &str) -> Vec<String> {
    names_of(&strategy(v, strat)["reasons"][verdict.replace('-', "_")])
}

fn pdeathsig_race_orphans_legacy_only_and_reproduces_k_of_k() {
    let v = run(
        "pdeathsig-race",
        5,
        &["legacy", "pdeathsig-checked", "canonical"],
        &[],
    );
    assert_eq!(count(&v, "legacy", "orphan"), (5, 5));
    assert_eq!(count(&v, "pdeathsig-checked", "pass"), (5, 5));
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
    let v = run("pdeathsig-race", 0, &["legacy"], &["--repeat", "4"]);
    let r = &strategy(&v, "legacy")["reproduction"];
    assert_eq!(
        (
            r["verdict"].as_str(),
            r["trials"].as_u64(),
            r["of"].as_u64()
        ),
        (Some("orphan"), Some(4), Some(4)),
        "{r}"
    );
}

fn pdeathsig_from_a_thread_kills_the_child_early_on_legacy_only() {
    let v = run("pdeathsig-thread", 5, &["legacy", "canonical"], &[]);
    assert_eq!(count(&v, "legacy", "early_death"), (5, 5));
    assert!(
        reasons(&v, "legacy", "early-death")
            .iter()
            .all(|r| r.contains("while its parent (node root) was alive")),
        "{v}"
    );
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
}

fn a_leaky_lifeline_keeps_the_subtree_alive() {
    let v = run("lifeline-leak", 5, &["lifeline-leaky", "canonical"], &[]);
    assert_eq!(count(&v, "lifeline-leaky", "orphan"), (5, 5));
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
}

fn duplicated_stdio_hangs_the_legacy_reader_and_is_a_panic_on_canonical() {
    let without_guards = "create=clone3,death=lifeline,observe=pidfd,guards=off";
    let v = run(
        "stdio-dup",
        3,
        &["legacy", "canonical", without_guards],
        &[],
    );
    assert_eq!(count(&v, "legacy", "hang"), (3, 3));
    // The node's stdio audit finds fd 1 and fd 10 on one pipe before it exits.
    assert_eq!(count(&v, "canonical", "panic"), (3, 3));
    assert!(
        reasons(&v, "canonical", "panic")
            .iter()
            .all(|r| r.starts_with("duplicated stdio: fd 1 and fd 10 -> pipe:[")),
        "{v}"
    );
    assert_eq!(
        named(&strategy(&v, "canonical")["signatures"], "duplicated-stdio"),
        Some(3)
    );
    // Without the guards, the canonical reader's bounded EOF wait names the
    // holder as a leak.
    assert_eq!(count(&v, without_guards, "leak"), (3, 3));
    let leaks = reasons(&v, without_guards, "leak");
    assert!(
        leaks
            .iter()
            .all(|r| r.contains("fd 1 of pid ") && r.contains("(<fork of a node, no exec>)")),
        "the holder is named: {leaks:?}"
    );
}

fn a_background_command_holding_stdout_is_a_hang_or_a_named_leak() {
    let v = run(
        &scenario("command-background.toml"),
        2,
        &["legacy", "canonical"],
        &[],
    );
    assert_eq!(count(&v, "legacy", "hang"), (2, 2));
    assert_eq!(count(&v, "canonical", "leak"), (2, 2));
    // No background command is left: `lab` asserts that nothing of this
    // lab's tree (its marker, which the sleeps inherit) is alive.
}

fn a_mutex_held_at_the_fork_hangs_copies_and_never_exec_d_children() {
    let v = run(
        "mt-fork-mutex",
        10,
        &["fork-noexec", "legacy", "canonical"],
        &[],
    );
    // Each trial forks 4 children from a root whose 4 threads hold the lock
    // about half the time: a trial without a blocked child is rare.
    assert!(count(&v, "fork-noexec", "hang").1 >= 1, "{v}");
    assert_eq!(count(&v, "legacy", "pass"), (10, 10), "{v}");
    assert_eq!(count(&v, "canonical", "pass"), (10, 10), "{v}");
}

fn the_attendant_hangs_legacy_copies_and_is_refused_at_plan_time_on_canonical() {
    let v = run("mt-fork-attendant", 3, &["legacy", "canonical"], &[]);
    assert_eq!(count(&v, "legacy", "hang"), (3, 3));
    assert_eq!(count(&v, "canonical", "panic"), (3, 3));
    assert!(reasons(&v, "canonical", "panic")
        .iter()
        .all(|r| r.contains("refused at plan time") && r.contains("exec = true")));
    // Refused before anything is spawned: not at the 300 ms deadline.
    assert!(
        strategy(&v, "canonical")["median_verdict_us"]
            .as_u64()
            .unwrap()
            < 100_000
    );
}

fn a_full_pipe_hangs_the_parent_that_waits_before_reading() {
    let v = run("pipe-fill", 3, &["legacy", "canonical"], &[]);
    assert_eq!(count(&v, "legacy", "hang"), (3, 3));
    assert_eq!(count(&v, "canonical", "pass"), (3, 3));
}

fn a_setsid_daemon_escapes_the_process_group_but_not_the_canonical_teardown() {
    let v = run("setsid-escape", 5, &["legacy", "canonical"], &[]);
    assert_eq!(count(&v, "legacy", "orphan"), (5, 5));
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
    // Without a cgroup the subreaper catches the reparented daemon.
    let v = run("setsid-escape", 3, &["canonical"], &["--no-cgroup"]);
    assert_eq!(count(&v, "canonical", "pass"), (3, 3));
}

fn a_group_teardown_ends_a_helper_that_reparents_only_when_its_node_dies() {
    let name = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/helper-group.toml"
    );
    let v = run(name, 5, &["canonical"], &[]);
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
    // Subreaper mode: the supervisor signals the helper when it adopts it.
    let v = run(name, 5, &["canonical"], &["--no-cgroup"]);
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
    // What the test tells apart: a teardown of the root alone leaves it.
    let v = run(
        name,
        3,
        &["canonical"],
        &["--no-cgroup", "--set", "teardown.group=false"],
    );
    assert_eq!(count(&v, "canonical", "orphan"), (3, 3));
}

fn the_proc_oracle_sees_false_orphans_and_pidfds_none() {
    let v = run("proc-oracle", 10, &["legacy", "canonical"], &[]);
    assert_eq!(count(&v, "legacy", "pass"), (10, 10));
    assert_eq!(count(&v, "canonical", "pass"), (10, 10));
    let legacy = strategy(&v, "legacy");
    assert!(
        legacy["trials_with_false_orphans"].as_u64().unwrap() >= 1,
        "{legacy}"
    );
    assert_eq!(
        strategy(&v, "canonical")["false_orphans_total"].as_u64(),
        Some(0)
    );
}

fn a_reused_pid_is_killed_by_pid_and_spared_by_pidfd() {
    let (out, dir) = lab_run("pid-reuse", 5, &["legacy", "canonical"], &[]);
    let v = json_judged(&out);
    assert_eq!(count(&v, "legacy", "innocent_kill"), (5, 5));
    assert_eq!(count(&v, "canonical", "pass"), (5, 5));
    let _ = std::fs::remove_dir_all(dir);
}

fn the_kill_ladder_records_the_rung_that_ended_each_node() {
    // The rung recorded is the one in effect when the node's death was
    // seen: 200 ms a rung (not the scenario's 20 ms) so that a leaf that a
    // loaded machine lets run late is still seen dead of its SIGINT.
    let set = ["--set", "teardown.rung_wait=200ms"];
    let (out, dir) = lab_run("ignore-term", 3, &["legacy", "canonical"], &set);
    let v = json_judged(&out);
    assert_eq!(count(&v, "legacy", "pass"), (3, 3));
    assert_eq!(count(&v, "canonical", "pass"), (3, 3));
    let mut rows = csv::Reader::from_path(v["csv"].as_str().unwrap()).unwrap();
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (strat, rungs) = (col("strategy"), col("node_rungs"));
    let mut n = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let (last, term, int) = if &row[strat] == "legacy" {
            ("group-KILL", "group-TERM", "group-INT")
        } else if v["cgroup"] == true {
            ("cgroup.kill", "pidfds-TERM", "pidfds-INT")
        } else {
            // Without a cgroup (no cgroup.kill), the last rung is SIGKILL
            // through the pidfds.
            ("pidfds-KILL", "pidfds-TERM", "pidfds-INT")
        };
        let expected =
            format!("root={last} 0={term} 1={term} 0.0={int} 0.1={int} 1.0={int} 1.1={int}");
        assert_eq!(&row[rungs], expected.as_str());
        n += 1;
    }
    assert_eq!(n, 6);
    let _ = std::fs::remove_dir_all(dir);
}

fn strategies_env_and_the_autokill_refusal() {
    let out = lab(&["strategies"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [
        "canonical",
        "legacy",
        "pdeathsig-checked",
        "lifeline-leaky",
        "fork-noexec",
        "std-command",
        "autokill",
    ] {
        assert!(text.lines().any(|l| l.starts_with(p)), "{p} in {text}");
    }
    let env = json(&lab(&["env", "--format", "json"], &[]));
    assert_eq!(env["features"]["clone3"], true, "{env}");
    if env["features"]["autokill"] == false {
        let out = lab(&["run", "nested", "--strategy", "autokill"], &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("CLONE_PIDFD_AUTOKILL"));
    }
}

fn std_command_runs_exec_d_nodes_and_orphans_without_parent_death_detection() {
    let v = run("nested", 3, &["std-command"], &[]);
    // std::process::Command arms nothing for parent death: the subtree of
    // the killed node lives on.
    assert_eq!(count(&v, "std-command", "orphan"), (3, 3), "{v}");
}

tests! {
    pdeathsig_race_orphans_legacy_only_and_reproduces_k_of_k;
    pdeathsig_from_a_thread_kills_the_child_early_on_legacy_only;
    a_leaky_lifeline_keeps_the_subtree_alive;
    duplicated_stdio_hangs_the_legacy_reader_and_is_a_panic_on_canonical;
    a_background_command_holding_stdout_is_a_hang_or_a_named_leak;
    a_mutex_held_at_the_fork_hangs_copies_and_never_exec_d_children;
    the_attendant_hangs_legacy_copies_and_is_refused_at_plan_time_on_canonical;
    a_full_pipe_hangs_the_parent_that_waits_before_reading;
    a_setsid_daemon_escapes_the_process_group_but_not_the_canonical_teardown;
    a_group_teardown_ends_a_helper_that_reparents_only_when_its_node_dies;
    the_proc_oracle_sees_false_orphans_and_pidfds_none;
    a_reused_pid_is_killed_by_pid_and_spared_by_pidfd needs crate::PIDNS;
    the_kill_ladder_records_the_rung_that_ended_each_node;
    strategies_env_and_the_autokill_refusal;
    std_command_runs_exec_d_nodes_and_orphans_without_parent_death_detection;
}
