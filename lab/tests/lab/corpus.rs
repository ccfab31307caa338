//! Bad input never harms the host: the corpus of bad scenario files of
//! `lab/tests/corpus/` (and a few made here: a huge file, a huge value, too
//! many kills, a directory, a missing and an unreadable file) through `lab
//! check`, `lab plan` and `lab run`: exit status 2, `file:line:col` where
//! there is one, a bounded message, no panic, and no process or directory
//! created. Then the faults of the command line: a closed stdout, `-j 0`,
//! `--trials 0`, a huge `--deadline`, and a limit on threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{lab, out_dir, Marker, LAB, STRACE};

/// The most bytes a refusal of bad input may write on standard error.
const MAX_STDERR: usize = 4096;

/// What `expect.tsv` says of one corpus file.
struct Expected {
    file: String,
    /// `LINE:COL`, or `None` for an error about the file as a whole.
    position: Option<String>,
    message: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn expectations() -> Vec<Expected> {
    std::fs::read_to_string(corpus_dir().join("expect.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (file, pos, message) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            Expected {
                file: file.to_string(),
                position: (pos != "-").then(|| pos.to_string()),
                message: message.to_string(),
            }
        })
        .collect()
}

/// `lab run PATH --out DIR` under `strace`, recording every process, thread
/// and directory it creates: a bad scenario must be refused before any.
/// Returns the output and the calls seen.
fn run_traced(path: &str, dir: &Path) -> (Output, String) {
    let marker = Marker::new();
    let trace = dir.with_extension("strace");
    let out = marker
        .command("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=clone,clone3,fork,vfork,mkdir,mkdirat",
            "-o",
        ])
        .arg(&trace)
        .args([
            LAB,
            "run",
            path,
            "--trials",
            "1",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .expect("run strace");
    let calls = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    marker.assert_gone(&format!("`lab run {path}`"));
    (out, calls)
}

/// Assert the refusal of bad input: exit 2, the message bounded and
/// located, no panic.
fn assert_refused(what: &str, out: &Output, located: &str, message: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(
        out.stderr.len() < MAX_STDERR,
        "{what}: {} bytes on stderr",
        out.stderr.len()
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.contains(located), "{what}: want {located:?} in:\n{err}");
    assert!(err.contains(message), "{what}: want {message:?} in:\n{err}");
}

/// Every bad input through check, plan and run; `run` traced.
fn refuse_everywhere(path: &str, located: &str, message: &str) {
    for cmd in ["check", "plan"] {
        let out = lab(&[cmd, path], &[]);
        assert_refused(&format!("lab {cmd} {path}"), &out, located, message);
        assert!(out.stdout.is_empty(), "lab {cmd} {path} printed on stdout");
    }
    let dir = out_dir("corpus");
    let (out, calls) = run_traced(path, &dir);
    assert_refused(&format!("lab run {path}"), &out, located, message);
    assert!(
        calls.trim().is_empty(),
        "lab run {path} created processes or directories before refusing:\n{calls}"
    );
    assert!(!dir.exists(), "lab run {path} created {}", dir.display());
}

fn every_file_of_the_corpus_is_refused_with_its_location_by_check_plan_and_run() {
    let expected = expectations();
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    for f in &files {
        let e = expected
            .iter()
            .find(|e| &e.file == f)
            .unwrap_or_else(|| panic!("{f} has no line in expect.tsv"));
        let path = corpus_dir().join(f).display().to_string();
        let located = match &e.position {
            Some(p) => format!("{path}:{p}: "),
            None => format!("{path}: "),
        };
        refuse_everywhere(&path, &located, &e.message);
    }
    assert_eq!(
        expected.len(),
        files.len(),
        "expect.tsv names files not here"
    );
}

fn files_made_here_are_refused_bounded_and_before_any_process() {
    let dir = out_dir("made");
    std::fs::create_dir_all(&dir).unwrap();
    let head = "version = 1\nname = \"big\"\n[tree]\nbreadth = 2\ndepth = 1\n";
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };

    // A file over 1 MiB: refused before it is parsed, naming the limit.
    let huge = write(
        "huge.toml",
        &format!("{head}about = \"{}\"\n", "x".repeat(2 << 20)),
    );
    refuse_everywhere(
        &huge,
        &format!("{huge}: "),
        "limit of 1048576 bytes (1 MiB)",
    );

    // A bad value of almost 1 MiB on one line: quoted, but bounded.
    let long = write(
        "long.toml",
        &format!(
            "{head}[[kill]]\ntarget = \"root\"\nat = \"{}\"\n",
            "y".repeat(1000 * 1000)
        ),
    );
    refuse_everywhere(&long, &format!("{long}:8:6: "), "yyyy…");

    // Too many kills (the parse is fast; the run would take minutes).
    let kills = "[[kill]]\ntarget = \"leaves\"\nat = \"ready\"\n".repeat(1001);
    let many = write("kills.toml", &format!("{head}{kills}"));
    refuse_everywhere(&many, &format!("{many}:3007:10: "), "more than 1000 kills");

    // A directory, a missing file, a file no one can read.
    let d = dir.display().to_string();
    refuse_everywhere(&format!("{d}/"), &format!("{d}/: "), "is a directory");
    let missing = format!("{d}/missing.toml");
    refuse_everywhere(&missing, &format!("{missing}: "), "cannot read the file");
    refuse_everywhere(
        "/proc/self/mem",
        "/proc/self/mem: ",
        "cannot read the file: Input/output error",
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The lab with its stdout a pipe whose read end is already closed.
fn with_stdout_closed(args: &[&str]) -> Output {
    let marker = Marker::new();
    let (read, write) = rustix::pipe::pipe().unwrap();
    drop(read);
    let out = marker
        .command(LAB)
        .args(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run lab");
    marker.assert_gone(&format!("`lab {}`", args.join(" ")));
    out
}

fn a_closed_stdout_ends_the_output_quietly_with_the_usual_status() {
    let nested = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nested.toml");
    let nested = nested.to_str().unwrap();
    for (args, status) in [
        (vec!["list"], 0),
        (vec!["strategies"], 0),
        (vec!["plan", "nested"], 0),
        (vec!["plan", "nested", "--format", "json"], 0),
        (vec!["check", nested, nested], 0),
        (vec!["check", nested, "no/such.toml"], 2),
    ] {
        let out = with_stdout_closed(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "lab {args:?}: {err}");
        assert!(!err.contains("panicked"), "lab {args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "lab {args:?}: {err}");
    }
}

fn a_failed_stdout_is_said_and_exits_3() {
    for (args, status) in [
        (vec!["list"], 3),
        (vec!["plan", "nested", "--format", "json"], 3),
        // Bad input keeps its status.
        (vec!["check", "no/such.toml"], 2),
    ] {
        let marker = Marker::new();
        let full = std::fs::File::create("/dev/full").expect("open /dev/full");
        let out = marker
            .command(LAB)
            .args(&args)
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .expect("run lab");
        marker.assert_gone(&format!("`lab {}`", args.join(" ")));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "lab {args:?}: {err}");
        assert!(!err.contains("panicked"), "lab {args:?}: {err}");
        if status == 3 {
            assert!(
                err.contains("lab: cannot write to standard output (No space left on device"),
                "lab {args:?}: {err}"
            );
        }
    }
}

fn counts_jobs_deadlines_and_durations_out_of_range_are_refused_with_status_2() {
    let dir = out_dir("ranges");
    let d = dir.to_str().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/suites")
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "toml"))
        .unwrap();
    let suite = suite.to_str().unwrap();
    for (args, says) in [
        (vec!["run", "nested", "-j", "0"], "-j must be at least 1"),
        (vec!["run", "nested", "-j", "1025"], "1..=1024"),
        (vec!["run", "nested", "--trials", "0"], "at least 1"),
        (vec!["run", "nested", "--repeat", "0"], "at least 1"),
        (
            vec!["run", "nested", "--trials", "100000001"],
            "1..=100000000",
        ),
        (
            vec!["run", "nested", "--deadline", "18446744073709551us"],
            "1ms..=1h",
        ),
        (vec!["run", "nested", "--deadline", "99999999999h"], "1h"),
        (vec!["run", "nested", "--deadline", "0s"], "1ms..=1h"),
        (
            vec!["soak", "--scenario", "nested", "--trials", "0"],
            "at least 1",
        ),
        (
            vec!["soak", "--scenario", "nested", "--duration", "500ms"],
            "1s..=30days",
        ),
        (
            vec!["soak", "--scenario", "nested", "--duration", "1500ms"],
            "whole seconds",
        ),
        (
            vec!["soak", "--scenario", "nested", "--trials", "1", "-j", "0"],
            "-j must be at least 1",
        ),
        (vec!["suite", suite, "--repeat", "0"], "at least 1"),
        (
            vec!["bisect", suite, "--victim", "x", "--repeat", "0"],
            "at least 1",
        ),
    ] {
        let mut full = args.clone();
        if args[0] != "suite" && args[0] != "bisect" {
            full.extend(["--out", d]);
        }
        let out = lab(&full, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "lab {args:?}: {err}");
        assert!(err.contains(says), "lab {args:?}: want {says:?} in {err}");
        assert!(!err.contains("panicked"), "lab {args:?}: {err}");
        assert!(!dir.exists(), "lab {args:?} created {d}");
    }
}

/// PIDs of live processes running the binary at `exe`.
fn live_processes_of(exe: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .collect()
}

fn a_limit_on_threads_and_processes_is_an_error_with_status_3_not_a_panic() {
    use std::os::unix::fs::PermissionsExt;
    // A copy of the binary that uid 65534 can run, and a directory of its
    // own to write its results into (the lab writes only into a directory
    // of the caller's).
    let dir = out_dir("nproc");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.join("lab");
    // Copied by `cp`, not by this process: a write fd on the copy open
    // here would be inherited by any process another test forks meanwhile,
    // and exec'ing the copy would fail with ETXTBSY (Text file busy) for
    // as long as that one holds it.
    let copied = Command::new("cp").arg(LAB).arg(&exe).status().unwrap();
    assert!(copied.success(), "cp {LAB}: {copied}");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    // nproc=1: no thread can start; nproc=2: at most one worker, whose
    // supervisor cannot start (or none, if uid 65534 runs other processes).
    for nproc in ["1", "2"] {
        let out_dir = dir.join(format!("out-{nproc}"));
        let out = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["prlimit", &format!("--nproc={nproc}"), "--"])
            .arg(&exe)
            .args(["soak", "--scenario", "nested", "--trials", "32", "-j", "64"])
            .args(["--progress", "none", "--no-cgroup", "--out"])
            .arg(&out_dir)
            .output()
            .expect("run setpriv and prlimit (util-linux)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "nproc={nproc}: {err}");
        assert!(!err.contains("panicked"), "nproc={nproc}: {err}");
        assert!(err.contains("lower -j"), "nproc={nproc}: {err}");
        assert!(
            err.contains("Resource temporarily unavailable (os error 11)"),
            "nproc={nproc}: {err}"
        );
        // A trial that was dealt but could not run is recorded as an error.
        if let Ok(rows) = lab::record::csv::read_rows(&out_dir.join("trials.csv")) {
            assert!(
                rows.iter().all(|r| r.verdict == "error"),
                "nproc={nproc}: a trial ran"
            );
        }
        assert!(
            live_processes_of(&exe).is_empty(),
            "nproc={nproc}: left alive"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    every_file_of_the_corpus_is_refused_with_its_location_by_check_plan_and_run needs STRACE;
    files_made_here_are_refused_bounded_and_before_any_process needs STRACE;
    a_closed_stdout_ends_the_output_quietly_with_the_usual_status;
    a_failed_stdout_is_said_and_exits_3;
    counts_jobs_deadlines_and_durations_out_of_range_are_refused_with_status_2;
    a_limit_on_threads_and_processes_is_an_error_with_status_3_not_a_panic needs testkit::ROOT;
}
