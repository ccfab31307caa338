//! Each supervisor is init of a PID namespace of its own: a trial sees its
//! own supervisor as PID 1, and a legacy trial's signals by PID (`kill(pid)`,
//! `kill(-pgid)`) cannot reach a process outside it, even one that holds the
//! very PID (and process group) that a node of the trial has.

use super::*;

/// The `pid_namespace` column of every row of the CSV at `csv`.
fn pid_namespace_column(csv: &str) -> Vec<String> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "pid_namespace").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().to_string())
        .collect()
}

/// A command node reads `/proc/1/cmdline` and finds the supervisor there
/// (`pid-one.toml`): PID 1 of the trial's namespace is its supervisor, and
/// the trial's `/proc` is its own. With the namespace turned off the same
/// check fails (the node sleeps on: a hang), and every row says `none`.
fn the_supervisor_is_pid_1_of_the_trials_own_namespace() {
    let (out, dir) = lab_run(&scenario("pid-one.toml"), 3, &["canonical", "legacy"], &[]);
    let v = json(&out);
    for s in ["canonical", "legacy"] {
        let r = strategy(&v, s);
        assert_eq!(
            (r["trials"].as_u64(), r["pass"].as_u64()),
            (Some(3), Some(3)),
            "{r}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let want = if rustix::process::geteuid().is_root() {
        "pid"
    } else {
        "pid+user"
    };
    let column = pid_namespace_column(v["csv"].as_str().unwrap());
    assert_eq!(column, vec![want.to_string(); 6]);
    let _ = std::fs::remove_dir_all(dir);

    // The control: the same check without the namespace fails.
    let dir = out_dir("pid-one-off");
    let out = lab(
        &[
            "run",
            &scenario("pid-one.toml"),
            "--trials",
            "1",
            "--strategy",
            "canonical",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[("LAB_PID_NAMESPACE", "off")],
    );
    let v = json(&out);
    let r = strategy(&v, "canonical");
    assert_eq!(
        (r["trials"].as_u64(), r["pass"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(
        pid_namespace_column(v["csv"].as_str().unwrap()),
        vec!["none".to_string()]
    );
    let text = lab(
        &[
            "run",
            &scenario("exits.toml"),
            "--trials",
            "1",
            "--strategy",
            "canonical",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[("LAB_PID_NAMESPACE", "off")],
    );
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        said.contains("no pid namespace (turned off by LAB_PID_NAMESPACE=off)"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Bystanders hold the PIDs a legacy trial signals: in a throwaway PID
/// namespace (`unshare --pid --fork`), `ns_last_pid` is set so that 120
/// `sleep`s get PIDs 2 to 121, each the leader of its own session and
/// process group; then the lab runs `nested` under `legacy` there, whose
/// supervisor kills an interior node by PID and tears the tree down with
/// `kill(-pgid)`. Inside the trial's own namespace the nodes have PIDs
/// from 2 up (the supervisor is 1), the very numbers the bystanders hold
/// one namespace up: a kill by PID that escaped the trial would land on
/// one of them. Each bystander is then ended with SIGTERM and waited for:
/// every one must report SIGTERM (143), none SIGKILL. Needs root (for
/// `unshare --pid` and `ns_last_pid`).
fn a_legacy_trial_cannot_signal_a_process_outside_it() {
    let marker = Marker::new();
    let dir = out_dir("bystanders");
    // 5 trials on one supervisor (-j 1): at most 15 nodes each, so every
    // PID a node gets inside (2 to 76) is a bystander's outside.
    let script = r#"
        echo 1 > /proc/sys/kernel/ns_last_pid || exit 90
        pids=""
        i=0
        while [ $i -lt 120 ]; do
            setsid sleep 1000 &
            pids="$pids $!"
            i=$((i + 1))
        done
        echo "bystanders:$pids"
        "$LAB" run nested --seed 7 --trials 5 -j 1 --strategy legacy --format json --out "$OUT" > "$OUT.json"
        echo "lab: $?"
        for p in $pids; do
            kill -TERM "$p"
            wait "$p"
            echo "ended: $p $?"
        done
    "#;
    let out = marker
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", script])
        .env("LAB", LAB)
        .env("OUT", &dir)
        .output()
        .expect("run unshare");
    let said = String::from_utf8_lossy(&out.stdout);
    let bystanders: Vec<i32> = said
        .lines()
        .find_map(|l| l.strip_prefix("bystanders:"))
        .unwrap_or_else(|| panic!("{said}\n{}", String::from_utf8_lossy(&out.stderr)))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(bystanders, (2..122).collect::<Vec<i32>>(), "{said}");
    // The legacy trials ran as always: every one an orphan, as nested
    // expects (exit 0).
    assert!(said.contains("lab: 0"), "{said}");
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.with_extension("json")).unwrap()).unwrap();
    let legacy = strategy(&v, "legacy");
    assert_eq!(
        (legacy["trials"].as_u64(), legacy["orphan"].as_u64()),
        (Some(5), Some(5)),
        "{legacy}"
    );
    let ended: Vec<&str> = said.lines().filter(|l| l.starts_with("ended: ")).collect();
    assert_eq!(ended.len(), 120, "{said}");
    let harmed: Vec<&&str> = ended.iter().filter(|l| !l.ends_with(" 143")).collect();
    assert!(harmed.is_empty(), "bystanders hit by the trial: {harmed:?}");
    marker.assert_gone("the PID namespace of the bystanders");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("json"));
}

/// `--keep-hung` prints the PIDs of the kept tree as the lab's namespace
/// numbers them, not as the trial's own namespace does: each printed PID
/// (and the one of `attach: gdb -p PID`) is, in this test's `/proc`, a live
/// process whose `NSpid:` line starts with that PID and has a second,
/// inner number (it lives in a PID namespace below ours), all of them in
/// one namespace (the trial's). Needs a PID namespace (without one the
/// row says `none` and there is nothing to translate).
fn keep_hung_prints_pids_of_the_labs_namespace() {
    use std::io::Write;
    let dir = out_dir("keep-hung-pidns");
    let KeptHang {
        mut lab,
        said,
        pids,
        attach,
        marker,
        ..
    } = kept_hang(&dir, "1", &[]);
    assert!(!pids.is_empty(), "{said}");
    assert_eq!(attach, pids.first().copied(), "{said}");
    // Read while the tree is kept; judged once the run says its mode.
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let seen: Vec<(i32, Vec<String>, Option<PathBuf>)> = pids
        .iter()
        .map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            (
                *p,
                nspid,
                std::fs::read_link(format!("/proc/{p}/ns/pid")).ok(),
            )
        })
        .collect();
    lab.stdin.take().unwrap().write_all(b"\n").unwrap();
    // stdio-dup expects legacy to hang: exit status 0.
    assert_eq!(lab.wait().unwrap().code(), Some(0), "{said}");
    let csv = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("trials.csv"))
        .find(|p| p.is_file())
        .unwrap();
    let mode = pid_namespace_column(csv.to_str().unwrap());
    assert_ne!(mode, ["none"], "the trial ran without a PID namespace");
    let mut inner = Vec::new();
    for (p, nspid, ns) in &seen {
        assert_eq!(
            nspid.first(),
            Some(&p.to_string()),
            "pid {p}: {nspid:?}\n{said}"
        );
        assert!(
            nspid.len() >= 2,
            "pid {p} is not in a namespace below ours: {nspid:?}"
        );
        let ns = ns.clone().unwrap();
        assert_ne!(ns, ours);
        inner.push(ns);
    }
    inner.dedup();
    assert_eq!(inner.len(), 1, "{inner:?}");
    marker.assert_gone("the release of the kept tree");
    let _ = std::fs::remove_dir_all(dir);
}

/// Where no PID namespace can be made, trials run as before and say so:
/// in a user namespace whose `user.max_user_namespaces` is 0, without any
/// capability (`setpriv --bounding-set -all`), neither form can be made;
/// `nested` still gives its verdicts, the header names the fallback and
/// why, and every row says `none`. Needs root (to make that user
/// namespace and set its limit).
fn without_namespaces_trials_fall_back_and_say_so() {
    let marker = Marker::new();
    let dir = out_dir("no-namespace");
    let script = r#"
        echo 0 > /proc/sys/user/max_user_namespaces || exit 90
        exec setpriv --bounding-set -all --inh-caps -all \
            "$LAB" run nested --seed 7 --trials 3 --out "$OUT"
    "#;
    let out = marker
        .command("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", script])
        .env("LAB", LAB)
        .env("OUT", &dir)
        .output()
        .expect("run unshare");
    let said = String::from_utf8_lossy(&out.stdout);
    // Legacy orphans and canonical passes, as nested expects: exit 0.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("no pid namespace (cannot make one here, pid: ")
            && said.contains("signals by PID can reach the host's processes"),
        "{said}"
    );
    // The A/B table: canonical's column first, then legacy's.
    let row = |v: &str| {
        said.lines()
            .find(|l| l.starts_with(&format!("{v} ")))
            .unwrap_or_else(|| panic!("no {v} row in\n{said}"))
            .to_string()
    };
    assert!(row("pass").contains(" 3 100.0% ["), "{said}");
    assert!(
        row("orphan").trim_end().ends_with("]") && row("orphan").contains(" 3 100.0% ["),
        "{said}"
    );
    let csv = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("trials.csv"))
        .find(|p| p.is_file())
        .unwrap();
    assert_eq!(
        pid_namespace_column(csv.to_str().unwrap()),
        vec!["none".to_string(); 6]
    );
    marker.assert_gone("the user namespace without PID namespaces");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cmd` run to its end with its stdout and stderr in files under `dir`
/// (never a pipe that could fill), watched through a pidfd: a command still
/// running after `secs` seconds is SIGKILLed (an `unshare --kill-child`
/// takes its namespace with it) and the test fails, saying so.
fn within(cmd: &mut Command, dir: &Path, secs: i64) -> Output {
    std::fs::create_dir_all(dir).unwrap();
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn");
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    let limit = rustix::time::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let ended = loop {
        match rustix::event::poll(&mut fds, Some(&limit)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r.unwrap() == 1,
        }
    };
    if !ended {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
    }
    let status = child.wait().unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    };
    assert!(
        ended,
        "still running after {secs} s (killed): {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Without a PID namespace (`LAB_PID_NAMESPACE=off`) a legacy kill by PID
/// reaches whatever holds the PID: `stale-pid.toml`'s node 0 (a command)
/// writes its PID into a FIFO and exits, the root reaps it, and 300 ms
/// later the plan SIGKILLs node 0 by PID. Meanwhile, in a throwaway PID
/// namespace (`unshare --pid --fork --mount-proc`, so the lab's `/proc`
/// is its namespace's), the test's shell reads that PID, waits until it is
/// free, sets `ns_last_pid` so that a `sleep` (a bystander outside the
/// trial) is given it, and after the lab ends it with SIGTERM: it must
/// have died of the lab's SIGKILL (137) instead, the trial must be an
/// `innocent-kill` naming the bystander, and the header and the summary
/// must say that the fallback can do this. Needs root (for `unshare --pid`
/// and `ns_last_pid`).
fn without_a_namespace_a_kill_that_reaches_a_bystander_is_an_innocent_kill() {
    let marker = Marker::new();
    let dir = out_dir("stale-pid");
    let take = r#"
            if [ "$got" != 0 ]; then kill -KILL "$got"; wait "$got"; fi
            echo $((p - 1)) > /proc/sys/kernel/ns_last_pid || exit 90
            sleep 1000 &
            got=$!
    "#;
    let after = r#"
        kill -TERM "$got" 2> /dev/null
        wait "$got"
        echo "ended: $?"
    "#;
    let (said, text) = with_a_bystander(&marker, &dir, "stale-pid.toml", take, after);
    // The bystander died of the stale SIGKILL, not of the test's SIGTERM.
    assert!(said.contains("ended: 137"), "{said}");
    let err = std::fs::read_to_string(dir.with_extension("err")).unwrap();
    let warning = "pid namespace: none; a kill by PID can reach a process outside the trial \
                   (judged innocent-kill)";
    assert!(err.contains(warning), "header: {err}");
    assert!(text.contains(warning), "summary: {text}");
    assert_one_innocent_kill(&text);
    assert!(
        text.contains("a signal sent by PID (KILL) to node 0, reaped by then, reached pid")
            && text.contains("`sleep 1000`"),
        "{text}"
    );
    let csv = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("trials.csv"))
        .find(|p| p.is_file())
        .unwrap();
    assert_eq!(pid_namespace_column(csv.to_str().unwrap()), ["none"]);
    marker.assert_gone("the PID namespace of the bystander");
    remove_outputs(&dir);
}

/// The same for the legacy group teardown, `kill(-pgid)`: `stale-pgid.toml`'s
/// root (a command, leader of its own process group) writes its PID into a
/// FIFO and exits; the supervisor reaps it, and 300 ms later sends a KILL
/// to the root by PID (it names nobody by then), then the teardown, KILL to
/// the root's process group. Meanwhile, in a throwaway PID namespace, the
/// test's shell waits until the PID is free and has it given
/// (`ns_last_pid`) to a `setsid sh`, which leaves a `sleep` in a group of
/// that number and exits (so the PID is free again and the kill by PID
/// reaches nobody). The sleep must have died when the lab ends (a zombie,
/// or reaped by the namespace's init, the test's shell), and the trial
/// must be an `innocent-kill` naming it. Needs root (for `unshare --pid` and
/// `ns_last_pid`).
fn without_a_namespace_a_group_teardown_that_reaches_a_bystander_is_an_innocent_kill() {
    let marker = Marker::new();
    let dir = out_dir("stale-pgid");
    let take = r#"
            if [ "$got" != 0 ]; then kill -KILL "$m"; fi
            echo $((p - 1)) > /proc/sys/kernel/ns_last_pid || exit 90
            setsid sh -c 'echo $$; sleep 1000 & echo $!' > "$OUT.ids"
            got=$(sed -n 1p "$OUT.ids")
            m=$(sed -n 2p "$OUT.ids")
    "#;
    let after = r#"
        if [ -e "/proc/$m" ] && [ "$(cut -d' ' -f3 "/proc/$m/stat")" != Z ]; then
            echo "member: alive"
            kill -TERM "$m"
        else
            echo "member: dead"
        fi
    "#;
    let (said, text) = with_a_bystander(&marker, &dir, "stale-pgid.toml", take, after);
    // The sleep died of the stale group KILL, before the test's TERM.
    assert!(said.contains("member: dead"), "{said}");
    assert_one_innocent_kill(&text);
    assert!(
        text.contains("a signal sent to the root's process group (KILL) reached pid")
            && text.contains("`sleep 1000`"),
        "{text}"
    );
    marker.assert_gone("the PID namespace of the bystander");
    remove_outputs(&dir);
}

/// In a throwaway PID namespace with its own `/proc` (`unshare --pid
/// --fork --kill-child --mount-proc`, init a shell), start a one-trial
/// legacy `lab run` of the test scenario `scenario_file` without a PID
/// namespace of its own, its text to `dir.txt`, its stderr to `dir.err`.
/// The scenario writes a PID into the FIFO `$STALE_PID_FILE`; once that
/// PID is free, the shell runs `take` (up to 5 times, `$got` starting at
/// 0) until it sets `$got` to that PID (`$p`), waits for the lab, and runs
/// `after`. Watched for 60 s. Asserts that the PID was taken and that the
/// lab exited 1 (every trial must pass: an innocent kill fails); returns
/// what the shell printed and the lab's text.
fn with_a_bystander(
    marker: &Marker,
    dir: &Path,
    scenario_file: &str,
    take: &str,
    after: &str,
) -> (String, String) {
    let script = format!(
        r#"
        mkfifo "$OUT.fifo" || exit 91
        STALE_PID_FILE="$OUT.fifo" LAB_PID_NAMESPACE=off "$LAB" run "$SCENARIO" --trials 1 \
            --strategy legacy --out "$OUT" > "$OUT.txt" 2> "$OUT.err" &
        lab=$!
        read p < "$OUT.fifo"
        while [ -e "/proc/$p" ]; do :; done
        got=0
        tries=0
        while [ "$got" != "$p" ] && [ $tries -lt 5 ]; do
            {take}
            tries=$((tries + 1))
        done
        echo "taken: $got wanted: $p"
        wait "$lab"
        echo "lab: $?"
        {after}
    "#
    );
    let namespace = [
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        "-c",
    ];
    let out = within(
        marker
            .command("unshare")
            .args(namespace)
            .arg(&script)
            .env("LAB", LAB)
            .env("SCENARIO", scenario(scenario_file))
            .env("OUT", dir),
        &dir.with_extension("watch"),
        60,
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = std::fs::read_to_string(dir.with_extension("txt"))
        .unwrap_or_else(|e| panic!("no text ({e}): {said}\n{err}"));
    let line = said.lines().find_map(|l| l.strip_prefix("taken: "));
    let taken = line.and_then(|l| l.split_once(" wanted: "));
    let (got, wanted) = taken.unwrap_or_else(|| panic!("{said}\n{err}"));
    assert_eq!(got, wanted, "the bystander did not get the PID: {said}");
    assert!(said.contains("lab: 1"), "{said}");
    (said, text)
}

/// That the one trial of a lab's `text` is an `innocent-kill`.
fn assert_one_innocent_kill(text: &str) {
    let row = text
        .lines()
        .find(|l| l.starts_with("innocent-kill "))
        .unwrap_or_else(|| panic!("no innocent-kill row: {text}"));
    assert!(row.contains(" 1 100.0% ["), "{text}");
}

/// Remove what [`with_a_bystander`] left beside `dir`, and `dir`.
fn remove_outputs(dir: &Path) {
    for ext in ["txt", "err", "fifo", "ids"] {
        let _ = std::fs::remove_file(dir.with_extension(ext));
    }
    let _ = std::fs::remove_dir_all(dir.with_extension("watch"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Under `unshare --pid --fork` without `--mount-proc` the lab is PID 1 of
/// a namespace whose `/proc` is still the host's. With PID namespaces of
/// their own the supervisors mount theirs, and legacy `nested` gives its
/// orphans (exit 0) as anywhere; without (`LAB_PID_NAMESPACE=off`) the
/// lab refuses at once (exit 3), before it makes a results directory,
/// saying that this `/proc` is not its PID namespace's and what to do,
/// instead of judging trials by other processes. Each run is watched: one that has not ended in 60 s fails.
/// Needs root (for `unshare --pid`).
fn a_proc_of_another_pid_namespace_is_refused_or_right() {
    let marker = Marker::new();
    let dir = out_dir("foreign-proc");
    let run = |envs: &[(&str, &str)], tag: &str| {
        let mut cmd = marker.command("unshare");
        cmd.args(["--pid", "--fork", "--kill-child", LAB])
            .args(["run", "nested", "--strategy", "legacy", "--trials", "3"])
            .arg("--out")
            .arg(&dir);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        within(&mut cmd, &dir.with_extension(tag), 60)
    };
    let out = run(&[], "own");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let row = said
        .lines()
        .find(|l| l.starts_with("orphan "))
        .unwrap_or_else(|| panic!("no orphan row: {said}"));
    assert!(row.contains(" 3 100.0% ["), "{said}");

    let runs = || std::fs::read_dir(&dir).map_or(0, Iterator::count);
    let before = runs();
    let out = run(&[("LAB_PID_NAMESPACE", "off")], "off");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    // Refused before anything is made: no results directory.
    assert_eq!(runs(), before, "{err}");
    assert!(
        err.contains("this /proc is not your PID namespace's")
            && err.contains("unshare --pid --fork --mount-proc"),
        "{err}"
    );
    marker.assert_gone("the runs under a foreign /proc");
    for tag in ["own", "off"] {
        let _ = std::fs::remove_dir_all(dir.with_extension(tag));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

tests! {
    the_supervisor_is_pid_1_of_the_trials_own_namespace needs PIDNS;
    a_legacy_trial_cannot_signal_a_process_outside_it needs testkit::ROOT, PIDNS;
    keep_hung_prints_pids_of_the_labs_namespace needs PIDNS;
    without_namespaces_trials_fall_back_and_say_so needs testkit::ROOT;
    without_a_namespace_a_kill_that_reaches_a_bystander_is_an_innocent_kill needs testkit::ROOT, PIDNS;
    without_a_namespace_a_group_teardown_that_reaches_a_bystander_is_an_innocent_kill needs testkit::ROOT, PIDNS;
    a_proc_of_another_pid_namespace_is_refused_or_right needs testkit::ROOT, PIDNS;
}
