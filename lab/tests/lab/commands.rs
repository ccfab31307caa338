//! Issue 14, item 4: command nodes that behave like real programs. Their
//! stdout is writable, a program that cannot be started is named with the
//! PATH searched, a gate held by a command leaf is refused before anything
//! runs, and node processes carry their node path in their name.

use super::*;

fn a_command_that_prints_passes() {
    let (out, dir) = lab_run(&scenario("commands.toml"), 3, &["canonical", "legacy"], &[]);
    let v = json(&out);
    for name in ["canonical", "legacy"] {
        let r = strategy(&v, name);
        assert_eq!(r["pass"].as_u64(), Some(3), "{name}: {r}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn a_program_that_cannot_start_is_named_with_the_path_searched() {
    let dir = out_dir("missing");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("missing.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"missing\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [nodes.leaves]\ncommand = [\"no-such-program-xyz\", \"--flag\"]\n",
    )
    .unwrap();
    let (out, run_dir) = lab_run(file.to_str().unwrap(), 1, &["canonical"], &[]);
    let r = strategy(&json(&out), "canonical").clone();
    assert_eq!(r["error"].as_u64(), Some(1), "{r}");
    let reason = names_of(&r["reasons"]["error"]).remove(0);
    assert!(
        reason.starts_with(
            "node root could not start `no-such-program-xyz --flag` (the command of node 0): \
             No such file or directory"
        ) && reason.contains("; PATH searched: "),
        "{reason}"
    );
    let _ = std::fs::remove_dir_all(run_dir);
    let _ = std::fs::remove_dir_all(dir);
}

fn a_gate_held_by_a_command_leaf_is_refused_before_anything_runs() {
    let dir = out_dir("gatecmd");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatecmd.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"gatecmd\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [nodes.leaves]\ncommand = [\"sleep\", \"1\"]\n\
         [[kill]]\ntarget = \"root\"\nat = \"gate:created\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let run_dir = dir.join("results");
    for args in [
        vec!["check", file],
        vec!["plan", file],
        vec!["run", file, "--out", run_dir.to_str().unwrap()],
    ] {
        let out = lab(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("held at the gate of node 0 (`sleep 1`), a command node"),
            "{args:?}: {err}"
        );
    }
    assert!(!run_dir.exists(), "a refused run writes nothing");
    let _ = std::fs::remove_dir_all(dir);
}

fn node_processes_are_named_after_their_node() {
    let (out, dir) = lab_run(&scenario("deadlock.toml"), 1, &["canonical"], &[]);
    let v = json(&out);
    let procs = strategy(&v, "canonical")["diagnosis"]["processes"]
        .as_array()
        .unwrap()
        .clone();
    let nodes: Vec<_> = procs.iter().filter(|p| p["node"].is_string()).collect();
    assert_eq!(nodes.len(), 3, "{procs:?}");
    for p in nodes {
        assert_eq!(
            p["comm"].as_str().unwrap(),
            format!("node {}", p["node"].as_str().unwrap()),
            "{p}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A command's exit status counts: `exit 3` is a `fail` naming its status,
/// and passes where the scenario expects it (`expect_exit = 3`), under
/// every strategy (each reaps its children its own way).
fn a_command_exit_status_counts() {
    let dir = out_dir("exit3");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("exit3.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"exit3\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [nodes.leaves]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let all = ["canonical", "legacy", "std-command"];
    let (out, run_dir) = lab_run(file, 2, &all, &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    for name in all {
        let r = strategy(&v, name);
        assert_eq!(r["fail"].as_u64(), Some(2), "{name}: {r}");
        let reason = "command node 0 (`sh -c exit 3`) exited with status 3; expected exit status 0";
        assert_eq!(named(&r["reasons"]["fail"], reason), Some(2), "{name}: {r}");
    }
    let _ = std::fs::remove_dir_all(run_dir);
    let set = ["--set", "nodes.leaves.expect_exit=3"];
    let (out, run_dir) = lab_run(file, 2, &all, &set);
    let v = json(&out);
    for name in all {
        assert_eq!(strategy(&v, name)["pass"].as_u64(), Some(2), "{name}: {v}");
    }
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(run_dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 14, item 4: a node with `log = true` writes its stdout and stderr
/// to a file of its own in the run's `log/`, under every strategy.
fn a_logged_command_writes_its_stdout_and_stderr_to_its_own_file() {
    let dir = out_dir("logged");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("logged.toml");
    std::fs::write(
        &file,
        "version = 1\nname = \"logged\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [nodes.leaves]\ncommand = [\"sh\", \"-c\", \"echo out-xyz; echo err-xyz >&2\"]\nlog = true\n",
    )
    .unwrap();
    let (out, run_dir) = lab_run(file.to_str().unwrap(), 2, &["canonical", "legacy"], &[]);
    let v = json(&out);
    for name in ["canonical", "legacy"] {
        assert_eq!(strategy(&v, name)["pass"].as_u64(), Some(2), "{v}");
    }
    let logs = Path::new(v["csv"].as_str().unwrap()).with_file_name("log");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // One file per strategy and trial, named after the node (`0`).
    assert_eq!(names.len(), 4, "{names:?}");
    for n in &names {
        assert!(n.starts_with("logged.") && n.ends_with(".0.log"), "{n}");
        let text = std::fs::read_to_string(logs.join(n)).unwrap();
        assert_eq!(text, "out-xyz\nerr-xyz\n", "{n}");
    }
    let _ = std::fs::remove_dir_all(run_dir);
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_command_that_prints_passes;
    a_program_that_cannot_start_is_named_with_the_path_searched;
    a_gate_held_by_a_command_leaf_is_refused_before_anything_runs;
    node_processes_are_named_after_their_node;
    a_command_exit_status_counts;
    a_logged_command_writes_its_stdout_and_stderr_to_its_own_file;
}
