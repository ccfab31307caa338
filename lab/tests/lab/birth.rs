//! Issue 14, item 5: kills timed from a birth race a process's start-up
//! without a gate (the field's PDEATHSIG measurement).

use super::*;

/// `root -> 0 -> 0.0`, node 0 SIGKILLed right after its own creation: under
/// `legacy` 0.0 may be caught between fork and prctl and orphaned (a race,
/// so any mix of pass and orphan); the lifeline exists before the child
/// does, so under `canonical` every trial passes.
fn a_kill_timed_from_a_birth_races_the_start_up() {
    let file = scenario("pdeathsig-birth.toml");
    let (out, dir) = lab_run(&file, 30, &["legacy", "canonical"], &[]);
    let v = json(&out);
    let canonical = strategy(&v, "canonical");
    assert_eq!(canonical["pass"].as_u64(), Some(30), "{canonical}");
    let legacy = strategy(&v, "legacy");
    assert_eq!(
        legacy["pass"].as_u64().unwrap() + legacy["orphan"].as_u64().unwrap(),
        30,
        "{legacy}"
    );
    let _ = std::fs::remove_dir_all(dir);
    // The plan says when the kill fires.
    let out = lab(&["plan", &file, "--set", "kill.0.at=spawn+3ms"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kill 0 with SIGKILL 3000 us after it was created"),
        "{text}"
    );
}

/// `lab soak --set` applies to every scenario and is repeated in the replay
/// commands; `--sweep` takes a list of values.
fn a_soak_sets_keys_and_sweeps_a_list() {
    let dir = out_dir("soak-set");
    let out = lab(
        &[
            "soak",
            "--scenario",
            "nested",
            "--set",
            "tree.depth=2",
            "--sweep",
            "kill.0.at=gate:created,gate:armed",
            "--strategy",
            "legacy",
            "--trials",
            "3",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let v = json(&out);
    assert_eq!(v["spec"]["set"], serde_json::json!(["tree.depth=2"]), "{v}");
    let groups = v["groups"].as_array().unwrap();
    let mut values: Vec<&str> = groups
        .iter()
        .map(|g| g["sweep_value"].as_str().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["gate:armed", "gate:created"], "{v}");
    // Held at `created`, the child arms PDEATHSIG for a dead parent: legacy
    // orphans it, and the replay repeats both the set and the swept value.
    let created = groups
        .iter()
        .find(|g| g["sweep_value"] == "gate:created")
        .unwrap();
    assert_eq!(
        created["rates"]["orphan"]["count"].as_u64(),
        Some(3),
        "{created}"
    );
    for f in created["failing"].as_array().unwrap() {
        let replay = f["replay"].as_str().unwrap();
        assert!(
            replay.contains("--set tree.depth=2 --set kill.0.at=gate:created"),
            "{replay}"
        );
    }
    // A tree of depth 2: the rows say at most 7 nodes spawned.
    let mut rows = csv::Reader::from_path(v["csv"].as_str().unwrap()).unwrap();
    let col = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "nodes_spawned")
        .unwrap();
    for row in rows.records() {
        let spawned: u32 = row.unwrap()[col].parse().unwrap();
        assert!(spawned <= 7, "{spawned} nodes in a depth-2 tree");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Kills held at the gates of nodes that will never be born (found by `lab
/// fuzz`): they are done without a signal, and every trial comes to a
/// verdict about the strategy (it was an `error` at the deadline's cap, the
/// course waiting for a gate no node would reach), at -j 4 on 2 cores.
fn a_kill_held_at_the_gate_of_a_node_never_born_is_done_without_a_signal() {
    // The regression `lab fuzz` keeps for it, at the top of the repository.
    let file = crate_path("../fuzz-regressions", "gate-chain.toml");
    let (out, dir) = lab_run(&file, 20, &["canonical", "legacy"], &["-j", "4"]);
    let v = json(&out);
    for s in ["canonical", "legacy"] {
        let r = strategy(&v, s);
        assert_eq!(r["error"].as_u64().unwrap_or(0), 0, "{r}");
        assert_eq!(r["hang"].as_u64().unwrap_or(0), 0, "{r}");
    }
    assert_eq!(strategy(&v, "canonical")["pass"].as_u64(), Some(20), "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 27, item 6: `pdeathsig-startup`, the child armed in its exec'd
/// program's start-up (`startup = "2ms"` of CPU work after its `created`
/// report). Killed right after that report, its parent is gone before the
/// legacy `prctl` in some trials: 0.0 is orphaned (and survives the
/// teardown, being outside its reach). `pdeathsig-checked` and `canonical`
/// never leave it. The plan shows the exec and the start-up.
fn a_child_that_arms_in_its_start_up_outlives_a_parent_killed_before() {
    let (out, dir) = lab_run(
        "pdeathsig-startup",
        20,
        &["legacy", "pdeathsig-checked", "canonical"],
        &[],
    );
    let v = json(&out);
    for s in ["pdeathsig-checked", "canonical"] {
        assert_eq!(strategy(&v, s)["pass"].as_u64(), Some(20), "{v}");
    }
    let legacy = strategy(&v, "legacy");
    let orphans = legacy["orphan"].as_u64().unwrap_or(0);
    assert!(orphans >= 1, "{legacy}");
    assert_eq!(
        legacy["pass"].as_u64().unwrap_or(0) + orphans,
        20,
        "{legacy}"
    );
    for r in legacy["survivor_sets"].as_array().unwrap() {
        let nodes = r["survivors"].as_array().unwrap();
        assert!(
            nodes.is_empty() || nodes == &[serde_json::json!("0.0")],
            "{legacy}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    let out = lab(&["plan", "pdeathsig-startup"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0.0: linger, exec, start-up 2000 us before it arms"),
        "{text}"
    );
}

tests! {
    a_child_that_arms_in_its_start_up_outlives_a_parent_killed_before;
    a_kill_timed_from_a_birth_races_the_start_up;
    a_soak_sets_keys_and_sweeps_a_list;
    a_kill_held_at_the_gate_of_a_node_never_born_is_done_without_a_signal;
}
