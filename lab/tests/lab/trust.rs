//! The lab trusts nothing it reads (issue 28): a results directory another
//! user owns or can write is refused by `--resume`, `merge`, `report` and
//! `plot`; a symlink another user planted where the lab expects a
//! directory is refused, never followed; a resume never runs a changed
//! scenario; `trials.csv` and `started.csv` exist whole (with their header)
//! or not at all, however the lab dies; a full disk stops a soak like a
//! Ctrl-C. The attacks run as uid 65534 against a root lab.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{lab, Marker, LAB};

/// The attacker's uid and gid (`nobody`).
const NOBODY: u32 = 65534;

/// A fresh directory of root's that the attacker may traverse (0755).
fn stage() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    tmp
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `dir/name`, a directory the attacker owns.
fn attacker_dir(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
    d
}

/// Run `script` with `sh` as the attacker (uid and gid 65534) in `cwd`;
/// it must succeed.
fn as_attacker(cwd: &Path, script: &str) {
    let o = Command::new("/bin/sh")
        .args(["-c", script])
        .current_dir(cwd)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "as uid {NOBODY}: `{script}`: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A symlink to `target` made by the attacker (in a directory of theirs
/// under `stage`), then moved to `at`: a link of uid 65534's where the lab
/// expects a directory.
fn plant(stage: &Path, at: &Path, target: &Path) {
    let own = stage.join("attacker");
    if !own.exists() {
        attacker_dir(stage, "attacker");
    }
    as_attacker(&own, &format!("ln -s '{}' link", target.display()));
    std::fs::rename(own.join("link"), at).unwrap();
}

/// Run the lab with `args`; its exit status and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let o = lab(args, &[]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `lab soak` of `scenario` with `trials` trials of canonical into `out`.
fn soak(scenario: &str, trials: u32, out: &Path) -> (Option<i32>, String) {
    let n = trials.to_string();
    run(&[
        "soak",
        "--scenario",
        scenario,
        "--strategy",
        "canonical",
        "--trials",
        &n,
        "--progress",
        "none",
        "-j",
        "1",
        "--out",
        out.to_str().unwrap(),
    ])
}

/// A scenario of one node running `sh -c script` (named `shared`).
fn program(script: &str) -> String {
    format!(
        "version = 1\nname = \"shared\"\nabout = \"A program.\"\n\n[tree]\nbreadth = 1\n\
         depth = 0\n\n[nodes.root]\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\n\n\
         [limits]\ndeadline = \"5s\"\n"
    )
}

fn planted_symlinks_are_refused_and_nothing_is_written_through() {
    let tmp = stage();
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let runs = mine.join("runs");
    let (code, err) = run(&[
        "run",
        "nested",
        "--strategy",
        "canonical",
        "--trials",
        "1",
        "--out",
        runs.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let input = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let link = |name: &str| {
        let at = mine.join(name);
        plant(tmp.path(), &at, &target);
        at.to_str().unwrap().to_string()
    };
    let exec_out = mine.join("ex");
    std::fs::create_dir(&exec_out).unwrap();
    plant(tmp.path(), &exec_out.join("exec"), &target);
    let fuzz_out = mine.join("fz").to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "soak --out",
            [
                "soak",
                "--scenario",
                "nested",
                "--trials",
                "1",
                "--progress",
                "none",
                "--out",
            ]
            .map(String::from)
            .into_iter()
            .chain([link("soak")])
            .collect(),
        ),
        (
            "OUT/exec",
            vec![
                "exec".into(),
                "--trials".into(),
                "1".into(),
                "--out".into(),
                exec_out.to_str().unwrap().into(),
                "--".into(),
                "true".into(),
            ],
        ),
        (
            "fuzz --regressions",
            vec![
                "fuzz".into(),
                "--cases".into(),
                "1".into(),
                "--out".into(),
                fuzz_out,
                "--regressions".into(),
                link("reg"),
            ],
        ),
        ("man --out", vec!["man".into(), "--out".into(), link("man")]),
        (
            "merge --out",
            vec![
                "merge".into(),
                input.to_str().unwrap().into(),
                "--out".into(),
                link("merged"),
            ],
        ),
    ];
    for (what, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = run(&args);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(
            err.contains("symlink of uid 65534"),
            "{what}: says what is refused: {err}"
        );
        let written: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
        assert!(written.is_empty(), "{what}: wrote {written:?}");
    }
}

/// A finished soak of `nested` (1 trial) in `dir`.
fn finished(dir: &Path) {
    let (code, err) = soak("nested", 1, dir);
    assert_eq!(code, Some(0), "{err}");
}

fn a_tampered_resume_directory_is_refused_and_nothing_runs() {
    let tmp = stage();
    let marker = tmp.path().join("marker");
    let evil = program(&format!("id > {}", marker.display()));
    // The attacker puts a scenario of theirs in the soak's directory, names
    // it in soak.json with its true hash, and moves the CSVs aside, so that
    // nothing but the directory's owner and mode can tell.
    let tamper = format!(
        "printf '%s' '{evil}' > evil.toml && h=$(sha256sum evil.toml | cut -c1-16) && \
         sed -i -e \"s#\\\"nested\\\"#\\\"$PWD/evil.toml\\\"#\" \
         -e \"s#\\\"[0-9a-f]\\{{16\\}}\\\"#\\\"$h\\\"#\" soak.json && \
         mv trials.csv t.saved && mv started.csv s.saved"
    );
    // Given to the attacker, then writable by everyone.
    for (tag, give) in [("owned", true), ("writable", false)] {
        let dir = tmp.path().join(tag);
        finished(&dir);
        if give {
            for e in std::fs::read_dir(&dir).unwrap() {
                std::os::unix::fs::chown(e.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
            }
            std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        } else {
            chmod(&dir, 0o777);
            chmod(&dir.join("soak.json"), 0o666);
        }
        as_attacker(&dir, &tamper);
        let spec = std::fs::read_to_string(dir.join("soak.json")).unwrap();
        assert!(spec.contains("evil.toml"), "{spec}");
        let (code, err) = run(&[
            "soak",
            "--progress",
            "none",
            "--resume",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(2), "{tag}: {err}");
        let why = if give {
            "owned by uid 65534"
        } else {
            "chmod go-w"
        };
        assert!(err.contains(why), "{tag}: {err}");
        assert!(!marker.exists(), "{tag}: the attacker's command ran");
    }
}

fn a_changed_scenario_is_never_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("marker");
    let scenario = tmp.path().join("s.toml");
    std::fs::write(&scenario, program("true")).unwrap();
    let dir = tmp.path().join("soak");
    let (code, err) = soak(scenario.to_str().unwrap(), 1, &dir);
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(&scenario, program(&format!("id > {}", marker.display()))).unwrap();
    let resume = [
        "soak",
        "--progress",
        "none",
        "--resume",
        dir.to_str().unwrap(),
    ];
    // Against soak.json's hashes, and against the rows' alone (a soak.json
    // of a lab that recorded none).
    let (code, err) = run(&resume);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("content hash differs") && err.contains("soak.json"),
        "{err}"
    );
    let spec = std::fs::read_to_string(dir.join("soak.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&spec).unwrap();
    v.as_object_mut().unwrap().remove("scenario_hashes");
    std::fs::remove_file(dir.join("soak.json")).unwrap();
    std::fs::write(dir.join("soak.json"), v.to_string()).unwrap();
    let (code, err) = run(&resume);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("trials.csv"), "{err}");
    assert!(!marker.exists(), "the changed scenario ran");
}

fn directories_others_can_write_are_refused_by_resume_merge_report_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soak");
    finished(&dir);
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["soak", "--progress", "none", "--resume", d],
        &["merge", d, "--out", o],
        &["report", d],
        &["plot", d, "--out", o],
    ];
    // Group-writable counts only for a group with another member than the
    // caller (a user private group is fine): as root, give the directory
    // group 65534, which is not root's; as another user, whose own group
    // may be private, only writable-by-others is checked.
    let modes: &[u32] = if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&dir, None, Some(65534)).unwrap();
        &[0o775, 0o757]
    } else {
        &[0o757]
    };
    for &mode in modes {
        chmod(&dir, mode);
        for args in commands {
            let (code, err) = run(args);
            assert_eq!(code, Some(2), "{args:?} on mode {mode:o}: {err}");
            assert!(
                err.contains("chmod go-w"),
                "{args:?}: says what to do: {err}"
            );
        }
    }
    chmod(&dir, 0o755);
    chmod(&dir.join("trials.csv"), 0o666);
    for args in commands {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?} with trials.csv 0666: {err}");
    }
    chmod(&dir.join("trials.csv"), 0o644);
    assert_eq!(run(commands[2]).0, Some(0));
    assert!(!out.exists(), "nothing was written by the refused commands");
}

