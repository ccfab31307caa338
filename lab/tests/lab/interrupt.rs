//! Ctrl-C (SIGINT) or SIGTERM (what a CI system sends on cancel) during
//! `lab run`, `lab exec`, `lab soak` and `lab fuzz`: no trial starts after
//! it, the trials in flight finish, the partial summary of the trials done
//! is printed (with the command that resumes a soak), the exit status is
//! 128 + the signal (130, 143), and no process or cgroup of the lab is
//! left. `lab suite` and `lab bisect` end at once (by the signal: 128 + it
//! to a shell), leaving nothing.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use rustix::process::Signal;

use super::hygiene::TestCgroup;
use super::{crate_path, out_dir, Marker, CGROUP, LAB};

/// Send `signal` to `child` (by its pid: the test's own child).
fn send(child: &Child, signal: Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// A lab started by [`start`]: the process, its stderr to read line by
/// line, its marker and, when it runs in one, its test cgroup.
struct Started {
    lab: Child,
    err: BufReader<std::process::ChildStderr>,
    marker: Marker,
    cgroup: Option<TestCgroup>,
}

/// Start the lab with `args`, its stdout and stderr piped; in a test
/// cgroup of its own when `in_cgroup` (so that the test can see that it
/// leaves no lab cgroup).
fn start(args: &[&std::ffi::OsStr], in_cgroup: bool) -> Started {
    let marker = Marker::new();
    let cgroup = in_cgroup.then(|| TestCgroup::new(&marker));
    let mut cmd = marker.command(LAB);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(c) = &cgroup {
        c.enter(&mut cmd);
    }
    let mut lab = cmd.spawn().unwrap();
    let err = BufReader::new(lab.stderr.take().unwrap());
    Started {
        lab,
        err,
        marker,
        cgroup,
    }
}

/// Send `signal` to the lab, then the rest of its stderr (after `said`)
/// and its stdout, once it exited with status 128 + the signal and nothing
/// of it is left: no process, and no lab cgroup in its test cgroup.
fn stop(started: Started, signal: Signal, said: &mut String) -> String {
    let Started {
        mut lab,
        mut err,
        marker,
        cgroup,
    } = started;
    send(&lab, signal);
    err.read_to_string(said).unwrap();
    let mut out = String::new();
    lab.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = lab.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + signal.as_raw()),
        "{status:?}\n{out}\n{said}"
    );
    marker.wait_gone();
    if let Some(c) = cgroup {
        assert_eq!(
            c.lab_cgroups(),
            Vec::<PathBuf>::new(),
            "a lab cgroup is left"
        );
        let dir = c.dir.clone();
        drop(c);
        assert!(!dir.exists(), "{} is left", dir.display());
    }
    out
}

/// How the summaries name `signal`.
fn named(signal: Signal) -> &'static str {
    if signal == Signal::INT {
        "Ctrl-C"
    } else {
        "SIGTERM"
    }
}

/// Rows of the CSV at `path` (its header aside); 0 while it does not exist.
fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count().saturating_sub(1))
}

