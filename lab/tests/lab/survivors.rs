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

tests! {
    a_gated_plan_leaves_one_survivor_set_under_legacy;
    the_same_plans_pass_every_trial_under_canonical_with_no_survivors;
}