fn an_empty_trials_csv_is_given_its_header_on_resume_and_report_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("soak");
    let (code, err) = soak("nested", 2, &dir);
    assert_eq!(code, Some(0), "{err}");
    for name in ["trials.csv", "started.csv"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    let d = dir.to_str().unwrap();
    let (code, err) = run(&["soak", "--progress", "none", "--resume", d]);
    assert_eq!(code, Some(0), "{err}");
    let csv = std::fs::read_to_string(dir.join("trials.csv")).unwrap();
    assert!(csv.starts_with("schema,run_id,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "the header and two rows: {csv}");
    let started = std::fs::read_to_string(dir.join("started.csv")).unwrap();
    assert!(started.starts_with("scenario,sweep_value,"), "{started}");
    let (code, err) = run(&["report", d]);
    assert_eq!(code, Some(0), "{err}");
}

/// Each of the soak's files in `dir` is absent or starts with its header.
fn assert_whole(dir: &Path, what: &str) {
    for (name, head) in [
        ("trials.csv", "schema,run_id,"),
        ("started.csv", "scenario,sweep_value,"),
        ("soak.json", "{"),
    ] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            assert!(text.starts_with(head), "{what}: {name}: {text:?}");
        }
    }
}

/// Remove the lab cgroup the lab `pid` left if a SIGKILL left one (a
/// SIGKILLed lab cannot remove its own): this test's, and no other's.
fn remove_cgroup_of(pid: u32) {
    let Some(parent) = lab::janitor::default_parent() else {
        return;
    };
    for e in lab::janitor::scan(&parent).unwrap_or_default() {
        if e.owner.as_ref().is_some_and(|o| o.pid as u32 == pid) {
            let _ = lab::janitor::remove(&e.path);
        }
    }
}

