//! The files a user hands the lab: only regular files are read, and never
//! more than the format's limit. A FIFO, a device, a directory, a loop of
//! links or bytes that are not UTF-8 are refused at once with exit status 2
//! and a message naming the file, whichever command reads them (`check`,
//! `plan`, `run`, `soak`, `suite`, `fuzz --regressions`, `report`, `plot`,
//! `merge`, `soak --resume`); and `lab exec --grace` has a range.

use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::*;

/// How long a refusal may take before the test gives up on it: a failure
/// guard only (a refusal takes milliseconds), never a synchronisation.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Run the lab with `args`; a watchdog SIGKILLs it (through its pidfd) if it
/// has not ended after [`WATCHDOG`], and the test then fails: the lab
/// blocked on what it read. Then assert that nothing of it is left alive.
fn lab_at_once(args: &[&str]) -> Output {
    let marker = Marker::new();
    let child = marker
        .command(LAB)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lab");
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(&child),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let (ended, wait) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || match wait.recv_timeout(WATCHDOG) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
            true
        }
        _ => false,
    });
    let out = child.wait_with_output().expect("wait for lab");
    let _ = ended.send(());
    let killed = watchdog.join().unwrap();
    assert!(
        !killed,
        "`lab {}` had not ended after {WATCHDOG:?}: it blocked on its input",
        args.join(" ")
    );
    marker.assert_gone(&format!("`lab {}`", args.join(" ")));
    out
}

/// Assert that `out` is a refusal (exit 2, nothing on stdout, no panic)
/// whose stderr says `says`.
fn assert_refused(what: &str, out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(says), "{what}: expected {says:?} in: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(out.stdout.is_empty(), "{what} printed on stdout");
}

