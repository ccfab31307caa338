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

tests! {
    the_supervisor_is_pid_1_of_the_trials_own_namespace needs PIDNS;
    a_legacy_trial_cannot_signal_a_process_outside_it needs testkit::ROOT, PIDNS;
    keep_hung_prints_pids_of_the_labs_namespace needs PIDNS;
    without_namespaces_trials_fall_back_and_say_so needs testkit::ROOT;
}
