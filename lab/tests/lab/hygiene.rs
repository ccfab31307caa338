//! The lab never harms its host: no write through a planted symlink, lab
//! cgroups that cannot collide (two labs that are both PID 1), `lab
//! janitor` for a lab killed mid-run, one writer per soak directory, a torn
//! last row resumed, a trial twice in one CSV refused.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use super::{json, lab, out_dir, Marker, CGROUP, LAB, PIDNS};

/// `lab soak --progress lines --format json -j 2 ARGS`, started with its
/// stdout and stderr piped and `marker` in its environment.
fn start_soak(marker: &Marker, args: &[&str]) -> Child {
    marker
        .command(LAB)
        .args(["soak", "--progress", "lines", "--format", "json", "-j", "2"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Read `child`'s stderr until its first progress line (`soak: ...`);
/// returns the reader, to drain later.
fn first_progress_line(child: &mut Child) -> BufReader<std::process::ChildStderr> {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the soak ended before its first trial"
        );
        if line.starts_with("soak: ") {
            return err;
        }
    }
}

/// Wait for `child`, with the rest of its stderr from `err`.
fn finish(child: Child, err: Option<BufReader<std::process::ChildStderr>>) -> Output {
    let rest = err.map(|mut e| {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut s).unwrap();
        s
    });
    let mut out = child.wait_with_output().unwrap();
    if let Some(rest) = rest {
        out.stderr = rest;
    }
    out
}

/// Every `(strategy, trial)` of `dir/trials.csv`, in file order.
fn trial_keys(dir: &Path) -> Vec<(String, u64)> {
    lab::record::csv::read_rows(&dir.join("trials.csv"))
        .unwrap()
        .into_iter()
        .map(|r| (r.strategy, r.trial))
        .collect()
}

/// Assert that `keys` holds `n` distinct trials and no trial twice.
fn assert_once_each(keys: &[(String, u64)], n: usize) {
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        (keys.len(), sorted.len()),
        (n, n),
        "rows, and distinct trials"
    );
}