/// When a test kills the soak it starts.
#[derive(Clone, Copy, Debug)]
enum KillAt {
    /// As soon as it is spawned.
    Once,
    /// As soon as its directory appears (inotify): while it makes its files.
    Dir,
    /// When its header line says its files are open.
    Header,
}

/// Read inotify events of `fd` until one names `name`.
fn wait_created(fd: &std::os::fd::OwnedFd, name: &str) {
    let mut buf = [std::mem::MaybeUninit::uninit(); 4096];
    let mut events = rustix::fs::inotify::Reader::new(fd, &mut buf);
    loop {
        let e = events.next().unwrap();
        if e.file_name()
            .is_some_and(|n| n.to_bytes() == name.as_bytes())
        {
            return;
        }
    }
}

fn a_soak_killed_early_leaves_whole_files_and_resumes() {
    use rustix::fs::inotify;
    let tmp = tempfile::tempdir().unwrap();
    let modes = [KillAt::Once, KillAt::Dir, KillAt::Header];
    for round in 0..18 {
        let signal = if round % 2 == 0 {
            rustix::process::Signal::TERM
        } else {
            rustix::process::Signal::KILL
        };
        let at = modes[(round / 2) % modes.len()];
        let name = format!("soak-{round}");
        let dir = tmp.path().join(&name);
        let watch = inotify::init(inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(&watch, tmp.path(), inotify::WatchFlags::CREATE).unwrap();
        let marker = Marker::new();
        let mut child = marker
            .command(LAB)
            .args(["soak", "--scenario", "nested", "--strategy", "canonical"])
            .args(["--trials", "3", "--progress", "none", "-j", "1", "--out"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        match at {
            KillAt::Once => {}
            KillAt::Dir => wait_created(&watch, &name),
            KillAt::Header => {
                let mut line = String::new();
                err.read_line(&mut line).unwrap();
                assert!(line.starts_with("lab soak "), "{line}");
            }
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let _ = child.wait();
        drop(err);
        marker.wait_gone();
        remove_cgroup_of(child.id());
        let what = format!("round {round}: {signal:?} at {at:?}");
        assert_whole(&dir, &what);
        let d = dir.to_str().unwrap();
        let (code, err) = if dir.join("soak.json").exists() {
            run(&["soak", "--progress", "none", "--resume", d])
        } else {
            soak("nested", 3, &dir)
        };
        assert_eq!(code, Some(0), "{what}: {err}");
        let rows = lab::record::csv::read_rows(&dir.join("trials.csv")).unwrap();
        let mut keys: Vec<_> = rows.iter().map(|r| (r.strategy.clone(), r.trial)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), rows.len(), "{what}: no trial twice");
        assert_eq!(rows.len(), 3, "{what}: every trial once");
        assert_whole(&dir, &what);
        assert_eq!(run(&["report", d]).0, Some(0), "{what}");
    }
}

fn a_full_disk_stops_a_soak_with_its_partial_summary_and_resume_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let out = mnt.join("soak");
    // A 64 KiB tmpfs, in a mount namespace of the lab's own: the rows fill
    // it long before the 400 trials end. Then it grows, the soak resumes,
    // and its files are copied out.
    let soak = format!(
        "'{LAB}' soak --scenario nested --strategy canonical --trials 400 --progress none \
         --format json -j 2 --out '{o}'",
        o = out.display()
    );
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs '{m}' || exit 99; {soak} > '{t}/first.json'; \
         echo $? > '{t}/first.status'; mount -o remount,size=16m '{m}' || exit 99; \
         '{LAB}' soak --progress none --format json --resume '{o}' > '{t}/second.json'; \
         echo $? > '{t}/second.status'; cp '{o}/trials.csv' '{o}/started.csv' '{t}/'",
        m = mnt.display(),
        o = out.display(),
        t = tmp.path().display()
    );
    let marker = Marker::new();
    let o = marker
        .command("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    marker.wait_gone();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let read = |name: &str| std::fs::read_to_string(tmp.path().join(name)).unwrap();
    assert_eq!(read("first.status").trim(), "3", "{err}");
    let v: serde_json::Value = serde_json::from_str(&read("first.json")).unwrap();
    let stopped = v["stopped"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(stopped.contains("No space left"), "{stopped}");
    let resume = v["resume"].as_str().unwrap();
    assert!(resume.starts_with("lab soak --resume "), "{resume}");
    let first = v["trials_run"].as_u64().unwrap();
    assert!(first > 0 && first < 400, "{v}");
    // The resume repairs both files and runs the rest, each trial once.
    assert_eq!(read("second.status").trim(), "0", "{err}");
    let rows = lab::record::csv::read_rows(&tmp.path().join("trials.csv")).unwrap();
    let mut trials: Vec<u64> = rows.iter().map(|r| r.trial).collect();
    trials.sort_unstable();
    assert_eq!(trials, (0..400).collect::<Vec<_>>());
    let started = read("started.csv");
    assert!(
        started.starts_with("scenario,sweep_value,"),
        "{started:.100}"
    );
    assert!(
        started.lines().skip(1).all(|l| l.split(',').count() == 5),
        "no torn or merged line in started.csv"
    );
}

tests! {
    planted_symlinks_are_refused_and_nothing_is_written_through needs testkit::ROOT;
    a_tampered_resume_directory_is_refused_and_nothing_runs needs testkit::ROOT;
    a_changed_scenario_is_never_resumed;
    directories_others_can_write_are_refused_by_resume_merge_report_and_plot;
    an_empty_trials_csv_is_given_its_header_on_resume_and_report_reads_it;
    a_soak_killed_early_leaves_whole_files_and_resumes;
    a_full_disk_stops_a_soak_with_its_partial_summary_and_resume_line needs testkit::ROOT;
}
