//! Issue 14, items 1 and 2: `lab exec` runs real programs (`sh`, `sleep`)
//! as the root of each trial and judges them: pass, fail, orphan, leak,
//! hang; killed at a seeded moment with a signal or a ladder. Every test
//! also checks that nothing the program started is left once the lab exits.

use super::*;

/// `lab exec --format json --out DIR` with `opts`, then `-- command`; the
/// JSON summary, the CSV's directory and the exit status. [`lab`] asserts
/// that no process of this lab's tree (its marker) is alive afterwards.
fn exec(tag: &str, opts: &[&str], command: &[&str]) -> (Value, PathBuf, i32) {
    exec_with(tag, opts, command, &[])
}

/// [`exec`] with environment variables `envs` set for the lab.
fn exec_with(
    tag: &str,
    opts: &[&str],
    command: &[&str],
    envs: &[(&str, &str)],
) -> (Value, PathBuf, i32) {
    let dir = out_dir(tag);
    let mut args = vec!["exec", "--format", "json", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(command);
    let out = lab(&args, envs);
    (json(&out), dir, out.status.code().unwrap_or(-1))
}

/// The first reason of `verdict` in strategy summary `r`.
fn reason(r: &Value, verdict: &str) -> String {
    names_of(&r["reasons"][verdict])
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn a_printing_program_passes() {
    let (v, dir, code) = exec(
        "exec-pass",
        &["--trials", "3"],
        &["sh", "-c", "echo hello; echo more >&2"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!((r["pass"].as_u64(), code), (Some(3), 0), "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A Python program that prints (its stdout is writable) passes; one that
/// raises is a `fail` with its traceback's last line in the summary.
fn a_python_program_passes_or_fails_by_its_exit_status() {
    let (v, dir, code) = exec(
        "exec-py",
        &["--trials", "2"],
        &["python3", "-c", "print('hello from python-xyz')"],
    );
    assert_eq!(
        (strategy(&v, "canonical")["pass"].as_u64(), code),
        (Some(2), 0),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let (v, dir, _) = exec(
        "exec-py-fail",
        &["--trials", "2"],
        &["python3", "-c", "raise SystemExit('bad config-xyz')"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["fail"].as_u64(), Some(2), "{r}");
    assert_eq!(r["output"]["tail"], "bad config-xyz", "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

fn an_unexpected_exit_status_is_a_fail_with_its_status_and_stderr() {
    let (v, dir, code) = exec(
        "exec-fail",
        &["--trials", "2"],
        &["sh", "-c", "echo broken-xyz >&2; exit 3"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!((r["fail"].as_u64(), code), (Some(2), 1), "{r}");
    assert!(
        reason(r, "fail").contains("exited with status 3; expected exit status 0"),
        "{r}"
    );
    assert!(
        r["output"]["tail"].as_str().unwrap().contains("broken-xyz"),
        "{r}"
    );
    // Each failing trial's stderr is a file of the run.
    let csv = Path::new(v["csv"].as_str().unwrap());
    let err =
        std::fs::read_to_string(csv.with_file_name("output").join("canonical.0.stderr")).unwrap();
    assert_eq!(err, "broken-xyz\n");
    let _ = std::fs::remove_dir_all(&dir);
    // Expected, the same status passes.
    let (v, dir, code) = exec(
        "exec-fail-expected",
        &["--trials", "2", "--expect-exit", "3"],
        &["sh", "-c", "echo broken-xyz >&2; exit 3"],
    );
    assert_eq!(
        (strategy(&v, "canonical")["pass"].as_u64(), code),
        (Some(2), 0),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_background_child_left_behind_is_an_orphan_named_and_cleaned_up() {
    let (v, dir, code) = exec(
        "exec-orphan",
        &["--trials", "20", "-j", "4"],
        &["sh", "-c", "sleep 31.101 & exit 0"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!((r["orphan"].as_u64(), code), (Some(20), 1), "{r}");
    let why = reason(r, "orphan");
    assert!(
        why.starts_with(
            "alive after `sh -c sleep 31.101 & exit 0` exited once the trial was quiescent"
        ) && why.contains("1 process outside the plan: pid N (`sleep 31.101`)"),
        "{why}"
    );
    // The interval of the rate is there, as in every run.
    assert!(r["rates"]["orphan"]["low"].as_f64().unwrap() > 0.8, "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

fn with_capture_a_child_holding_stdout_is_a_leak_naming_it() {
    let (v, dir, _) = exec(
        "exec-leak",
        &["--trials", "3", "--capture"],
        &["sh", "-c", "sleep 31.102 & echo hi"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["leak"].as_u64(), Some(3), "{r}");
    let why = reason(r, "leak");
    assert!(
        why.contains("the stdout of `sh -c sleep 31.102 & echo hi` (pipe:[N]) was still held open after it exited: fd 1 of pid N (`sleep 31.102`)"),
        "{why}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A shell that traps TERM and kills its child before exiting passes a
/// TERM; a KILL leaves the child behind. The kill comes 1 s after the
/// spawn, long after the shell set its trap and started its child.
fn a_kill_after_the_start_tells_a_clean_shutdown_from_an_orphaning_one() {
    let script = "trap 'kill $p; exit 0' TERM; sleep 31.103 & p=$!; wait";
    let (v, dir, code) = exec(
        "exec-term",
        &["--trials", "2", "--kill-after", "1s", "--signal", "TERM"],
        &["sh", "-c", script],
    );
    assert_eq!(
        (strategy(&v, "canonical")["pass"].as_u64(), code),
        (Some(2), 0),
        "{v}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let (v, dir, _) = exec(
        "exec-kill",
        &["--trials", "2", "--kill-after", "1s", "--signal", "KILL"],
        &["sh", "-c", script],
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["orphan"].as_u64(), Some(2), "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A ladder: INT is ignored, TERM is ignored, KILL ends the program 2 x
/// 50 ms later; its child, which ignores nothing, is orphaned.
fn a_signal_ladder_climbs_while_the_program_lives() {
    let script = "trap '' INT TERM; sleep 31.104 & wait";
    let (v, dir, _) = exec(
        "exec-ladder",
        &[
            "--trials",
            "2",
            "--kill-after",
            "1s",
            "--signal",
            "INT,TERM,KILL",
            "--grace",
            "50ms",
        ],
        &["sh", "-c", script],
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["orphan"].as_u64(), Some(2), "{r}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--trace` writes the timeline of passing trials too.
fn with_trace_a_passing_trial_leaves_its_timeline() {
    let (v, dir, code) = exec(
        "exec-trace",
        &["--trials", "2", "--trace"],
        &["sh", "-c", "sleep 0.01 & wait"],
    );
    assert_eq!(
        (strategy(&v, "canonical")["pass"].as_u64(), code),
        (Some(2), 0),
        "{v}"
    );
    let csv = Path::new(v["csv"].as_str().unwrap());
    for t in 0..2 {
        let file = csv
            .with_file_name("trace")
            .join(format!("canonical.{t}.json"));
        let trace: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            trace["traceEvents"].as_array().unwrap().len() >= 2,
            "{trace}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn a_program_that_never_exits_is_a_hang_naming_what_blocks() {
    let (v, dir, _) = exec(
        "exec-hang",
        &["--trials", "1", "--deadline", "300ms"],
        &["sh", "-c", "sleep 31.105; true"],
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["hang"].as_u64(), Some(1), "{r}");
    let why = reason(r, "hang");
    assert!(
        why.starts_with("`sh -c sleep 31.105; true` did not exit within the deadline (300 ms)")
            && why
                .contains("pid N (`sleep 31.105`), started by `sh -c sleep 31.105; true` (pid N)"),
        "{why}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn bad_exec_input_is_refused_with_the_reason() {
    let long_name = "n".repeat(65);
    for (args, says) in [
        (
            vec!["exec", "--", "no-such-program-xyz"],
            "cannot start `no-such-program-xyz`",
        ),
        (
            vec!["exec", "--kill-after", "9ms..1ms", "--", "true"],
            "low <= high",
        ),
        (
            vec!["exec", "--signal", "TERM", "--", "true"],
            "--kill-after",
        ),
        (vec!["exec", "--env", "=x", "--", "true"], "NAME=VALUE"),
        // A name longer than a result file's name can carry.
        (
            vec!["exec", "--name", &long_name, "--", "true"],
            "at most 64 of them",
        ),
        (vec!["exec", "--name", "a b", "--", "true"], "invalid value"),
        (vec!["exec"], "PROGRAM"),
    ] {
        let dir = out_dir("exec-bad");
        let mut a = args.clone();
        a.extend(["--trials", "1", "--out", dir.to_str().unwrap()]);
        // `--` must stay last: put the options before it.
        if let Some(at) = args.iter().position(|s| *s == "--") {
            a = args[..at].to_vec();
            a.extend(["--trials", "1", "--out", dir.to_str().unwrap()]);
            a.extend_from_slice(&args[at..]);
        }
        let out = lab(&a, &[]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains(says), "{a:?}: {all}");
        assert_ne!(out.status.code(), Some(0), "{a:?}");
        assert!(!all.contains("panicked"), "{all}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Issue 14, item 3: every leaked process is named with its lineage, and
/// a failing trial leaves its timeline as Chrome trace-event JSON holding
/// every process of the trial.
fn a_leaked_process_is_named_with_its_lineage_and_the_trial_traced() {
    leaked_processes_are_named_with_their_lineage("31.20", &[]);
}

/// The same without a cgroup (an unprivileged user's mode): the grandchild
/// whose parent is still alive never reparents to the supervisor, and is
/// named too (it used to be left out: 2 processes instead of 3).
fn without_a_cgroup_a_leaked_grandchild_is_named_too() {
    leaked_processes_are_named_with_their_lineage("31.21", &[("LAB_NO_CGROUP", "1")]);
}

/// `lab exec` (environment `envs`) of a shell that leaves a sleep, a
/// shell and that shell's sleep behind: all three named with their
/// lineage, and the trial's trace holding each.
fn leaked_processes_are_named_with_their_lineage(secs: &str, envs: &[(&str, &str)]) {
    // Sleeps of SECS6 and SECS7 seconds: names no other test uses.
    let (a, b) = (format!("{secs}6"), format!("{secs}7"));
    let script = format!("sleep {a} & sh -c 'sleep {b} & wait' & wait");
    let (v, dir, _) = exec_with(
        "exec-lineage",
        &["--trials", "2", "--kill-after", "1s", "--signal", "KILL"],
        &["sh", "-c", &script],
        envs,
    );
    let r = strategy(&v, "canonical");
    assert_eq!(r["orphan"].as_u64(), Some(2), "{r}");
    let why = reason(r, "orphan");
    assert!(
        why.contains(&format!("pid N (`sleep {a}`), started by `sh -c {script}` (pid N)"))
            && why.contains(&format!("pid N (`sh -c sleep {b} & wait`), started by `sh -c sleep {a}"))
            && why.contains(&format!("pid N (`sleep {b}`), started by `sh -c sleep {b} & wait` (pid N), itself started by `sh -c sleep {a}")),
        "{why}"
    );
    let csv = Path::new(v["csv"].as_str().unwrap());
    let trace = csv.with_file_name("trace").join("canonical.0.json");
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let rows: Vec<String> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "M")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    // The program, its two shells' children and the inner shell: four
    // processes, each a row with its command and pid.
    assert_eq!(rows.len(), 4, "{rows:?}");
    let source = trace["otherData"]["lineage_source"].as_str().unwrap();
    assert!(
        ["proc-connector", "proc-scan"].contains(&source),
        "{source}"
    );
    for name in [
        format!("sleep {a} (pid "),
        format!("sleep {b} (pid "),
        format!("sh -c sleep {b} & wait (pid "),
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(&name)),
            "{name}: {rows:?}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A pass whose descendants all failed at once (two `sh -c "exit 2"`
/// started together) is told from a healthy pass: the summary counts the
/// trials in which descendants failed and names the failures with their
/// status, from the kernel's exit statuses (the process events); the same
/// program with children that exit 0 says nothing of the kind.
fn a_pass_whose_descendants_failed_says_so() {
    let failing = "sh -c 'exit 2' & sh -c 'exit 2' & wait";
    let (v, dir, code) = exec(
        "descendants-failed",
        &["--trials", "10"],
        &["sh", "-c", failing],
    );
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, 0, "the program exits 0: a pass\n{v}");
    let c = strategy(&v, "canonical");
    assert_eq!(c["pass"].as_u64(), Some(10), "{c}");
    assert_eq!(
        c["trials_with_descendant_failures"].as_u64(),
        Some(10),
        "{c}"
    );
    let failures = c["descendant_failures"].as_array().unwrap();
    // Each failure counted once per trial it happened in.
    assert!(!failures.is_empty());
    assert!(
        failures
            .iter()
            .all(|f| f["trials"].as_u64().is_some_and(|n| (1..=10).contains(&n))),
        "{failures:?}"
    );
    assert!(
        failures.iter().all(|f| f["name"]
            .as_str()
            .is_some_and(|n| n.ends_with(" exited with status 2"))),
        "{failures:?}"
    );
    // In the text summary.
    let dir = out_dir("descendants-failed-text");
    let out = lab(
        &[
            "exec",
            "--trials",
            "3",
            "--out",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            failing,
        ],
        &[],
    );
    let _ = std::fs::remove_dir_all(dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  descendants failed: in 3 of 3 trials ("),
        "{text}"
    );
    assert!(text.contains("exited with status 2 x"), "{text}");
    // Healthy children: nothing to say.
    let healthy = "sh -c 'exit 0' & sh -c 'exit 0' & wait";
    let (v, dir, code) = exec(
        "descendants-healthy",
        &["--trials", "10"],
        &["sh", "-c", healthy],
    );
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(code, 0, "{v}");
    let c = strategy(&v, "canonical");
    assert_eq!(
        c["trials_with_descendant_failures"].as_u64(),
        Some(0),
        "{c}"
    );
}

/// The rows of the CSV at `path`, each a map from column to value.
fn csv_records(path: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The moment (µs) of column `col` of a row; panics when it is empty.
fn moment(row: &std::collections::HashMap<String, String>, col: &str) -> u64 {
    row[col]
        .parse()
        .unwrap_or_else(|e| panic!("{col} `{}`: {e}: {row:?}", row[col]))
}

/// Issue 27, item 1: with a `--kill-after` window each trial draws its own
/// moment from the seed and its index: one run covers the window (distinct
/// planned moments, each inside it, each sent at or after it), and a trial
/// replayed alone (`lab exec --trial K`, or the row's replay command) is
/// killed at the moment it drew in the run.
fn each_trial_draws_its_own_kill_moment_and_replays_it_alone() {
    let window = ["--kill-after", "5ms..200ms", "--signal", "KILL"];
    let mut opts = vec!["--trials", "6"];
    opts.extend(window);
    let (v, dir, _) = exec("exec-moments", &opts, &["sleep", "31.105"]);
    let rows = csv_records(v["csv"].as_str().unwrap());
    assert_eq!(rows.len(), 6, "{v}");
    let mut planned = std::collections::BTreeMap::new();
    for row in &rows {
        let (p, s) = (moment(row, "kill_planned_us"), moment(row, "kill_sent_us"));
        assert!((5_000..=200_000).contains(&p), "planned {p}: {row:?}");
        assert!(s >= p, "sent {s} before planned {p}: {row:?}");
        assert_eq!(row["schema"], "6");
        planned.insert(moment(row, "trial"), p);
    }
    let distinct: std::collections::BTreeSet<u64> = planned.values().copied().collect();
    assert_eq!(distinct.len(), 6, "one moment per trial: {planned:?}");
    // Trial 3 alone, by `lab exec --trial 3`.
    let mut opts = vec!["--trials", "1", "--trial", "3"];
    opts.extend(window);
    let (alone, dir2, _) = exec("exec-moment-3", &opts, &["sleep", "31.105"]);
    let again = csv_records(alone["csv"].as_str().unwrap());
    assert_eq!(again.len(), 1);
    assert_eq!(
        (
            moment(&again[0], "trial"),
            moment(&again[0], "kill_planned_us")
        ),
        (3, planned[&3])
    );
    // Trial 4 by the replay command its row carries.
    let row4 = rows.iter().find(|r| r["trial"] == "4").unwrap();
    let replay: Vec<&str> = row4["replay"].split_whitespace().collect();
    assert_eq!(replay[..2], ["lab", "run"], "{}", row4["replay"]);
    assert!(row4["replay"].ends_with("--trial 4"), "{}", row4["replay"]);
    let dir3 = out_dir("exec-moment-replay");
    let mut args = replay[1..].to_vec();
    args.extend(["--format", "json", "--out", dir3.to_str().unwrap()]);
    let out = lab(&args, &[]);
    let replayed = csv_records(json(&out)["csv"].as_str().unwrap());
    assert_eq!(
        (
            moment(&replayed[0], "trial"),
            moment(&replayed[0], "kill_planned_us")
        ),
        (4, planned[&4])
    );
    assert_eq!(replayed[0]["plan_hash"], row4["plan_hash"]);
    for d in [dir, dir2, dir3] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Issue 27, item 1, `lab run`: a kill window is drawn once per plan
/// unless the kill says `per_trial = true`: every trial of a run is planned
/// for the same moment and the summary says so; with `--set
/// kill.0.per_trial=true` the trials' moments differ, and the summary says
/// that instead.
fn lab_run_draws_a_window_once_per_plan_unless_the_kill_says_per_trial() {
    let dir = out_dir("run-window");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("window.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"window\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [[kill]]\ntarget = \"0\"\nat = \"spawn+1ms..9ms\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for (extra, distinct, says) in [
        (&[][..], 1, "drawn once per plan"),
        (
            &["--set", "kill.0.per_trial=true"][..],
            4,
            "drawn per trial",
        ),
    ] {
        let (out, run_dir) = lab_run(file, 4, &["canonical"], extra);
        let v = json(&out);
        let note = v["kill_moments"].as_str().unwrap_or_default();
        assert!(note.contains(says), "{extra:?}: {v}");
        let rows = csv_records(v["csv"].as_str().unwrap());
        let planned: std::collections::BTreeSet<u64> =
            rows.iter().map(|r| moment(r, "kill_planned_us")).collect();
        assert_eq!(planned.len(), distinct, "{extra:?}: {planned:?}");
        assert!(
            planned.iter().all(|p| (1_000..=9_000).contains(p)),
            "{planned:?}"
        );
        let _ = std::fs::remove_dir_all(run_dir);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 27, item 7: a missing `--cwd` is named (not the program that could
/// not start in it), and a bad `--env` is refused naming the flag; both
/// with exit status 2, before any scenario file is written.
fn exec_flags_are_checked_before_a_scenario_is_written() {
    for (flag, value, says) in [
        (
            "--cwd",
            "/nonexistent-lab-xyz",
            "--cwd /nonexistent-lab-xyz",
        ),
        ("--env", "BAD", "--env"),
    ] {
        let dir = out_dir("exec-flags");
        let out = lab(
            &[
                "exec",
                flag,
                value,
                "--out",
                dir.to_str().unwrap(),
                "--",
                "true",
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says) && err.contains(value), "{flag}: {err}");
        assert!(!err.contains("cannot start"), "{flag}: {err}");
        assert!(!dir.join("exec").exists(), "{flag}: a scenario was written");
        let _ = std::fs::remove_dir_all(dir);
    }
}

tests! {
    a_pass_whose_descendants_failed_says_so needs PROC_CONNECTOR;
    a_printing_program_passes;
    a_python_program_passes_or_fails_by_its_exit_status needs testkit::PYTHON3;
    an_unexpected_exit_status_is_a_fail_with_its_status_and_stderr;
    a_background_child_left_behind_is_an_orphan_named_and_cleaned_up;
    with_capture_a_child_holding_stdout_is_a_leak_naming_it;
    a_kill_after_the_start_tells_a_clean_shutdown_from_an_orphaning_one;
    a_signal_ladder_climbs_while_the_program_lives;
    with_trace_a_passing_trial_leaves_its_timeline;
    a_program_that_never_exits_is_a_hang_naming_what_blocks;
    bad_exec_input_is_refused_with_the_reason;
    a_leaked_process_is_named_with_its_lineage_and_the_trial_traced;
    without_a_cgroup_a_leaked_grandchild_is_named_too;
    each_trial_draws_its_own_kill_moment_and_replays_it_alone;
    exec_flags_are_checked_before_a_scenario_is_written;
    lab_run_draws_a_window_once_per_plan_unless_the_kill_says_per_trial;
}
