//! Issue 30: `lab wrap -- PROGRAM`, one transparent trial: the program's
//! output untouched and its exit status the wrap's, unless it left
//! processes behind (named with their lineage, then ended); signals
//! forwarded, a SIGTERM diagnosed first; a SIGKILLed wrap leaves nothing;
//! 126/127 like a shell; rows appended to one CSV by concurrent wraps.

use std::io::BufRead;

use super::*;

/// `lab wrap ARGS -- COMMAND`: its output (the marker's processes are
/// gone once it returns: [`lab`]).
fn wrap(opts: &[&str], command: &[&str]) -> Output {
    let mut args = vec!["wrap"];
    args.extend_from_slice(opts);
    args.push("--");
    args.extend_from_slice(command);
    lab(&args, &[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn exit_status_and_output_are_the_programs() {
    let out = wrap(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    let err = text(&out.stderr);
    assert!(err.starts_with("err\n"), "{err}");
    // Unprivileged, the fallback is said once too (tested below).
    let lab_lines = err
        .lines()
        .filter(|l| !l.starts_with("lab wrap: no cgroup"));
    assert_eq!(lab_lines.count(), 2, "one line of the lab's: {err}");
    // --quiet: nothing of the lab's when nothing is left, whatever the
    // program's status.
    let out = wrap(&["--quiet"], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(143), String::new()),
        "128 + SIGTERM, as a shell"
    );
    let out = wrap(&["--quiet"], &["sh", "-c", "exit 3"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(3), String::new())
    );
    let out = wrap(&["--quiet"], &["true"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), String::new())
    );
    // The environment and the working directory are the wrap's.
    let dir = out_dir("wrap-cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let out = lab_cmd_in(
        &dir,
        &["wrap", "-q", "--", "sh", "-c", "echo $WRAP_VAR; pwd"],
    );
    assert_eq!(
        text(&out.stdout),
        format!("v 1\n{}\n", dir.canonicalize().unwrap().display())
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Its stdin is the wrap's: what is written there reaches it, and its
    // end too.
    let marker = Marker::new();
    let mut child = marker
        .command(LAB)
        .args(["wrap", "-q", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"to stdin\n").unwrap();
    let out = child.wait_with_output().unwrap();
    marker.assert_gone("lab wrap -q -- cat");
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "to stdin\n".into())
    );
}

/// `lab ARGS` run in `dir` with `WRAP_VAR="v 1"`.
fn lab_cmd_in(dir: &Path, args: &[&str]) -> Output {
    let marker = Marker::new();
    let out = marker
        .command(LAB)
        .args(args)
        .current_dir(dir)
        .env("WRAP_VAR", "v 1")
        .output()
        .unwrap();
    marker.assert_gone("lab wrap");
    out
}

fn a_survivor_is_named_with_its_lineage_and_ended() {
    let out = wrap(&[], &["sh", "-c", "sleep 3001 & echo started"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{err}");
    assert_eq!(text(&out.stdout), "started\n");
    assert!(err.contains("orphan: pid "), "{err}");
    assert!(
        err.contains("(`sleep 3001`), started by `sh -c sleep 3001 & echo started`"),
        "{err}"
    );
    assert!(
        err.contains("once the trial was quiescent"),
        "the reason of lab exec: {err}"
    );
    let out = wrap(
        &["--orphan-exit", "42"],
        &["sh", "-c", "sleep 3001 & exit 0"],
    );
    assert_eq!(out.status.code(), Some(42));
    // A program that failed keeps its own status, and its survivor is named.
    let out = wrap(&[], &["sh", "-c", "sleep 3001 & exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(text(&out.stderr).contains("`sleep 3001`"));
}

fn allow_lets_a_daemon_go_and_leak_catches_held_stdio() {
    // Daemonised on purpose, its stdio closed, allowed: clean.
    let daemon = "setsid sleep 3002 </dev/null >/dev/null 2>&1 & echo ok";
    let out = wrap(&["--allow", "sleep 300?"], &["sh", "-c", daemon]);
    // (`setsid` execs the sleep: it is the one survivor.)
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("--allow lets go") && err.contains("`sleep 3002`"),
        "{err}"
    );
    // Not allowed: named, 99.
    let out = wrap(&[], &["sh", "-c", daemon]);
    assert_eq!(out.status.code(), Some(99));
    // Allowed, but holding the wrap's stdout: --leak fails it.
    let held = "sleep 3003 & echo ok";
    let out = wrap(&["--allow", "*3003", "--leak"], &["sh", "-c", held]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{err}");
    assert!(
        err.contains("leak: fd 1 of pid") && err.contains("holds the stdout"),
        "{err}"
    );
    let out = wrap(&["--allow", "*3003"], &["sh", "-c", held]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A program that closes or redirects its own stdio is judged the same.
    let out = wrap(
        &[],
        &["sh", "-c", "exec >/dev/null 2>&1 <&-; sleep 3004 & exit 0"],
    );
    assert_eq!(out.status.code(), Some(99));
    assert!(text(&out.stderr).contains("`sleep 3004`"));
}

fn a_missing_program_is_127_and_one_that_cannot_run_126() {
    let out = wrap(&[], &["no-such-program-30"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("not found in PATH"));
    let out = wrap(&[], &["/"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(text(&out.stderr).contains("is a directory"));
    let dir = out_dir("wrap-noexec");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("script");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    let out = wrap(&[], &[f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126));
    assert!(text(&out.stderr).contains("chmod +x"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Start `lab wrap -- sh -c SCRIPT` with stdout piped, and read up to its
/// line `ready`.
fn started(
    script: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    Marker,
) {
    let marker = Marker::new();
    let mut child = marker
        .command(LAB)
        .args(["wrap", "--", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (child, out, marker)
}

fn signals_reach_the_program_and_sigterm_is_diagnosed_first() {
    let script = "trap 'echo got-term; exit 5' TERM; trap 'echo got-int; exit 6' INT; \
                  sleep 3005 & echo ready; wait";
    for (sig, status, said) in [
        (rustix::process::Signal::TERM, 5, "got-term"),
        (rustix::process::Signal::INT, 6, "got-int"),
    ] {
        let (child, mut out, marker) = started(script);
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), said);
        let o = child.wait_with_output().unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(status), "{err}");
        assert!(err.contains("`sleep 3005`"), "{err}");
        assert_eq!(
            err.contains("diagnosed at SIGTERM, before the program got it"),
            sig == rustix::process::Signal::TERM,
            "{err}"
        );
        marker.assert_gone("lab wrap");
    }
    // A program that dies of the SIGTERM: diagnosed first all the same.
    let (child, _out, marker) = started("echo ready; exec sleep 3013");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(
        err.contains("diagnosed at SIGTERM, before the program got it"),
        "{err}"
    );
    // (The shell may not have exec'd the sleep yet: its state, whichever.)
    assert!(
        err.contains("    node root  pid "),
        "the program's line: {err}"
    );
    marker.assert_gone("lab wrap");
}

fn a_sigkilled_wrap_leaves_nothing() {
    // Every wrap runs in a cgroup of this test's own, where it makes its
    // lab cgroup, so that what the kills leave there is this test's alone.
    let cgroup = super::hygiene::TestCgroup::new(&Marker::new());
    // At the line `ready` and at moments from its start on.
    let script = "sleep 3006 & setsid sleep 3007 </dev/null >/dev/null 2>&1 & echo ready; wait";
    let (mut child, _out, marker) = started(script);
    child.kill().unwrap();
    child.wait().unwrap();
    marker.wait_gone();
    let wrap_in_cgroup = |marker: &Marker, args: &[&str]| {
        let mut cmd = marker.command(LAB);
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cgroup.enter(&mut cmd);
        cmd
    };
    for delay_ms in [0u64, 1, 2, 3, 5, 7, 10, 15, 30, 60] {
        let marker = Marker::new();
        let mut child = wrap_in_cgroup(&marker, &["wrap", "--", "sh", "-c", script])
            .spawn()
            .unwrap();
        // The moment of the kill, not a synchronisation.
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        marker.wait_gone();
    }
    // And at the moment its lab cgroup exists (spun for, no sleep: the
    // wrap's own progress is the clock).
    let marker = Marker::new();
    let mut child = wrap_in_cgroup(&marker, &["wrap", "--", "sh", "-c", script])
        .spawn()
        .unwrap();
    while cgroup.lab_cgroups().is_empty() && child.try_wait().unwrap().is_none() {
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    marker.wait_gone();
    // A wrap killed before its supervisor started leaves its empty lab
    // cgroup to the next lab's sweep (one killed later has it removed by
    // its supervisor, the last one out): this wrap's.
    let marker = Marker::new();
    let st = wrap_in_cgroup(&marker, &["wrap", "-q", "--", "true"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    marker.assert_gone("lab wrap -q -- true");
    assert_eq!(
        cgroup.lab_cgroups(),
        Vec::<PathBuf>::new(),
        "lab cgroups left"
    );
}

fn a_deadline_diagnoses_the_running_program_then_124() {
    let out = wrap(&["--deadline", "300ms"], &["sh", "-c", "sleep 3008"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(
        err.contains("hang:") && err.contains("clock_nanosleep"),
        "{err}"
    );
}

fn a_wrap_inside_a_wrap_reports_once_each() {
    let out = wrap(&[], &[LAB, "wrap", "--", "sh", "-c", "sleep 3009 & exit 0"]);
    let err = text(&out.stderr);
    // The inner one names the sleep and exits 99; the outer one passes it on.
    assert_eq!(out.status.code(), Some(99), "{err}");
    assert!(err.contains("`sleep 3009`"), "{err}");
}

fn rows_of_concurrent_wraps_append_to_one_csv() {
    let dir = out_dir("wrap-report");
    let csv = dir.join("trials.csv");
    let csv_arg = csv.to_str().unwrap().to_string();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let csv = csv_arg.clone();
            std::thread::spawn(move || {
                let script = if i % 2 == 0 {
                    "exit 0"
                } else {
                    "sleep 3010 & exit 0"
                };
                wrap(&["--report", &csv], &["sh", "-c", script])
            })
        })
        .collect();
    for w in workers {
        let out = w.join().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 99)),
            "{}",
            text(&out.stderr)
        );
    }
    let rows = lab::record::csv::read_rows(&csv).unwrap();
    let verdicts: Vec<&str> = rows.iter().map(|r| r.verdict.as_str()).collect();
    assert_eq!(rows.len(), 4, "{verdicts:?}");
    assert_eq!(verdicts.iter().filter(|v| **v == "orphan").count(), 2);
    assert!(rows.iter().any(|r| r.reason.contains("`sleep 3010`")));
    let out = lab(&["report", dir.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// As uid 65534: no cgroup (said once), a PID namespace inside a user
/// namespace where the kernel allows one, and the program's uid and gid
/// unchanged either way.
fn unprivileged_it_falls_back_to_the_subreaper_and_says_so_once() {
    use std::os::unix::process::CommandExt;
    for envs in [&[][..], &[("LAB_PID_NAMESPACE", "off")][..]] {
        let marker = Marker::new();
        let out = marker
            .command(LAB)
            .args([
                "wrap",
                "--",
                "sh",
                "-c",
                "sleep 3012 & echo hi $(id -u) $(id -g)",
            ])
            .envs(envs.iter().copied())
            .current_dir("/")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        marker.assert_gone("an unprivileged lab wrap");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(99), "{err}");
        // The program's own ids, in a user namespace of the wrap's or not.
        assert_eq!(text(&out.stdout), "hi 65534 65534\n", "{err}");
        assert_eq!(err.matches("supervisor's subreaper").count(), 1, "{err}");
        assert!(err.contains("no cgroup"), "{err}");
        assert_eq!(err.contains("no pid namespace"), !envs.is_empty(), "{err}");
        assert!(err.contains("`sleep 3012`"), "{err}");
    }
}

/// The fixture crate of these tests (its own workspace, no dependencies).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrap-tests")
}

/// `cargo ARGS --offline` on the fixture, its target directory `target`,
/// with `envs`; the lab's marker set, and nothing of it left afterwards
/// unless `leaves` (then the caller ends what is left).
fn cargo(args: &[&str], target: &Path, envs: &[(&str, &str)], leaves: bool) -> (Output, Marker) {
    let marker = Marker::new();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = marker.command(cargo);
    cmd.args(args)
        .arg("--offline")
        .current_dir(fixture())
        .env("CARGO_TARGET_DIR", target)
        .env_remove(runner_var())
        .envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    if !leaves {
        marker.assert_gone(&format!("cargo {}", args.join(" ")));
    }
    (out, marker)
}

/// Cargo's runner variable for this machine's target
/// (`CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER`), from `rustc -vV`.
fn runner_var() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().unwrap();
    let host = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names its host");
    format!(
        "CARGO_TARGET_{}_RUNNER",
        host.to_uppercase().replace(['-', '.'], "_")
    )
}

/// The lines of a test binary's output without the time of `test result:
/// ok. ... finished in 0.01s`, sorted: its tests run in parallel threads,
/// so their `test NAME ... ok` lines come in either order.
fn untimed(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s
        .lines()
        .map(|l| l.split("; finished in").next().unwrap_or(l))
        .collect();
    lines.sort_unstable();
    lines
}

/// cargo's runner set to `lab wrap --`: the clean binary's output is the
/// bare run's, the daemon's binary fails naming the daemon with its
/// lineage, down to its `setsid` (a detail the kernel's process events
/// give: without them, as in a PID namespace not the initial one, the
/// lineage comes from `/proc` scans, which do not see a session change).
fn cargo_test_runs_each_test_binary_through_lab_wrap() {
    let target = out_dir("wrap-cargo");
    let runner = format!("{LAB} wrap --");
    let var = runner_var();
    let (bare, _) = cargo(&["test", "--test", "clean"], &target, &[], false);
    assert!(bare.status.success(), "{}", text(&bare.stderr));
    let (wrapped, _) = cargo(
        &["test", "--test", "clean"],
        &target,
        &[(&var, &runner)],
        false,
    );
    let err = text(&wrapped.stderr);
    assert!(wrapped.status.success(), "{err}");
    assert_eq!(
        untimed(&text(&wrapped.stdout)),
        untimed(&text(&bare.stdout)),
        "output unchanged"
    );
    assert!(err.contains("nothing left behind"), "{err}");
    let (daemon, _) = cargo(
        &["test", "--test", "daemon"],
        &target,
        &[(&var, &runner)],
        false,
    );
    let err = text(&daemon.stderr);
    assert!(!daemon.status.success(), "{err}");
    assert!(
        err.contains("orphan: pid") && err.contains("(`sleep 3021`), started by `"),
        "{err}"
    );
    assert!(
        err.contains("/deps/daemon-") && err.contains("left its session (setsid)"),
        "{err}"
    );
    assert!(
        err.contains("(exit status: 99)"),
        "cargo names the wrap's status: {err}"
    );
    let _ = std::fs::remove_dir_all(&target);
}

/// The same fixture under `cargo nextest run` with the wrapper script: the
/// daemon's test fails, named with who started it (from the kernel's
/// process events: `/proc` scans alone may miss the test binary, gone by
/// then), and passes without the wrapper, its daemon living on.
fn nextest_fails_the_daemon_test_under_the_wrapper_and_passes_it_without() {
    let target = out_dir("wrap-nextest");
    std::fs::create_dir_all(&target).unwrap();
    let config = target.join("nextest.toml");
    std::fs::write(
        &config,
        format!(
            "experimental = [\"wrapper-scripts\"]\n\n[scripts.wrapper.lab]\ncommand = [\"{LAB}\", \"wrap\", \"--\"]\n\n\
             [[profile.default.scripts]]\nfilter = \"all()\"\nrun-wrapper = \"lab\"\n"
        ),
    )
    .unwrap();
    // (Not the binary `hang`, whose tests never end: they are for
    // `nextest_timeouts_and_retries_work_through_the_wrapper`.)
    let run = [
        "nextest",
        "run",
        "--no-fail-fast",
        "-E",
        NOT_HANG,
        "--config-file",
        config.to_str().unwrap(),
    ];
    let (wrapped, _) = cargo(&run, &target, &[], false);
    let all = format!("{}{}", text(&wrapped.stdout), text(&wrapped.stderr));
    assert!(!wrapped.status.success(), "{all}");
    assert!(
        all.contains("FAIL") && all.contains("wrap-tests::daemon starts_a_daemon"),
        "{all}"
    );
    assert!(
        all.contains("PASS") && all.contains("wrap-tests::clean adds"),
        "{all}"
    );
    assert!(
        all.contains("(`sleep 3021`), started by `") && all.contains("exit code 99"),
        "{all}"
    );
    // Without the wrapper nextest passes it, and the daemon lives on: ended here.
    let (bare, marker) = cargo(
        &["nextest", "run", "--no-fail-fast", "-E", NOT_HANG],
        &target,
        &[],
        true,
    );
    let all = format!("{}{}", text(&bare.stdout), text(&bare.stderr));
    let left = marker.processes();
    for (pid, _) in &left {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(*pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    marker.wait_gone();
    assert!(bare.status.success(), "{all}");
    assert!(
        left.iter().any(|(_, c)| c.contains("sleep 3021")),
        "the daemon nextest let live: {left:?}"
    );
    let _ = std::fs::remove_dir_all(&target);
}

/// A runner that ignores SIGCHLD (`SIG_IGN` survives fork and exec, and
/// makes the kernel reap every child unseen): the wrap still gets the
/// program's exit status and its survivor.
fn a_caller_that_ignores_sigchld_changes_nothing() {
    let marker = Marker::new();
    let out = marker
        .command("env")
        .args(["--ignore-signal=CHLD", LAB, "wrap", "--"])
        .args(["sh", "-c", "sleep 3014 & echo hi; exit 3"])
        .output()
        .unwrap();
    marker.assert_gone("lab wrap under SIGCHLD ignored");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(text(&out.stdout), "hi\n");
    assert!(
        err.contains("exited with status 3 and left 1 process behind"),
        "{err}"
    );
    assert!(err.contains("`sleep 3014`"), "{err}");
}

/// A command the kernel runs bare runs wrapped, however long: more
/// arguments than a scenario file's `command` may hold (65,536) and more
/// bytes than a scenario file (1 MiB); every report names it in at most
/// 200 characters.
fn a_command_of_any_length_the_kernel_takes_is_wrapped() {
    // (One argument is at most 128 KiB: MAX_ARG_STRLEN.)
    let long = "y".repeat(110 << 10);
    let mut command = vec!["sh", "-c", "sleep 3016 & echo $#", "sh"];
    command.extend(std::iter::repeat_n(long.as_str(), 10));
    command.extend(std::iter::repeat_n("x", 70_000));
    let out = wrap(&[], &command);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert_eq!(text(&out.stdout), "70010\n");
    assert!(
        err.contains("`sleep 3016`"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 4096, "a bounded report: {} bytes", err.len());
}

/// `lab bench --wrap`: the program bare, under `unshare --fork` (where it
/// is on PATH) and under `lab wrap -q`, each timed in the same run; what
/// each adds is the medians' difference. (The figures themselves are the
/// machine's: only their shape and consistency are checked.)
fn bench_wrap_times_bare_floor_and_wrap_in_one_run() {
    let out = lab(
        &[
            "bench", "--format", "json", "--trials", "3", "--wrap", "true",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"], 3, "{v}");
    assert_eq!(v["bare"]["command"], serde_json::json!(["true"]), "{v}");
    let wrapped = v["wrapped"]["command"].as_array().unwrap();
    assert_eq!(
        wrapped[1..4],
        [Value::from("wrap"), "-q".into(), "--".into()],
        "{v}"
    );
    let unshare_on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join("unshare").exists());
    assert_eq!(v["floor"].is_object(), unshare_on_path, "{v}");
    let median = |t: &Value| t["us"][0].as_i64().unwrap();
    for way in ["floor", "wrapped"] {
        let t = &v[way];
        if t.is_null() {
            continue;
        }
        let (p10, p90) = (t["us"][1].as_i64().unwrap(), t["us"][2].as_i64().unwrap());
        assert!(p10 <= median(t) && median(t) <= p90, "{t}");
        assert_eq!(
            t["added_us"].as_i64(),
            Some(median(t) - median(&v["bare"])),
            "{v}"
        );
    }
}

/// nextest's filter for every binary of the fixture but `hang`.
const NOT_HANG: &str = "not binary(hang)";

/// A nextest config for the fixture's binary `hang`, every test under the
/// wrapper script `lab wrap --`: `waits_for_ever` times out after 1 s
/// (SIGTERM, then up to nextest's default 10 s grace period) and is retried
/// once; `waits_for_ever_past_sigterm` runs under a wrapper whose program
/// ignores SIGTERM (`sh -c "trap '' TERM; exec ..."`: an ignored signal
/// stays ignored across exec), so after 1 s and a grace period of 1 s
/// nextest SIGKILLs the wrapper; no retry.
fn hang_config() -> String {
    let deaf = "trap '' TERM; exec \\\"$@\\\"";
    format!(
        "experimental = [\"wrapper-scripts\"]\n\n\
         [scripts.wrapper.lab]\ncommand = [\"{LAB}\", \"wrap\", \"--\"]\n\n\
         [scripts.wrapper.lab-deaf]\ncommand = [\"{LAB}\", \"wrap\", \"--\", \"sh\", \"-c\", \"{deaf}\", \"sh\"]\n\n\
         [[profile.default.scripts]]\nfilter = \"test(=waits_for_ever_past_sigterm)\"\nrun-wrapper = \"lab-deaf\"\n\n\
         [[profile.default.scripts]]\nfilter = \"all()\"\nrun-wrapper = \"lab\"\n\n\
         [[profile.default.overrides]]\nfilter = \"test(=waits_for_ever_past_sigterm)\"\n\
         slow-timeout = {{ period = \"3s\", terminate-after = 1, grace-period = \"1s\" }}\n\
         retries = 0\nfailure-output = \"immediate\"\n\n\
         [[profile.default.overrides]]\nfilter = \"test(=waits_for_ever)\"\n\
         slow-timeout = {{ period = \"3s\", terminate-after = 1 }}\n\
         retries = 1\nfailure-output = \"immediate\"\n"
    )
}

/// The lines nextest printed for one attempt of a test: from its status
/// line (holding `status` and ending in ` TEST`) to its `(test timed out)`.
fn attempt<'a>(all: &'a str, status: &str, test: &str) -> Vec<&'a str> {
    let mut lines = all.lines();
    let Some(head) = lines.find(|l| l.contains(status) && l.ends_with(&format!(" {test}"))) else {
        return Vec::new();
    };
    let mut block = vec![head];
    for l in lines {
        block.push(l);
        if l.trim() == "(test timed out)" {
            break;
        }
    }
    block
}

/// nextest's own slow-timeout and retries through the wrapper script: a
/// test that waits for ever times out on its first try and on its retry,
/// each a fresh wrap that diagnosed it at nextest's SIGTERM, forwarded the
/// signal and ended the child it left; a test whose program ignores the
/// SIGTERM is SIGKILLed with its wrapper after the grace period (no report
/// of the wrap's: it was killed) and its tree goes with it.
fn nextest_timeouts_and_retries_work_through_the_wrapper() {
    let target = out_dir("wrap-nextest-hang");
    std::fs::create_dir_all(&target).unwrap();
    let config = target.join("nextest.toml");
    std::fs::write(&config, hang_config()).unwrap();
    let run = [
        "nextest",
        "run",
        "--no-fail-fast",
        "-E",
        "binary(hang)",
        "--config-file",
        config.to_str().unwrap(),
    ];
    let (out, marker) = cargo(&run, &target, &[], true);
    // The SIGKILLed wrapper's supervisor ends its trial on its own: wait.
    marker.wait_gone();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(100),
        "nextest failed the run: {all}"
    );
    assert!(
        all.contains("2 tests run: 0 passed, 2 timed out"),
        "nextest's summary: {all}"
    );
    let ended = "waits_for_ever --nocapture` was ended by signal 15 and left 1 process behind";
    assert_eq!(all.matches(ended).count(), 2, "one report per try: {all}");
    for try_n in ["TRY 1 TMT", "TRY 2 TMT"] {
        let block = attempt(&all, try_n, "wrap-tests::hang waits_for_ever").join("\n");
        assert!(block.contains("waiting for ever"), "{try_n}: {all}");
        assert!(block.contains(ended), "{try_n}: {all}");
        assert!(block.contains("(`sleep 3025`)"), "{try_n}: {all}");
        assert!(
            block.contains("diagnosed at SIGTERM, before the program got it:")
                && block.contains("futex"),
            "{try_n}: {all}"
        );
    }
    let deaf = "wrap-tests::hang waits_for_ever_past_sigterm";
    // (Its one try: `TIMEOUT`, not `TRY 1 TMT`.)
    let block = attempt(&all, "TIMEOUT", deaf).join("\n");
    assert!(
        block.contains("waiting for ever") && !block.contains("lab wrap:"),
        "SIGKILLed, the wrap said nothing: {all}"
    );
    assert!(
        attempt(&all, "TRY 2", deaf).is_empty(),
        "not retried: {all}"
    );
    let _ = std::fs::remove_dir_all(&target);
}

tests! {
    exit_status_and_output_are_the_programs;
    a_survivor_is_named_with_its_lineage_and_ended needs PROC_CONNECTOR;
    allow_lets_a_daemon_go_and_leak_catches_held_stdio;
    a_missing_program_is_127_and_one_that_cannot_run_126;
    signals_reach_the_program_and_sigterm_is_diagnosed_first;
    a_sigkilled_wrap_leaves_nothing needs CGROUP;
    bench_wrap_times_bare_floor_and_wrap_in_one_run;
    a_caller_that_ignores_sigchld_changes_nothing;
    a_command_of_any_length_the_kernel_takes_is_wrapped;
    a_deadline_diagnoses_the_running_program_then_124;
    a_wrap_inside_a_wrap_reports_once_each;
    rows_of_concurrent_wraps_append_to_one_csv;
    unprivileged_it_falls_back_to_the_subreaper_and_says_so_once needs testkit::ROOT;
    cargo_test_runs_each_test_binary_through_lab_wrap needs testkit::CARGO, PROC_CONNECTOR;
    nextest_fails_the_daemon_test_under_the_wrapper_and_passes_it_without needs testkit::CARGO, testkit::NEXTEST, PROC_CONNECTOR;
    nextest_timeouts_and_retries_work_through_the_wrapper needs testkit::CARGO, testkit::NEXTEST;
}
