//! Issue 12, item 3: a gate kill waits until every fate the plan fixes is
//! known, so a gated plan leaves the same survivors in every trial, and
//! `--repeat` says how many distinct survivor sets it saw.

use super::*;

/// `lab run nested --seed N --strategy legacy --repeat 10`: for a few
/// seeds, every trial orphans the same nodes, one survivor set, in the text
/// summary and in the JSON.
fn a_gated_plan_leaves_one_survivor_set_under_legacy() {
    for seed in SEEDS {
        let dir = out_dir("survivors");
        let mut args = vec!["run", "nested", "--seed", seed, "--strategy", "legacy"];
        args.extend(["--repeat", "10", "--out", dir.to_str().unwrap()]);
        let text = lab(&args, &[]);
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        args.extend(["--format", "json"]);
        let out = lab(&args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "legacy orphans, as nested expects: seed {seed}"
        );
        let v = json(&out);
        let legacy = strategy(&v, "legacy");
        assert_eq!(legacy["orphan"].as_u64(), Some(10), "seed {seed}: {legacy}");
        let sets = legacy["survivor_sets"].as_array().unwrap();
        assert_eq!(sets.len(), 1, "seed {seed}: {sets:?}");
        assert_eq!(sets[0]["trials"].as_u64(), Some(10), "seed {seed}");
        let survivors: Vec<&str> = sets[0]["survivors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(!survivors.is_empty(), "seed {seed}: legacy orphans some");
        let line = format!(
            "survivor sets: 1 (every trial left {})",
            survivors.join(" ")
        );
        assert!(text.contains(&line), "seed {seed}: no `{line}` in\n{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Under canonical the same plans pass every trial, and leave nothing.
fn the_same_plans_pass_every_trial_under_canonical_with_no_survivors() {
    for seed in SEEDS {
        let dir = out_dir("survivors-canonical");
        let args = [
            "run",
            "nested",
            "--seed",
            seed,
            "--strategy",
            "canonical",
            "--repeat",
            "10",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ];
        let out = lab(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "seed {seed}");
        let v = json(&out);
        let canonical = strategy(&v, "canonical");
        assert_eq!(canonical["pass"].as_u64(), Some(10), "seed {seed}");
        let sets = canonical["survivor_sets"].as_array().unwrap();
        assert_eq!(sets.len(), 1, "seed {seed}: {sets:?}");
        assert_eq!(sets[0]["survivors"].as_array().map(Vec::len), Some(0));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Seeds whose plans left several survivor sets before the gate kill
/// waited (4, 8 and 6 sets in 20 trials under legacy).
const SEEDS: [&str; 3] = ["1", "4", "13"];

/// The text summary of `lab ARGS --trials 4` (its exit status aside).
fn summary_of(args: &[&str], tag: &str) -> String {
    let dir = out_dir(tag);
    // The options right after the command, before any `-- PROGRAM`.
    let mut args = args.to_vec();
    args.splice(1..1, ["--trials", "4", "--out", dir.to_str().unwrap()]);
    let out = lab(&args, &[]);
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes outside the plan are named the one way (pid, what it runs,
/// who started it) by `lab run` as by `lab exec` (below), and counted in
/// the survivor sets, whether the verdict is the orphan they make or the
/// leak they hold.
fn processes_outside_the_plan_are_named_and_counted_in_the_survivor_sets() {
    // A daemon's grandchild, a fork of a node that never exec'd, orphaned.
    let text = summary_of(
        &["run", "setsid-escape", "--strategy", "legacy"],
        "named-orphan",
    );
    assert!(
        text.contains("orphan x4: ")
            && text.contains("1 process outside the plan: pid N (<fork of a node, no exec>)")
            && text.contains("survivor sets: 1 (every trial left <fork of a node, no exec>)"),
        "{text}"
    );
    // Its stdout held by a fork outside the plan: a leak, its holder named.
    let unguarded = "create=clone3,death=lifeline,observe=pidfd,guards=off";
    let text = summary_of(&["run", "stdio-dup", "--strategy", unguarded], "named-leak");
    assert!(
        text.contains("leak x4: ")
            && text.contains("a writer still held it: fd 1 of pid N (<fork of a node, no exec>)")
            && text.contains("survivor sets: 1 (every trial left <fork of a node, no exec>)"),
        "{text}"
    );
}

/// A program's background child holding its stdout is named as `lab run`
/// names a process outside the plan, with who started it: the lineage of
/// a program's descendants comes from the kernel's process events (from
/// `/proc` scans alone, a `sh` that exits at once is gone before it is
/// seen, and the child is named without its parent).
fn a_programs_leaked_child_is_named_with_who_started_it() {
    let text = summary_of(
        &[
            "exec",
            "--capture",
            "--",
            "sh",
            "-c",
            "sleep 30 & echo started",
        ],
        "named-exec-leak",
    );
    assert!(
        text.contains("leak x4: ")
            && text.contains(
                "fd 1 of pid N (`sleep 30`), started by `sh -c sleep 30 & echo started` (pid N)"
            )
            && text.contains("survivor sets: 1 (every trial left `sleep 30`)"),
        "{text}"
    );
}

/// A program whose children vary from trial to trial by its own timing:
/// the survivor sets say so, and do not blame the plan.
fn a_program_whose_survivors_vary_is_not_called_a_nondeterministic_plan() {
    // A background `sleep 31` in the trials whose clock read ends in an
    // even digit of nanoseconds: about half, never all of 20 (2^-19).
    let script = "sleep 30 & case $(date +%N) in *[02468]) sleep 31 & ;; esac; exit 0";
    let dir = out_dir("jitter");
    let out = lab(
        &[
            "exec",
            "--trials",
            "20",
            "--out",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ],
        &[],
    );
    let _ = std::fs::remove_dir_all(dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "survivor sets: 2: the program left different processes from trial to trial: its \
             own timing (start-up and scheduling jitter) decides, which the lab's plan does not fix"
        ) && !text.contains("the plan is nondeterministic"),
        "{text}"
    );
}

tests! {
    a_gated_plan_leaves_one_survivor_set_under_legacy;
    the_same_plans_pass_every_trial_under_canonical_with_no_survivors;
    processes_outside_the_plan_are_named_and_counted_in_the_survivor_sets;
    a_programs_leaked_child_is_named_with_who_started_it needs PROC_CONNECTOR;
    a_program_whose_survivors_vary_is_not_called_a_nondeterministic_plan;
}
