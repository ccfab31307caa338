//! Ctrl-C (SIGINT) during `lab run`, `lab soak` and `lab fuzz`: no trial starts after
//! it, the trials in flight finish, the partial summary of the trials done
//! is printed (with the command that resumes a soak), the exit status is
//! 130, and no process of the lab is left.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{out_dir, Marker, LAB};

/// Send SIGINT to `child` (by its pid: the test's own child).
fn interrupt(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
}

/// Start the lab with `args`, its stdout and stderr piped; its stderr to
/// read line by line, and its marker.
fn start(args: &[&std::ffi::OsStr]) -> (Child, BufReader<std::process::ChildStderr>, Marker) {
    let marker = Marker::new();
    let mut lab = marker
        .command(LAB)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(lab.stderr.take().unwrap());
    (lab, err, marker)
}

/// Ctrl-C to `lab`, then the rest of its stderr (after `said`) and its
/// stdout, once it exited with status 130 and nothing of it is left.
fn stop(
    mut lab: Child,
    mut err: BufReader<std::process::ChildStderr>,
    marker: Marker,
    said: &mut String,
) -> String {
    interrupt(&lab);
    err.read_to_string(said).unwrap();
    let mut out = String::new();
    lab.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = lab.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}\n{out}\n{said}");
    marker.wait_gone();
    out
}

/// Rows of the CSV at `path` (its header aside); 0 while it does not exist.
fn csv_rows(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count().saturating_sub(1))
}

fn a_soak_interrupted_with_ctrl_c_prints_its_partial_summary_and_how_to_resume() {
    let dir = out_dir("ctrl-c-soak");
    let (lab, mut err, marker) = start(&[
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
    ]);
    let mut said = String::new();
    // The header line first, then one line per finished trial: wait for 4.
    let mut ended = 0;
    while ended < 4 {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "ended early: {said}");
        ended += line.starts_with("soak: ") as usize;
        said.push_str(&line);
    }
    assert!(
        said.starts_with(
            "lab soak nested  seed 1  strategies canonical, legacy  2000 trials per cell"
        ),
        "{said}"
    );
    let out = stop(lab, err, marker, &mut said);
    assert!(said.contains("lab: interrupted: no new trials"), "{said}");
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
            "\ninterrupted (Ctrl-C) after {rows} trials this run; the summary above is partial\nresume: lab soak --resume {}\n",
            dir.display()
        )),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_run_interrupted_with_ctrl_c_prints_the_summary_of_the_trials_done() {
    let dir = out_dir("ctrl-c-run");
    let (lab, mut err, marker) = start(&[
        "run".as_ref(),
        "nested".as_ref(),
        "--trials".as_ref(),
        "2000".as_ref(),
        "-j".as_ref(),
        "2".as_ref(),
        "--out".as_ref(),
        dir.as_os_str(),
    ]);
    let mut header = String::new();
    assert!(err.read_line(&mut header).unwrap() > 0, "no header");
    assert!(header.starts_with("lab run nested  seed 1  strategies canonical, legacy  2000 trials each  -j 2  results "), "{header}");
    let run_dir = PathBuf::from(header.trim_end().rsplit_once("  results ").unwrap().1);
    let csv = run_dir.join("trials.csv");
    // Wait (bounded: the run's 4000 trials take far longer) until 3 trials
    // have their rows; reading the file is the event.
    let mut polls = 0u64;
    while csv_rows(&csv) < 3 {
        polls += 1;
        assert!(polls < 50_000_000, "no rows in {}", csv.display());
        std::thread::yield_now();
    }
    let out = stop(lab, err, marker, &mut String::new());
    let rows = csv_rows(&csv);
    assert!((3..2000).contains(&rows), "{rows} rows");
    assert!(
        out.contains(&format!(
            "interrupted (Ctrl-C): the partial summary of the {rows} trials done\n"
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
    let _ = std::fs::remove_dir_all(dir);
}

fn a_fuzz_interrupted_with_ctrl_c_prints_its_partial_summary() {
    let dir = out_dir("ctrl-c-fuzz");
    let regressions = dir.join("regressions");
    let (lab, mut err, marker) = start(&[
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
    ]);
    // The header comes once the Ctrl-C handler is in place.
    let mut said = String::new();
    assert!(err.read_line(&mut said).unwrap() > 0, "no header");
    assert!(
        said.starts_with("lab fuzz  seed 1  strategies legacy  1000 cases"),
        "{said}"
    );
    let out = stop(lab, err, marker, &mut said);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    let ran = v["strategies"][0]["cases_run"].as_u64().unwrap_or(0);
    assert!(ran < 1000, "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_soak_interrupted_with_ctrl_c_prints_its_partial_summary_and_how_to_resume;
    a_run_interrupted_with_ctrl_c_prints_the_summary_of_the_trials_done;
    a_fuzz_interrupted_with_ctrl_c_prints_its_partial_summary;
}