/// A FIFO at `path`.
fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn a_fifo_is_refused_at_once_by_check_plan_run_soak_and_suite() {
    let dir = out_dir("fifo");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("f.toml");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let says = format!("{f}: is a FIFO (named pipe), not a regular file");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    for args in [
        vec!["check", f],
        vec!["plan", f, "--seed", "1"],
        vec!["run", f, "--trials", "1", "--out", o],
        vec!["soak", "--scenario", f, "--trials", "1", "--out", o],
        vec!["suite", f],
        vec!["bisect", f, "--victim", "x"],
    ] {
        let what = format!("lab {}", args.join(" "));
        assert_refused(&what, &lab_at_once(&args), &says);
        assert!(!out.exists(), "{what} created {o}");
    }
    // A suite whose member is the FIFO: refused at the member's line.
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        "version = 1\nname = \"s\"\n[[member]]\nscenario = \"f.toml\"\n",
    )
    .unwrap();
    let s = suite.to_str().unwrap();
    let refused = lab_at_once(&["suite", s]);
    assert_refused(&format!("lab suite {s}"), &refused, &says);
    assert_refused(
        &format!("lab suite {s}"),
        &refused,
        &format!("{s}:4:12: the scenario \"f.toml\" does not load"),
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn fuzz_refuses_a_fifo_and_dev_zero_among_its_regressions_at_once() {
    let dir = out_dir("fuzz-special");
    let regressions = dir.join("r");
    std::fs::create_dir_all(&regressions).unwrap();
    let out = dir.join("out");
    let fuzz = |what: &str, says: &str| {
        let args = [
            "fuzz",
            "--cases",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--regressions",
            regressions.to_str().unwrap(),
        ];
        assert_refused(what, &lab_at_once(&args), says);
        assert!(!out.exists(), "{what}: fuzz made {}", out.display());
    };
    let fifo = regressions.join("a.toml");
    mkfifo(&fifo);
    fuzz(
        "a FIFO regression",
        &format!("{}: is a FIFO (named pipe)", fifo.display()),
    );
    std::fs::remove_file(&fifo).unwrap();
    // /dev/zero never ends: it is refused by its type, before a byte is read.
    let zero = regressions.join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    fuzz(
        "a regression linked to /dev/zero",
        &format!("{}: is a character device", zero.display()),
    );
    std::fs::remove_file(&zero).unwrap();
    // A regular file over the limit: refused before it is read.
    let big = regressions.join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    fuzz(
        "a regression of 2 MiB",
        &format!(
            "{}: the file is 2097152 bytes, more than the limit of 1048576 bytes (1 MiB)",
            big.display()
        ),
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Makes a file (or what stands at a file's name) at the path it is given.
type MakeFile = fn(&Path);

fn unreadable_regression_files_exit_2_with_the_message_lab_check_gives() {
    let dir = out_dir("fuzz-unreadable");
    let regressions = dir.join("r");
    let out = dir.join("out");
    let cases: [(&str, MakeFile); 4] = [
        ("binary.toml", |p| {
            std::fs::write(p, b"version = 1\nname = \"\xff\"\n").unwrap();
        }),
        ("x.toml", |p| std::fs::create_dir(p).unwrap()),
        ("loop.toml", |p| std::os::unix::fs::symlink(p, p).unwrap()),
        ("dangling.toml", |p| {
            std::os::unix::fs::symlink(p.with_file_name("nowhere"), p).unwrap();
        }),
    ];
    for (name, make) in cases {
        let _ = std::fs::remove_dir_all(&regressions);
        std::fs::create_dir_all(&regressions).unwrap();
        let file = regressions.join(name);
        make(&file);
        let f = file.to_str().unwrap();
        let check = lab_at_once(&["check", f]);
        assert_eq!(check.status.code(), Some(2), "lab check {f}");
        let said = String::from_utf8_lossy(&check.stderr);
        let said = said.lines().next().unwrap();
        assert!(said.starts_with(f), "lab check {f}: {said}");
        let args = [
            "fuzz",
            "--cases",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--regressions",
            regressions.to_str().unwrap(),
        ];
        assert_refused(&format!("fuzz with {name}"), &lab_at_once(&args), said);
        assert!(!out.exists(), "fuzz with {name} made {}", out.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn result_csvs_and_soak_json_that_are_fifos_are_refused_at_once() {
    let dir = out_dir("csv-fifo");
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let csv = results.join("trials.csv");
    mkfifo(&csv);
    let r = results.to_str().unwrap();
    let says = format!("{}: is a FIFO (named pipe)", csv.display());
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    for args in [
        vec!["report", r],
        vec!["plot", r, "--out", o],
        vec!["merge", r, "--out", o],
    ] {
        let what = format!("lab {}", args.join(" "));
        assert_refused(&what, &lab_at_once(&args), &says);
    }
    // A FIFO given as the results directory itself.
    let c = csv.to_str().unwrap();
    assert_refused(
        &format!("lab report {c}"),
        &lab_at_once(&["report", c]),
        &says,
    );
    // A soak to resume whose soak.json is a FIFO.
    let soak = dir.join("soak");
    std::fs::create_dir_all(&soak).unwrap();
    let spec = soak.join("soak.json");
    mkfifo(&spec);
    let s = soak.to_str().unwrap();
    assert_refused(
        &format!("lab soak --resume {s}"),
        &lab_at_once(&["soak", "--resume", s]),
        &format!("{}: is a FIFO (named pipe)", spec.display()),
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_grace_out_of_its_range_is_refused_naming_the_range() {
    for grace in ["2h", "0s", "500us", "99999999999h"] {
        let args = ["exec", "--grace", grace, "--", "true"];
        let out = lab_at_once(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--grace {grace}: {err}");
        assert!(
            err.contains("1ms..=1h") || err.contains("at most 1h"),
            "--grace {grace}: {err}"
        );
    }
}

tests! {
    a_fifo_is_refused_at_once_by_check_plan_run_soak_and_suite;
    fuzz_refuses_a_fifo_and_dev_zero_among_its_regressions_at_once;
    unreadable_regression_files_exit_2_with_the_message_lab_check_gives;
    result_csvs_and_soak_json_that_are_fifos_are_refused_at_once;
    a_grace_out_of_its_range_is_refused_naming_the_range;
}