/// A soak of 2000 trials per cell interrupted by `signal` after 4 trials
/// ended (its `--progress lines` said so): the partial summary, the
/// resume line, exit 128 + the signal.
fn soak_interrupted(signal: Signal, in_cgroup: bool) {
    let dir = out_dir("interrupted-soak");
    let mut lab = start(
        &[
            "soak".as_ref(),
            "--scenario".as_ref(),
            "nested".as_ref(),
            "--trials".as_ref(),
            "2000".as_ref(),
            "-j".as_ref(),
            "2".as_ref(),
            "--progress".as_ref(),
            "lines".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
        ],
        in_cgroup,
    );
    let mut said = String::new();
    // The header line first, then one line per finished trial: wait for 4.
    let mut ended = 0;
    while ended < 4 {
        let mut line = String::new();
        assert!(
            lab.err.read_line(&mut line).unwrap() > 0,
            "ended early: {said}"
        );
        ended += line.starts_with("soak: ") as usize;
        said.push_str(&line);
    }
    assert!(
        said.starts_with(
            "lab soak nested  seed 1  strategies canonical, legacy  2000 trials per cell"
        ),
        "{said}"
    );
    let out = stop(lab, signal, &mut said);
    let by = named(signal);
    assert!(
        said.contains(&format!("lab: interrupted ({by}): no new trials")),
        "{said}"
    );
    // The partial summary counts exactly the rows the CSV holds.
    let rows = csv_rows(&dir.join("trials.csv"));
    assert!((4..4000).contains(&rows), "{rows} rows");
    assert!(
        out.contains(&format!("  {rows} trials this run")),
        "{rows} rows:\n{out}"
    );
    assert!(out.contains("\n  verdict "), "no A/B table:\n{out}");
    assert!(
        out.contains(&format!(
            "\ninterrupted ({by}) after {rows} trials this run; the summary above is partial\nresume: lab soak --resume {}\n",
            dir.display()
        )),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_soak_interrupted_with_ctrl_c_prints_its_partial_summary_and_how_to_resume() {
    soak_interrupted(Signal::INT, false);
}

fn a_soak_ended_by_sigterm_prints_its_partial_summary_and_how_to_resume() {
    soak_interrupted(Signal::TERM, true);
}

/// `lab ARGS` (a `lab run` or `lab exec` of 2000 trials per strategy, its
/// header `HEAD ... results DIR`) interrupted by `signal` once 3 trials
/// have their rows: the summary of exactly the trials done, exit 128 +
/// the signal.
fn run_interrupted(args: &[&std::ffi::OsStr], head: &str, signal: Signal, in_cgroup: bool) {
    let mut lab = start(args, in_cgroup);
    let mut header = String::new();
    assert!(lab.err.read_line(&mut header).unwrap() > 0, "no header");
    assert!(header.starts_with(head), "{header}");
    let run_dir = PathBuf::from(header.trim_end().rsplit_once("  results ").unwrap().1);
    let csv = run_dir.join("trials.csv");
    // Wait (bounded: the run's 2000 or more trials take far longer) until
    // 3 trials have their rows; reading the file is the event.
    let mut polls = 0u64;
    while csv_rows(&csv) < 3 {
        polls += 1;
        assert!(polls < 50_000_000, "no rows in {}", csv.display());
        std::thread::yield_now();
    }
    let out = stop(lab, signal, &mut String::new());
    let rows = csv_rows(&csv);
    assert!((3..2000).contains(&rows), "{rows} rows");
    assert!(
        out.contains(&format!(
            "interrupted ({}): the partial summary of the {rows} trials done\n",
            named(signal)
        )),
        "{rows} rows:\n{out}"
    );
    let trials = out
        .lines()
        .find(|l| l.starts_with("trials "))
        .unwrap_or_else(|| panic!("no trials row:\n{out}"));
    assert_eq!(
        trials.split_whitespace().nth(1),
        Some(rows.to_string().as_str()),
        "{out}"
    );
    assert!(out.contains(&format!("trials: {}", csv.display())), "{out}");
}

/// `lab run nested` interrupted by `signal`.
fn run_nested_interrupted(signal: Signal, in_cgroup: bool) {
    let dir = out_dir("interrupted-run");
    run_interrupted(
        &[
            "run".as_ref(),
            "nested".as_ref(),
            "--trials".as_ref(),
            "2000".as_ref(),
            "-j".as_ref(),
            "2".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
        ],
        "lab run nested  seed 1  strategies canonical, legacy  2000 trials each  -j 2  results ",
        signal,
        in_cgroup,
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_run_interrupted_with_ctrl_c_prints_the_summary_of_the_trials_done() {
    run_nested_interrupted(Signal::INT, false);
}

fn a_run_ended_by_sigterm_prints_the_summary_of_the_trials_done() {
    run_nested_interrupted(Signal::TERM, true);
}

fn an_exec_ended_by_sigterm_prints_the_summary_of_the_trials_done() {
    let dir = out_dir("interrupted-exec");
    run_interrupted(
        &[
            "exec".as_ref(),
            "--trials".as_ref(),
            "2000".as_ref(),
            "-j".as_ref(),
            "2".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
            "--".as_ref(),
            "sh".as_ref(),
            "-c".as_ref(),
            "exit 0".as_ref(),
        ],
        "lab exec exec-sh  seed 1  strategies canonical  2000 trials each  -j 2  results ",
        Signal::TERM,
        true,
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A fuzz of 1000 cases interrupted by `signal` once its header is out.
fn fuzz_interrupted(signal: Signal, in_cgroup: bool) {
    let dir = out_dir("interrupted-fuzz");
    let regressions = dir.join("regressions");
    let mut lab = start(
        &[
            "fuzz".as_ref(),
            "--strategy".as_ref(),
            "legacy".as_ref(),
            "--cases".as_ref(),
            "1000".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
            "--regressions".as_ref(),
            regressions.as_os_str(),
        ],
        in_cgroup,
    );
    // The header comes once the interruption handler is in place.
    let mut said = String::new();
    assert!(lab.err.read_line(&mut said).unwrap() > 0, "no header");
    assert!(
        said.starts_with("lab fuzz  seed 1  strategies legacy  1000 cases"),
        "{said}"
    );
    let out = stop(lab, signal, &mut said);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    let sig = if signal == Signal::INT { "INT" } else { "TERM" };
    assert_eq!(v["interrupted_by"], sig, "{v}");
    let ran = v["strategies"][0]["cases_run"].as_u64().unwrap_or(0);
    assert!(ran < 1000, "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

fn a_fuzz_interrupted_with_ctrl_c_prints_its_partial_summary() {
    fuzz_interrupted(Signal::INT, false);
}

fn a_fuzz_ended_by_sigterm_prints_its_partial_summary() {
    fuzz_interrupted(Signal::TERM, true);
}

/// `lab suite` and `lab bisect` end at once by a SIGTERM (no partial
/// comparison: status 143 to a shell, as the signal's default action),
/// once their lab cgroup exists, and leave no process and no cgroup.
fn a_suite_and_a_bisect_ended_by_sigterm_end_at_once_and_leave_nothing() {
    let suite = crate_path("../scenarios/suites", "attendant.toml");
    for args in [
        &["suite", suite.as_str(), "--repeat", "200"][..],
        &[
            "bisect",
            suite.as_str(),
            "--victim",
            "fork-then-ask",
            "--repeat",
            "200",
        ][..],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let mut lab = start(&args, true);
        let cgroup = lab.cgroup.as_ref().unwrap();
        // Its lab cgroup is the event: made once the signal watch is in place.
        while cgroup.lab_cgroups().is_empty() {
            assert!(
                lab.lab.try_wait().unwrap().is_none(),
                "{args:?} ended early"
            );
            std::thread::yield_now();
        }
        send(&lab.lab, Signal::TERM);
        let status = lab.lab.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(Signal::TERM.as_raw()),
            "{args:?}: {status:?}"
        );
        lab.marker.wait_gone();
        assert_eq!(cgroup.lab_cgroups(), Vec::<PathBuf>::new(), "{args:?}");
    }
}

tests! {
    a_soak_interrupted_with_ctrl_c_prints_its_partial_summary_and_how_to_resume;
    a_soak_ended_by_sigterm_prints_its_partial_summary_and_how_to_resume needs CGROUP;
    a_run_interrupted_with_ctrl_c_prints_the_summary_of_the_trials_done;
    a_run_ended_by_sigterm_prints_the_summary_of_the_trials_done needs CGROUP;
    an_exec_ended_by_sigterm_prints_the_summary_of_the_trials_done needs CGROUP;
    a_fuzz_interrupted_with_ctrl_c_prints_its_partial_summary;
    a_fuzz_ended_by_sigterm_prints_its_partial_summary needs CGROUP;
    a_suite_and_a_bisect_ended_by_sigterm_end_at_once_and_leave_nothing needs CGROUP;
}
