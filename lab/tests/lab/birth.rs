//! Issue 14, item 5: kills timed from a birth race a process's start-up
//! without a gate (the field's PDEATHSIG measurement).

use super::*;

/// `root -> 0 -> 0.0`, node 0 SIGKILLed right after its own creation: under
/// `legacy` 0.0 may be caught between fork and prctl and orphaned (a race,
/// so any mix of pass and orphan); the lifeline exists before the child
/// does, so under `canonical` every trial passes.
#[test]
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