/// Run a finished soak of `nested`, `trials` per strategy, in a fresh
/// directory.
fn finished_soak(tag: &str, trials: u32) -> PathBuf {
    let dir = out_dir(tag);
    let n = trials.to_string();
    let out = lab(
        &[
            "soak",
            "--scenario",
            "nested",
            "--trials",
            &n,
            "--progress",
            "none",
            "--format",
            "json",
            "-j",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", json(&out));
    dir
}

/// Change the number of trials a soak directory's `soak.json` asks for.
fn set_trials(dir: &Path, trials: u64) {
    let path = dir.join("soak.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["trials"] = trials.into();
    std::fs::write(&path, serde_json::to_string(&spec).unwrap()).unwrap();
}

fn a_second_writer_of_a_soak_directory_is_refused_and_names_the_holder() {
    let dir = finished_soak("lock", 1);
    set_trials(&dir, 12);
    let d = dir.to_str().unwrap();
    {
        let marker = Marker::new();
        let mut first = start_soak(&marker, &["--resume", d]);
        let err = first_progress_line(&mut first);
        // The first resume runs (it has reported a trial): a second one,
        // and a new soak on the same directory, are refused.
        let second = marker
            .command(LAB)
            .args(["soak", "--progress", "none", "--resume", d])
            .output()
            .unwrap();
        assert_eq!(second.status.code(), Some(2));
        let msg = String::from_utf8_lossy(&second.stderr);
        assert!(
            msg.contains(&format!("process {} holds", first.id())) && msg.contains("in use"),
            "{msg}"
        );
        let out = finish(first, Some(err));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        marker.wait_gone();
    }
    assert_once_each(&trial_keys(&dir), 24);
    let _ = std::fs::remove_dir_all(dir);
}

fn two_resumes_started_together_give_exactly_the_trial_count() {
    for round in 0..3 {
        let dir = finished_soak(&format!("two-resumes-{round}"), 1);
        set_trials(&dir, 8);
        let d = dir.to_str().unwrap();
        {
            let marker = Marker::new();
            let a = start_soak(&marker, &["--resume", d]);
            let b = start_soak(&marker, &["--resume", d]);
            let (a, b) = (finish(a, None), finish(b, None));
            marker.wait_gone();
            let mut codes = [a.status.code(), b.status.code()];
            codes.sort();
            // Either one was refused while the other ran, or the second
            // found nothing left to run; never both running the same trials.
            assert!(
                codes == [Some(0), Some(2)] || codes == [Some(0), Some(0)],
                "{codes:?}: {}\n{}",
                String::from_utf8_lossy(&a.stderr),
                String::from_utf8_lossy(&b.stderr)
            );
            for o in [&a, &b] {
                if o.status.code() == Some(2) {
                    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));
                }
            }
        }
        assert_once_each(&trial_keys(&dir), 16);
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn a_torn_last_row_is_dropped_and_its_trial_runs_again() {
    let dir = finished_soak("torn", 4);
    let csv = dir.join("trials.csv");
    let text = std::fs::read(&csv).unwrap();
    // Cut the last row in its middle, as a crash mid-write would.
    let last_start = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let cut = last_start + (text.len() - last_start) / 2;
    std::fs::write(&csv, &text[..cut]).unwrap();
    let out = lab(
        &[
            "soak",
            "--progress",
            "none",
            "--format",
            "json",
            "--resume",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut short by a crash"));
    assert_eq!(json(&out)["trials_run"], 1);
    assert_once_each(&trial_keys(&dir), 8);
    let _ = std::fs::remove_dir_all(dir);
}

fn report_and_merge_refuse_a_trial_twice_in_one_csv() {
    let dir = finished_soak("twice", 1);
    let csv = dir.join("trials.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let last = text.lines().last().unwrap();
    std::fs::write(&csv, format!("{text}{last}\n")).unwrap();
    let out = lab(&["report", dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appears twice"));
    let merged = out_dir("twice-merged");
    let out = lab(
        &[
            "merge",
            dir.to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("appears twice in this file"));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(merged);
}

/// A temporary directory holding `secret`, a file only its owner may read
/// (as root: a root-only file), and its content.
fn secret() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    (tmp, secret)
}

fn a_planted_symlink_is_never_written_through() {
    let (tmp, secret) = secret();
    // A new soak whose directory already holds trials.csv -> secret.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&secret, out.join("trials.csv")).unwrap();
    let o = lab(
        &[
            "soak",
            "--scenario",
            "nested",
            "--trials",
            "1",
            "--progress",
            "none",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
    // A resumed soak whose summary.json, then started.csv and trials.csv,
    // were replaced by symlinks to the secret.
    let dir = finished_soak("symlink", 1);
    let d = dir.to_str().unwrap();
    let resume = ["soak", "--progress", "none", "--resume", d];
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("summary.json")).unwrap();
    let o = lab(&resume, &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(!std::fs::symlink_metadata(dir.join("summary.json"))
        .unwrap()
        .is_symlink());
    for name in ["started.csv", "trials.csv"] {
        let saved = dir.join(format!("{name}.saved"));
        std::fs::rename(dir.join(name), &saved).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join(name)).unwrap();
        let o = lab(&resume, &[]);
        assert!(!o.status.success(), "{o:?}");
        std::fs::remove_file(dir.join(name)).unwrap();
        std::fs::rename(&saved, dir.join(name)).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
    let _ = std::fs::remove_dir_all(dir);
}

fn bench_works_in_a_fresh_private_directory_and_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = lab(
        &["bench", "--trials", "3", "-j", "1", "--format", "json"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json(&o)["trials"], 3);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

fn two_labs_that_are_both_pid_1_run_at_once_with_their_control_verdicts() {
    let soak_dir = out_dir("pid1-soak");
    let run_dir = out_dir("pid1-run");
    let marker = Marker::new();
    let mut a = marker
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc", LAB])
        .args([
            "soak",
            "--scenario",
            "nested",
            "--trials",
            "30",
            "--seed",
            "7",
            "-j",
            "2",
            "--progress",
            "lines",
            "--format",
            "json",
            "--out",
        ])
        .arg(&soak_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first lab runs trials; the second starts now.
    let err = first_progress_line(&mut a);
    let b = marker
        .command("unshare")
        .args(["--pid", "--fork", "--mount-proc", LAB])
        .args([
            "run", "nested", "--seed", "7", "--trials", "20", "--format", "json", "--out",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    let a = finish(a, Some(err));
    marker.wait_gone();
    // Legacy orphans and canonical passes, as nested expects: exit 0.
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let v = json(&b);
    for (name, verdict) in [("canonical", "pass"), ("legacy", "orphan")] {
        let r = super::strategy(&v, name);
        assert_eq!(
            (r["trials"].as_u64(), r[verdict].as_u64()),
            (Some(20), Some(20)),
            "{r}"
        );
    }
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    let rows = lab::record::csv::read_rows(&soak_dir.join("trials.csv")).unwrap();
    assert_eq!(rows.len(), 60);
    for r in &rows {
        let expected = if r.strategy == "canonical" {
            "pass"
        } else {
            "orphan"
        };
        assert_eq!(r.verdict, expected, "{r:?}");
        assert_eq!(r.cgroup_mode, "cgroup", "{r:?}");
    }
    let _ = std::fs::remove_dir_all(soak_dir);
    let _ = std::fs::remove_dir_all(run_dir);
}

/// `lab janitor ARGS --format json`, run in `cgroup` (where it looks when
/// given no cgroup): its exit status and the cgroups it reported.
fn janitor(cgroup: &TestCgroup, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let marker = Marker::new();
    let mut cmd = marker.command(LAB);
    cmd.arg("janitor").args(args).args(["--format", "json"]);
    cgroup.enter(&mut cmd);
    let out = cmd.output().unwrap();
    marker.assert_gone("`lab janitor`");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let cgroups = v["cgroups"].as_array().cloned().unwrap_or_default();
    (
        out.status.code(),
        cgroups,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The children of process `pid` (of every thread of it).
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Field 22 of `/proc/PID/stat`: the process's start time (clock ticks).
fn start_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn the_janitor_removes_the_cgroup_of_a_killed_lab_and_never_a_live_one() {
    let dir = out_dir("janitor");
    let marker = Marker::new();
    // Its own parent cgroup: no other lab's sweep removes the killed lab's
    // cgroup before the janitor sees it.
    let cgroup = TestCgroup::new(&marker);
    let janitor = |args: &[&str]| janitor(&cgroup, args);
    let mut cmd = marker.command(LAB);
    cmd.args(["soak", "--progress", "lines", "--format", "json", "-j", "2"])
        .args(["--scenario", "nested", "--trials", "1000", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cgroup.enter(&mut cmd);
    let mut soak = cmd.spawn().unwrap();
    let _err = first_progress_line(&mut soak);
    let lab_start = start_ticks(soak.id() as i32);
    // While it runs, its cgroup is live: listed so, and never removed.
    let (code, cgroups, _) = janitor(&[]);
    assert_eq!(code, Some(0));
    let mine = cgroups
        .iter()
        .find(|c| {
            c["owner"]["pid"].as_u64() == Some(soak.id().into())
                && c["owner"]["start_ticks"].as_u64() == Some(lab_start)
        })
        .cloned()
        .expect("the soak's cgroup is listed");
    assert_eq!(mine["state"], "live", "{mine}");
    let path = mine["path"].as_str().unwrap().to_string();
    let (code, cgroups, err) = janitor(&["--remove", &path]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("running lab"), "{err}");
    assert_eq!(cgroups[0]["removed"], false);
    assert!(Path::new(&path).is_dir());
    // A lab killed alone leaves its cgroup to its supervisors (the last one
    // out removes it). Here they die with it, as in a host crash or an OOM
    // kill of the whole group: stop the lab (so that it cannot react),
    // SIGKILL its supervisors, then it, each by its PID.
    let pid = rustix::process::Pid::from_raw(soak.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let stopped = rustix::process::waitid(
        rustix::process::WaitId::Pid(pid),
        rustix::process::WaitIdOptions::STOPPED,
    )
    .unwrap();
    assert!(stopped.is_some_and(|s| s.stopped()));
    for sup in children(soak.id()) {
        let p = rustix::process::Pid::from_raw(sup).unwrap();
        if let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
            let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            rustix::event::poll(&mut fds, None).unwrap();
        }
    }
    soak.kill().unwrap();
    assert!(!soak.wait().unwrap().success());
    assert!(Path::new(&path).is_dir(), "the killed lab's cgroup is left");
    let (code, cgroups, _) = janitor(&[&path]);
    assert_eq!(code, Some(0));
    assert_eq!(cgroups[0]["state"], "stale", "{cgroups:?}");
    // Listed with the others too.
    let (_, all, _) = janitor(&[]);
    assert!(all
        .iter()
        .any(|c| c["path"] == path.as_str() && c["state"] == "stale"));
    let (code, cgroups, err) = janitor(&["--remove", &path]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cgroups[0]["removed"], true, "{cgroups:?}");
    assert!(!Path::new(&path).exists());
    // What the trials left (their processes were in its cgroup) is gone.
    marker.wait_gone();
    // A lab cgroup with no owner recorded and no lock (its lab died before
    // it recorded itself): unknown, removed only while empty, nothing in it
    // killed.
    let unknown = cgroup.dir.join("lab.unknown");
    std::fs::create_dir_all(unknown.join("trial.1.0")).unwrap();
    let path = unknown.to_str().unwrap();
    let (code, cgroups, err) = janitor(&["--remove", path]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(cgroups[0]["state"], "unknown", "{cgroups:?}");
    assert_eq!(cgroups[0]["removed"], false, "{cgroups:?}");
    std::fs::remove_dir(unknown.join("trial.1.0")).unwrap();
    let (code, cgroups, err) = janitor(&["--remove", path]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cgroups[0]["removed"], true, "{cgroups:?}");
    assert!(!unknown.exists());
    // Bad input: a path that is no cgroup.
    let (code, _, err) = janitor(&["--remove", "/no/such/cgroup"]);
    assert_eq!(code, Some(2), "{err}");
    // Nor a directory that is no cgroup: nothing is written into it.
    let plain = tempfile::tempdir().unwrap();
    std::fs::create_dir(plain.path().join("lab.x")).unwrap();
    let (code, _, err) = janitor(&["--remove", plain.path().to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a cgroup"), "{err}");
    assert_eq!(
        std::fs::read_dir(plain.path().join("lab.x"))
            .unwrap()
            .count(),
        0
    );
    drop(soak);
    let test_cgroup = cgroup.dir.clone();
    drop(cgroup);
    assert!(!test_cgroup.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// A cgroup of one test's own, `lab-test.MARKER` under this process's
/// cgroup: a lab started with [`TestCgroup::enter`] runs in it, and so
/// makes its lab cgroup there, where only this test looks. Removed (it
/// must be empty by then) when dropped.
pub(super) struct TestCgroup {
    pub(super) dir: PathBuf,
    procs: std::fs::File,
}

impl TestCgroup {
    /// A new, empty one, named after `marker`.
    pub(super) fn new(marker: &Marker) -> TestCgroup {
        let own = lab::cgroup::own_cgroup().expect("a cgroup v2 hierarchy");
        let dir = own.join(format!("lab-test.{}", marker.0));
        std::fs::create_dir(&dir).unwrap();
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .unwrap();
        TestCgroup { dir, procs }
    }

    /// Make `cmd`'s process join this cgroup before it runs the program.
    pub(super) fn enter(&self, cmd: &mut Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = self.procs.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec, and
        // only calls write(2) (async-signal-safe, no allocation) on a file
        // this struct keeps open for as long as commands are started with it.
        unsafe {
            cmd.pre_exec(move || {
                // "0": the writing process itself (cgroup-v2.rst, cgroup.procs).
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::write(fd, b"0")?;
                Ok(())
            });
        }
    }

    /// The lab cgroups made in it (named `lab.` and a suffix).
    pub(super) fn lab_cgroups(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("lab."))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Spin (no sleep: the lab's own progress is the clock) until `ready`
/// holds or `child` has exited; whether `ready` held.
fn spin_until(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    loop {
        if ready() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::yield_now();
    }
}

fn a_lab_ended_by_a_signal_at_any_moment_leaves_no_cgroup_and_no_process() {
    // A shell without job control starts background commands with SIGINT
    // ignored, and an ignored signal is inherited across fork and exec: the
    // lab would then drop a SIGINT that comes before its handler exists
    // and run to the end. Its default action back, for this process and so
    // for every lab it starts, as in a foreground shell.
    lifeline::set_ignored(rustix::process::Signal::INT, false).unwrap();
    let marker = Marker::new();
    let cgroup = TestCgroup::new(&marker);
    let out = out_dir("signalled");
    let trial_cgroup_exists = || {
        cgroup.lab_cgroups().iter().any(|d| {
            std::fs::read_dir(d).is_ok_and(|mut e| e.any(|e| e.is_ok_and(|e| e.path().is_dir())))
        })
    };
    for signal in [rustix::process::Signal::INT, rustix::process::Signal::TERM] {
        // The moments: at once; as soon as its lab cgroup exists (before
        // any supervisor knows it); as soon as a trial runs in it.
        for moment in 0..3 {
            let mut cmd = marker.command(LAB);
            cmd.args(["run", "nested", "--trials", "50", "--out"])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cgroup.enter(&mut cmd);
            let mut child = cmd.spawn().unwrap();
            let reached = match moment {
                0 => true,
                1 => spin_until(&mut child, || !cgroup.lab_cgroups().is_empty()),
                _ => spin_until(&mut child, trial_cgroup_exists),
            };
            assert!(reached, "the lab ended before moment {moment}");
            let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
            rustix::process::kill_process(pid, signal).unwrap();
            let status = child.wait().unwrap();
            // Ended by the signal; or, once the run has begun, exit 128 +
            // the signal after the trials in flight (130, 143).
            let by_signal =
                std::os::unix::process::ExitStatusExt::signal(&status) == Some(signal.as_raw());
            let stopped = status.code() == Some(128 + signal.as_raw());
            assert!(
                by_signal || stopped,
                "{signal:?} at moment {moment}: {status:?}"
            );
            marker.wait_gone();
            assert_eq!(
                cgroup.lab_cgroups(),
                Vec::<PathBuf>::new(),
                "{signal:?} at moment {moment} left a lab cgroup"
            );
        }
    }
    let dir = cgroup.dir.clone();
    drop(cgroup);
    assert!(!dir.exists(), "{} is left", dir.display());
    let _ = std::fs::remove_dir_all(&out);
}

/// Where a [`killed_at`] lab is when the test SIGKILLs it.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// As soon as it is spawned.
    Spawned,
    /// Once its lab cgroup exists.
    Cgroup,
    /// Once it printed its header line on stderr.
    Header,
    /// Once its `trials.csv` holds this many rows.
    Rows(usize),
}

/// The rows of the `trials.csv` in `out` (a soak's) or one level down (a
/// run id's directory), headers not counted.
fn csv_rows(out: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(out) else {
        return 0;
    };
    dirs.flatten()
        .map(|d| d.path())
        .chain([out.to_path_buf()])
        .filter_map(|d| std::fs::read(d.join("trials.csv")).ok())
        .map(|b| b.iter().filter(|&&c| c == b'\n').count().saturating_sub(1))
        .sum()
}

/// Start `lab ARGS` in `cgroup`, stderr piped; SIGKILL it at `moment`
/// (or let it end, should it finish before) and reap it. Whether it was
/// killed.
fn killed_at(marker: &Marker, cgroup: &TestCgroup, args: &[&str], moment: Moment) -> bool {
    let mut cmd = marker.command(LAB);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cgroup.enter(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let out = Path::new(args[args.iter().position(|&a| a == "--out").unwrap() + 1]);
    let mut header = || {
        let mut line = String::new();
        err.read_line(&mut line).unwrap() > 0
    };
    let header = matches!(moment, Moment::Header) && header();
    // Drained meanwhile: a lab blocked on a full pipe makes no progress.
    let drain = std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let reached = match moment {
        Moment::Spawned => true,
        Moment::Cgroup => spin_until(&mut child, || !cgroup.lab_cgroups().is_empty()),
        Moment::Header => header,
        Moment::Rows(n) => spin_until(&mut child, || csv_rows(out) >= n),
    };
    let _ = child.kill();
    let status = child.wait().unwrap();
    let _ = drain.join();
    let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
    assert!(killed || !reached, "{args:?} at {moment:?}: {status:?}");
    killed
}

fn a_lab_sigkilled_at_any_moment_leaves_no_cgroup_after_the_next_lab_starts() {
    let marker = Marker::new();
    let cgroup = TestCgroup::new(&marker);
    let out = out_dir("sigkilled");
    let o = |tag: &str| out.join(tag).to_str().unwrap().to_string();
    let (fuzz, fuzz_regr, soak, exec) = (o("fuzz"), o("regressions"), o("soak"), o("exec"));
    let fuzz_args = [
        "fuzz",
        "--cases",
        "2000",
        "-j",
        "2",
        "--out",
        &fuzz,
        "--regressions",
        &fuzz_regr,
    ];
    let soak_args = [
        "soak",
        "--scenario",
        "nested",
        "--trials",
        "2000",
        "--progress",
        "lines",
        "-j",
        "2",
        "--out",
        &soak,
    ];
    let exec_args = [
        "exec", "--trials", "2000", "-j", "2", "--out", &exec, "--", "true",
    ];
    use Moment::*;
    let runs: [(&[&str], Moment); 20] = [
        (&fuzz_args, Spawned),
        (&fuzz_args, Cgroup),
        (&fuzz_args, Header),
        (&fuzz_args, Rows(1)),
        (&fuzz_args, Rows(7)),
        (&fuzz_args, Rows(40)),
        (&fuzz_args, Spawned),
        (&soak_args, Spawned),
        (&soak_args, Cgroup),
        (&soak_args, Header),
        (&soak_args, Rows(1)),
        (&soak_args, Rows(10)),
        (&soak_args, Rows(60)),
        (&soak_args, Cgroup),
        (&exec_args, Spawned),
        (&exec_args, Cgroup),
        (&exec_args, Header),
        (&exec_args, Rows(1)),
        (&exec_args, Rows(5)),
        (&exec_args, Rows(50)),
    ];
    let mut killed = 0;
    for (args, moment) in runs {
        // A soak's --out is its own directory: a fresh one each time.
        let _ = std::fs::remove_dir_all(&soak);
        killed += usize::from(killed_at(&marker, &cgroup, args, moment));
    }
    assert!(killed >= 18, "only {killed} of 20 labs were killed mid-run");
    // Their trees are gone (supervisors see their lifelines close; trials
    // die with their PID namespaces); only cgroups may be left.
    marker.wait_gone();
    // The next lab started here removes them, and its own at its end.
    let mut cmd = marker.command(LAB);
    cmd.args(["run", "nested", "--trials", "1", "--out"])
        .arg(out.join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cgroup.enter(&mut cmd);
    let status = cmd.status().unwrap();
    assert!(status.code().is_some(), "{status:?}");
    assert_eq!(cgroup.lab_cgroups(), Vec::<PathBuf>::new());
    marker.assert_gone("the last lab");
    let dir = cgroup.dir.clone();
    drop(cgroup);
    assert!(!dir.exists(), "{} is left", dir.display());
    let _ = std::fs::remove_dir_all(&out);
}

/// `lab ARGS` with the open-file limit `soft`:`hard`, through `prlimit`
/// where util-linux has it, else a shell's `ulimit`.
fn with_fd_limit(marker: &Marker, soft: u64, hard: u64, args: &[&str]) -> Output {
    let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut cmd = match prlimit {
        Some(p) => {
            let mut c = marker.command(p);
            c.arg(format!("--nofile={soft}:{hard}")).arg(LAB);
            c
        }
        None => {
            let mut c = marker.command("sh");
            c.arg("-c")
                .arg(format!(
                    "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
                ))
                .arg(LAB);
            c
        }
    };
    let out = cmd.args(args).output().unwrap();
    marker.assert_gone("the lab");
    out
}

fn a_low_fd_limit_is_raised_to_what_the_lab_needs_or_named() {
    let marker = Marker::new();
    let out = out_dir("fd-limit");
    let run = [
        "run",
        "nested",
        "--trials",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    // A hard limit too low: refused before anything runs, with the limit
    // needed and how to raise it.
    let low = with_fd_limit(&marker, 200, 200, &run);
    let err = String::from_utf8_lossy(&low.stderr);
    assert_eq!(low.status.code(), Some(3), "{err}");
    let needed = lab::session::host::FD_LIMIT_NEEDED;
    assert!(
        err.contains(&format!("at least {needed} open files")),
        "{err}"
    );
    assert!(err.contains("hard limit here is 200"), "{err}");
    assert!(err.contains("ulimit -n"), "{err}");
    assert!(!out.exists(), "nothing is run, no results written");
    // A low soft limit under a high hard one: raised, and the trials run
    // (canonical passes, legacy orphans), none of them in `error`.
    let raised = with_fd_limit(&marker, 200, 4096, &run);
    let err = String::from_utf8_lossy(&raised.stderr);
    assert_eq!(raised.status.code(), Some(0), "{err}");
    assert!(!err.contains("os error"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The names of the trial cgroups under the lab cgroup `dir`.
fn trial_cgroups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn a_supervisor_reuses_a_trial_cgroup_left_empty_never_a_killed_one_and_removes_it_at_its_end() {
    use lab::plan::Plan;
    use lab::scenario::Scenario;
    use lab::session::SupervisorHandle;
    use lab::strategy::Strategy;
    use lab::trial::protocol::TrialRequest;
    /// The lab cgroup, removed when the test ends, a failed one included.
    struct Removed(PathBuf);
    impl Drop for Removed {
        fn drop(&mut self) {
            lab::cgroup::remove_lab_cgroup(&self.0);
        }
    }
    let dir = lab::cgroup::create_lab_cgroup().expect("a lab cgroup");
    let removed = Removed(dir.clone());
    let plan = Plan::new(&Scenario::load("nested").unwrap(), 1);
    let mut sup = SupervisorHandle::start(Path::new(LAB), Some(&dir)).unwrap();
    let mut trial = 0;
    let mut run = |strategy: &str, verdict: &str| {
        let req = TrialRequest {
            deadline_us: plan.deadline_us,
            plan: plan.clone(),
            strategy: Strategy::parse(strategy).unwrap(),
            trial,
            cgroup_parent: Some(dir.clone()),
            gdb: false,
            keep_hung: false,
            trace: false,
            brief_verdicts: Vec::new(),
            log_dir: None,
        };
        let o = sup.run(&req, &|_| {}).unwrap();
        assert_eq!(
            o.verdict.name(),
            verdict,
            "trial {trial} ({strategy}): {o:?}"
        );
        assert!(o.cgroup, "trial {trial} ran without its cgroup: {o:?}");
        trial += 1;
        trial_cgroups(&dir)
    };
    // Canonical trials end with nothing alive: each leaves its cgroup empty
    // and unkilled, and the next runs in it.
    let first = run("canonical", "pass");
    assert_eq!(first.len(), 1, "{first:?}");
    for _ in 0..3 {
        assert_eq!(run("canonical", "pass"), first);
    }
    let events = std::fs::read_to_string(dir.join(&first[0]).join("cgroup.events")).unwrap();
    assert!(events.contains("populated 0"), "{events}");
    // A legacy trial leaves orphans: the cleanup kills its cgroup, which is
    // then removed, and the next trial gets a new one (a child cloned into
    // a killed cgroup would be SIGKILLed at birth).
    assert_eq!(run("legacy", "orphan"), Vec::<String>::new());
    let next = run("canonical", "pass");
    assert_eq!(next.len(), 1, "{next:?}");
    assert_ne!(next, first);
    drop(sup);
    assert_eq!(trial_cgroups(&dir), Vec::<String>::new());
    drop(removed);
    assert!(!dir.exists());
}

tests! {
    a_second_writer_of_a_soak_directory_is_refused_and_names_the_holder;
    two_resumes_started_together_give_exactly_the_trial_count;
    a_torn_last_row_is_dropped_and_its_trial_runs_again;
    report_and_merge_refuse_a_trial_twice_in_one_csv;
    a_planted_symlink_is_never_written_through;
    bench_works_in_a_fresh_private_directory_and_removes_it;
    two_labs_that_are_both_pid_1_run_at_once_with_their_control_verdicts needs testkit::ROOT, PIDNS;
    the_janitor_removes_the_cgroup_of_a_killed_lab_and_never_a_live_one needs CGROUP;
    a_lab_ended_by_a_signal_at_any_moment_leaves_no_cgroup_and_no_process needs CGROUP;
    a_lab_sigkilled_at_any_moment_leaves_no_cgroup_after_the_next_lab_starts needs testkit::ROOT, CGROUP;
    a_low_fd_limit_is_raised_to_what_the_lab_needs_or_named;
    a_supervisor_reuses_a_trial_cgroup_left_empty_never_a_killed_one_and_removes_it_at_its_end needs CGROUP;
}
