//! Ctrl-C (SIGINT) or SIGTERM (what a CI system sends on cancel) during
//! `lab run`, `lab exec`, `lab soak`, `lab fuzz`, `lab suite` and `lab
//! bisect`: no trial (no run of a suite) starts after it, those in flight
//! finish, the partial summary of the trials done is printed (with the
//! command that resumes a soak; what a bisection knows so far), the exit
//! status is 128 + the signal (130, 143), and no process or cgroup of the
//! lab is left.

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
    start_in(None, args, in_cgroup)
}

/// [`start`] in the working directory `cwd`, when given.
fn start_in(cwd: Option<&str>, args: &[&std::ffi::OsStr], in_cgroup: bool) -> Started {
    let marker = Marker::new();
    let cgroup = in_cgroup.then(|| TestCgroup::new(&marker));
    let mut cmd = marker.command(LAB);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
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

/// The `lab suite`/`lab bisect` started as `started`, once its header
/// (`head` and more) is out, the interruption handler in place, and
/// `runs` supervisors of it were seen (each a run started, one fresh
/// supervisor each; spinning, no sleep: the lab's own progress is the
/// clock), interrupted by `signal`: its stdout and stderr, once it exited
/// with 128 + the signal, leaving nothing.
fn interrupt_once_running(
    mut lab: Started,
    head: &str,
    runs: usize,
    signal: Signal,
) -> (String, String) {
    let mut said = String::new();
    assert!(lab.err.read_line(&mut said).unwrap() > 0, "no header");
    assert!(said.starts_with(head), "{said}");
    // Its supervisors: its children (the trials' processes they fork carry
    // the same command line).
    let lab_pid = lab.lab.id() as i32;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < runs {
        for (pid, cmd) in lab.marker.processes() {
            if cmd.contains("__supervisor") && parent(pid) == Some(lab_pid) {
                seen.insert(pid);
            }
        }
        assert!(lab.lab.try_wait().unwrap().is_none(), "ended early: {said}");
        std::thread::yield_now();
    }
    let out = stop(lab, signal, &mut said);
    assert!(
        said.contains(&format!(
            "lab: interrupted ({}): no new trials",
            named(signal)
        )),
        "{said}"
    );
    (out, said)
}

/// The parent of `pid` (from `/proc/PID/stat`: the field after the
/// state, which follows the command's closing parenthesis); `None` once it
/// is gone.
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The runs a suite report counts in its text tables: per strategy, every
/// member's runs alone (`a/b`: b) and the runs of the whole suite (the
/// first member's runs in it: it runs in every one).
fn runs_in_tables(out: &str) -> u64 {
    let mut runs = 0;
    let mut first = true;
    for line in out.lines() {
        if line.starts_with("  member ") {
            first = true;
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let ran = |w: &str| w.split_once('/').map(|(_, n)| n.parse::<u64>().unwrap());
        let (Some(alone), Some(in_suite)) = (
            words.get(1).and_then(|w| ran(w)),
            words.get(2).and_then(|w| ran(w)),
        ) else {
            continue;
        };
        runs += alone + if first { in_suite } else { 0 };
        first = false;
    }
    runs
}

fn a_suite_ended_by_sigterm_prints_the_partial_report_of_the_runs_done() {
    let suite = crate_path("../scenarios/suites", "attendant.toml");
    let dir = out_dir("interrupted-suite-file");
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let lab = start(
        &[
            "suite".as_ref(),
            suite.as_ref(),
            "--repeat".as_ref(),
            "200".as_ref(),
            "--junit".as_ref(),
            junit.as_os_str(),
        ],
        true,
    );
    let head =
        format!("lab suite {suite}  7 members  strategies canonical, legacy  repeat 200  -j ");
    // 12 runs started: past the first repetition of the first strategy
    // (7 members alone, then the whole suite).
    let (out, said) = interrupt_once_running(lab, &head, 12, Signal::TERM);
    assert!(said.contains("  3200 runs\n"), "{said}");
    let line = out
        .lines()
        .find(|l| l.starts_with("interrupted (SIGTERM): the partial report of "))
        .unwrap_or_else(|| panic!("{out}"));
    let (done, planned) = line
        .trim_start_matches("interrupted (SIGTERM): the partial report of ")
        .trim_end_matches(" runs")
        .split_once(" of ")
        .unwrap();
    let done: u64 = done.parse().unwrap();
    assert_eq!(planned, "3200", "{out}");
    assert!((12..3200).contains(&done), "{out}");
    // Each row counts the runs done, never the runs asked.
    assert_eq!(runs_in_tables(&out), done, "{out}");
    assert!(!out.contains("/200 "), "{out}");
    assert!(!out.contains("\nclean: "), "{out}");
    assert!(
        !out.contains("every member has the same verdicts alone and in the suite"),
        "{out}"
    );
    // A member that did not run at all is a skipped case of the JUnit
    // file, not a passed one.
    let not_run = out
        .lines()
        .filter(|l| l.split_whitespace().skip(1).take(2).eq(["0/0", "0/0"]))
        .count()
        + 7 * out.matches(": not run (interrupted)\n").count();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("not run: interrupted (SIGTERM)").count(),
        not_run,
        "{out}\n{xml}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The records of the CSV at `path` (a field may span lines).
fn csv_records(path: &str) -> u64 {
    csv::Reader::from_path(path).unwrap().records().count() as u64
}

fn a_runner_suite_interrupted_with_ctrl_c_reports_the_runs_done_and_is_never_clean() {
    let dir = out_dir("interrupted-suite");
    let lab = start_in(
        Some(&crate_path("tests/fixtures", "shell-runner")),
        &[
            "suite".as_ref(),
            "--list-cmd".as_ref(),
            "./run-tests --list".as_ref(),
            "--run-cmd".as_ref(),
            "./run-tests {names}".as_ref(),
            "--repeat".as_ref(),
            "200".as_ref(),
            "--expect-clean".as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
            "--out".as_ref(),
            dir.as_os_str(),
        ],
        false,
    );
    let head = "lab suite command ./run-tests --list  7 tests  repeat 200  -j ";
    let (out, _) = interrupt_once_running(lab, head, 10, Signal::INT);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    assert_eq!(v["interrupted_by"], "INT", "{v}");
    assert_eq!(v["clean"], false, "{v}");
    assert_eq!(v["bound"], serde_json::Value::Null, "{v}");
    assert_eq!(v["runs_planned"], 1600, "{v}");
    let runs = v["runs"].as_u64().unwrap();
    assert!((10..1600).contains(&runs), "{v}");
    // Every run done is a row of its trials.csv, and counted once: the
    // tests alone, and the runs of the whole list.
    assert_eq!(csv_records(v["csv"].as_str().unwrap()), runs, "{v}");
    let members = v["members"].as_array().unwrap();
    let whole = members[0]["suite_runs_done"].as_u64().unwrap();
    let alone: u64 = members
        .iter()
        .map(|m| m["alone"]["runs"].as_u64().unwrap())
        .sum();
    assert_eq!(alone + whole, runs, "{v}");
    assert_eq!(v["suite_runs"], whole, "{v}");
    for m in members {
        assert_eq!(m["suite_runs_done"], whole, "{m}");
        assert!(m["suite"]["runs"].as_u64().unwrap() <= whole, "{m}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `lab bisect ... --victim fork-then-ask --repeat 200 ARGS` of the
/// attendant suite, interrupted by `signal` once running; its stdout.
fn bisect_interrupted(extra: &[&str], signal: Signal, in_cgroup: bool) -> String {
    let suite = crate_path("../scenarios/suites", "attendant.toml");
    let mut args = vec![
        "bisect",
        suite.as_str(),
        "--victim",
        "fork-then-ask",
        "--repeat",
        "200",
    ];
    args.extend(extra);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let head =
        format!("lab bisect {suite}  victim fork-then-ask  strategy legacy  repeat 200  -j ");
    interrupt_once_running(start(&args, in_cgroup), &head, 3, signal).0
}

/// The members run before fork-then-ask in the attendant suite.
const PREDECESSORS: [&str; 5] = [
    "spawn-and-wait",
    "exit-codes",
    "warm-cache",
    "deep-tree",
    "exec-children",
];

fn a_bisect_ended_by_sigterm_says_what_it_knows_so_far() {
    let out = bisect_interrupted(&[], Signal::TERM, true);
    let runs = out
        .lines()
        .find_map(|l| l.strip_prefix("runs: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(runs.parse::<u64>().unwrap() >= 3, "{out}");
    assert!(
        out.contains(&format!(
            "\ninterrupted (SIGTERM) after {runs} runs: not finished\n"
        )),
        "{out}"
    );
    let in_play = out
        .lines()
        .find_map(|l| l.strip_prefix("still in play: "))
        .unwrap_or_else(|| panic!("{out}"));
    let (names, rest) = in_play.split_once(" (").unwrap();
    let names: Vec<&str> = names.split(' ').collect();
    assert!(names.iter().all(|n| PREDECESSORS.contains(n)), "{out}");
    assert!(
        rest.starts_with(&format!("{} of 5 predecessors)", names.len())),
        "{out}"
    );
    // A replay only of a set seen to make the victim fail.
    let replay = out.lines().find_map(|l| l.strip_prefix("replay: "));
    assert_eq!(
        replay.is_some(),
        rest.ends_with(": run before the victim, they made it fail"),
        "{out}"
    );
    if let Some(r) = replay {
        assert!(
            r.contains(&format!("--members {},fork-then-ask ", names.join(","))),
            "{out}"
        );
    }
    assert!(!out.contains("one member makes the victim fail"), "{out}");
}

fn a_bisect_interrupted_with_ctrl_c_reports_in_json_that_it_did_not_finish() {
    let out = bisect_interrupted(&["--format", "json"], Signal::INT, false);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    assert_eq!(v["interrupted_by"], "INT", "{v}");
    assert_eq!(v["finished"], false, "{v}");
    assert_eq!(v["found"], false, "{v}");
    let runs = v["runs"].as_u64().unwrap();
    assert!(runs >= 3, "{v}");
    // The runs the report shows are at most the runs done.
    let steps: u64 = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["unfinished"].as_object().map(|_| &v["unfinished"]))
        .map(|s| s["runs"].as_u64().unwrap())
        .sum();
    let shown = v["alone"]["runs"].as_u64().unwrap() + v["after_all"]["runs"].as_u64().unwrap();
    assert!(steps + shown <= runs, "{v}");
    let in_play = v["in_play"].as_array().unwrap();
    assert!(!in_play.is_empty(), "{v}");
    assert!(
        in_play
            .iter()
            .all(|n| PREDECESSORS.contains(&n.as_str().unwrap())),
        "{v}"
    );
}

tests! {
    a_soak_interrupted_with_ctrl_c_prints_its_partial_summary_and_how_to_resume;
    a_soak_ended_by_sigterm_prints_its_partial_summary_and_how_to_resume needs CGROUP;
    a_run_interrupted_with_ctrl_c_prints_the_summary_of_the_trials_done;
    a_run_ended_by_sigterm_prints_the_summary_of_the_trials_done needs CGROUP;
    an_exec_ended_by_sigterm_prints_the_summary_of_the_trials_done needs CGROUP;
    a_fuzz_interrupted_with_ctrl_c_prints_its_partial_summary;
    a_fuzz_ended_by_sigterm_prints_its_partial_summary needs CGROUP;
    a_suite_ended_by_sigterm_prints_the_partial_report_of_the_runs_done needs CGROUP;
    a_runner_suite_interrupted_with_ctrl_c_reports_the_runs_done_and_is_never_clean;
    a_bisect_ended_by_sigterm_says_what_it_knows_so_far needs CGROUP;
    a_bisect_interrupted_with_ctrl_c_reports_in_json_that_it_did_not_finish;
}
