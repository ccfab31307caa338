//! Integration tests: the `lab` binary on real processes.
//!
//! One test binary with its own `main` ([`testkit`]): every module lists its
//! tests with [`tests!`], each named `module::function` and declaring the
//! capabilities of the machine it needs (root, a cgroup, a PID namespace,
//! gdb, ...). A test whose capability is missing is skipped (reported as
//! ignored, with the reason on stderr), and fails instead under
//! `LAB_TESTS_REQUIRE` (see `testkit`).
//!
//! Tests run in parallel (and one per process under cargo-nextest). Each lab
//! a test starts carries a [`Marker`] of its own in its environment, which
//! every process of its tree inherits: after the lab, the test checks that
//! no process with its marker is left, never that no lab runs anywhere.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use testkit::Capability;

/// `pub(crate) fn tests()` for the module it is called in: each function
/// named, as a [`testkit::Test`] named `module::function` (the function's
/// name alone at the top level), needing the capabilities listed after
/// `needs`.
macro_rules! tests {
    ($($name:ident $(needs $($cap:expr),+)?;)*) => {
        pub(crate) fn tests() -> Vec<testkit::Test> {
            vec![$(
                testkit::test(crate::test_name(module_path!(), stringify!($name)), $name)
                    $($(.needs($cap))+)?
            ),*]
        }
    };
}

/// The name of test `function` of the module at `module_path` (its
/// `module_path!()`, which starts with this crate's name): `module::function`.
fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    }
}

fn main() -> ExitCode {
    let mut all = tests();
    for module in [
        analysis::tests,
        birth::tests,
        casebook::tests,
        commands::tests,
        corpus::tests,
        evidence::tests,
        exec::tests,
        expect::tests,
        forensics::tests,
        fuzz::tests,
        guards::tests,
        hygiene::tests,
        input::tests,
        interrupt::tests,
        json::tests,
        junit::tests,
        layout::tests,
        lineage::tests,
        pidns::tests,
        runners::tests,
        shell::tests,
        soak::tests,
        suite::tests,
        survivors::tests,
        trust::tests,
        wrap::tests,
    ] {
        all.extend(module());
    }
    testkit::main(all)
}

/// A lab cgroup of its own: the lab can make one under this process's
/// cgroup (cgroup v2 mounted and writable here: as root, or in a
/// delegated subtree).
const CGROUP: Capability = Capability::new("cgroup", || {
    let own = lab::cgroup::own_cgroup().ok_or("no cgroup v2 hierarchy is mounted")?;
    match lab::cgroup::create_lab_cgroup_in(&own) {
        Ok(dir) => {
            lab::cgroup::remove_lab_cgroup(&dir);
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot make a lab cgroup under {}: {e}",
            own.display()
        )),
    }
});

/// A PID namespace for the lab: made with `unshare(1)` as root, or inside
/// a user namespace of its own otherwise (as the lab makes its trials').
const PIDNS: Capability = Capability::new("pidns", || {
    let user: &[&str] = if rustix::process::geteuid().is_root() {
        &[]
    } else {
        &["--user", "--map-root-user"]
    };
    match Command::new("unshare")
        .args(user)
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`unshare {}--pid --fork --mount-proc true` ended with {}: {}",
            user.iter().map(|a| format!("{a} ")).collect::<String>(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("unshare(1) could not be run: {e}")),
    }
});

/// `strace` installed and able to trace here (it needs ptrace).
const STRACE: Capability = Capability::new("strace", || {
    testkit::program("strace")?;
    match Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "strace cannot trace here ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("strace could not be run: {e}")),
    }
});

/// The kernel's process events connector (`lifeline::ProcEvents`): it
/// needs `CAP_NET_ADMIN` in the initial user namespace, and listens only in
/// the initial user, PID and network namespaces.
const PROC_CONNECTOR: Capability = Capability::new("proc-connector", || {
    lifeline::ProcEvents::open()
        .map(drop)
        .map_err(|e| format!("the proc connector cannot be opened here: {e}"))
});

/// The variable whose value marks every process of one lab a test started.
const MARKER_VAR: &str = "LAB_TEST_MARKER";

/// The mark of one lab (or one command) a test starts: `LAB_TEST_MARKER` set
/// to a value no other lab of any test has (this process's PID and a
/// count), inherited by every process of the lab's tree (supervisors,
/// nodes, the programs they run, in a PID namespace or not), and read back
/// from `/proc/PID/environ`. What a test checks is then its own processes
/// only, whatever else runs at the same time.
///
/// A process whose environment this process may not read (another user's,
/// or one made undumpable, as a non-root test) is not seen; a zombie has an
/// empty environment and is not counted (it is dead, waiting to be reaped).
struct Marker(String);

impl Marker {
    /// A fresh marker.
    fn new() -> Marker {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Marker(format!(
            "{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// A command running `program` with this marker in its environment.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(MARKER_VAR, &self.0);
        cmd
    }

    /// The live processes carrying this marker, each with its command line.
    fn processes(&self) -> Vec<(i32, String)> {
        let entry = format!("\0{MARKER_VAR}={}\0", self.0);
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                    let mut env = [b"\0".as_slice(), &env].concat();
                    if env.last() != Some(&0) {
                        env.push(0);
                    }
                    env.windows(entry.len()).any(|w| w == entry.as_bytes())
                })
            })
            .map(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                (pid, String::from_utf8_lossy(&cmd).replace('\0', " "))
            })
            .collect()
    }

    /// Assert that no process with this marker is alive (the lab it marks
    /// has exited: nothing of its tree may outlive it).
    fn assert_gone(&self, what: &str) {
        let left = self.processes();
        assert!(left.is_empty(), "left alive after {what}: {left:?}");
    }

    /// Wait (through a pidfd each, at most 10 s each) until every process
    /// with this marker has exited, looking again until a look finds none:
    /// a process the tree was starting as the look was taken may show only
    /// afterwards (one in a new user namespace cannot be read until its id
    /// maps are written).
    fn wait_gone(&self) {
        // Bounded: a tree that starts new processes for ever fails here.
        for _ in 0..100 {
            let left = self.processes();
            if left.is_empty() {
                return;
            }
            Self::wait_each(left);
        }
        self.assert_gone("the wait");
    }

    /// Wait (through a pidfd each, at most 10 s each) until each of `left`
    /// has exited; panic naming one that lives on.
    fn wait_each(left: Vec<(i32, String)>) {
        for (p, cmd) in left {
            let Ok(fd) = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(p).unwrap(),
                rustix::process::PidfdFlags::empty(),
            ) else {
                continue;
            };
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let ten_s = rustix::time::Timespec {
                tv_sec: 10,
                tv_nsec: 0,
            };
            assert_eq!(
                rustix::event::poll(&mut fds, Some(&ten_s)).unwrap(),
                1,
                "pid {p} ({cmd}) lives on"
            );
        }
    }
}

const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// `dir/name` below the lab crate's directory, as a string argument.
fn crate_path(dir: &str, name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name)
        .display()
        .to_string()
}

/// A test scenario of `lab/tests/scenarios/`.
fn scenario(name: &str) -> String {
    crate_path("tests/scenarios", name)
}

/// A fresh results directory of its own for one run (tests run in parallel).
fn out_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lab-test-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A `lab run stdio-dup --strategy legacy --keep-hung` holding its first
/// hung tree: the lab, its stderr (read up to the prompt), what it said, the
/// pids it printed, the pid of its `attach: gdb -p PID` line, and its
/// marker.
struct KeptHang {
    lab: std::process::Child,
    err: std::io::BufReader<std::process::ChildStderr>,
    said: String,
    pids: Vec<i32>,
    attach: Option<i32>,
    marker: Marker,
}

/// Start `lab run stdio-dup --strategy legacy --trials TRIALS --keep-hung
/// --out DIR` and read its stderr up to the prompt (the event that says the
/// tree is kept). The caller waits for the lab (it sends Enter first).
#[allow(clippy::zombie_processes)] // the lab is returned to the caller, who waits for it
fn kept_hang(dir: &Path, trials: &str, extra: &[&str]) -> KeptHang {
    use std::io::BufRead;
    use std::process::Stdio;
    let marker = Marker::new();
    let mut lab = marker
        .command(LAB)
        .args([
            "run",
            "stdio-dup",
            "--strategy",
            "legacy",
            "--trials",
            trials,
        ])
        .args(extra)
        .args(["--keep-hung", "--out"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(lab.stderr.take().unwrap());
    let (mut said, mut pids, mut attach) = (String::new(), Vec::new(), None);
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            let status = lab.wait().unwrap();
            panic!("lab ended before the prompt ({status}): {said}");
        }
        said.push_str(&line);
        if let Some(list) = line.strip_prefix("pids: ") {
            pids = list
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
        }
        if let Some(rest) = line.strip_prefix("attach: gdb -p ") {
            attach = rest.split_whitespace().next().map(|p| p.parse().unwrap());
        }
        if line.starts_with("press Enter") {
            return KeptHang {
                lab,
                err,
                said,
                pids,
                attach,
                marker,
            };
        }
    }
}

/// Run the lab with `args` (and `envs`), then assert that nothing of it
/// (no process with its marker) is left alive.
fn lab(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let marker = Marker::new();
    let out = marker
        .command(LAB)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("run lab");
    marker.assert_gone(&format!("`lab {}`", args.join(" ")));
    out
}

/// `lab run NAME --seed 1 --trials N --strategy S... --format json --out DIR`
/// plus `extra` (`--trials` left out when `trials` is 0); the caller removes
/// `DIR` when done.
fn lab_run(name: &str, trials: u32, strategies: &[&str], extra: &[&str]) -> (Output, PathBuf) {
    lab_run_env(name, trials, strategies, extra, &[])
}

/// [`lab_run`] with the variables `envs` set for the lab.
fn lab_run_env(
    name: &str,
    trials: u32,
    strategies: &[&str],
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (Output, PathBuf) {
    let dir = out_dir(name.rsplit('/').next().unwrap());
    let n = trials.to_string();
    let mut args = vec![
        "run",
        name,
        "--seed",
        "1",
        "--format",
        "json",
        "--out",
        dir.to_str().unwrap(),
    ];
    if trials > 0 {
        args.extend(["--trials", &n]);
    }
    for s in strategies {
        args.extend(["--strategy", s]);
    }
    args.extend_from_slice(extra);
    let out = lab(&args, envs);
    (out, dir)
}

/// The JSON summary of a `lab run --format json`, after checking that its
/// exit status follows the expectations: 0 when every strategy gave only
/// the verdicts its expectation allows (`as_expected`), else 1.
fn json_judged(out: &Output) -> Value {
    let v = json(out);
    let met = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["expectation"]["status"] == "as_expected");
    assert_eq!(v["as_expected"], met, "{v}");
    assert_eq!(
        out.status.code(),
        Some(if met { 0 } else { 1 }),
        "the exit status follows the expectations: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The `trials` of the entry named `name` in a list of `{"name": ...,
/// "trials": N}` (how the lab's JSON writes counts keyed by free text:
/// signatures, reasons, panic sites), if there is one.
fn named(list: &Value, name: &str) -> Option<u64> {
    list.as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["trials"].as_u64())
}

/// The names of such a list, in order.
fn names_of(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|e| e["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn strategy<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["strategy"] == name)
        .unwrap()
}

fn nested(tag: &str, extra: &[&str], envs: &[(&str, &str)]) -> Value {
    let out_dir = out_dir(tag);
    let mut args = vec![
        "run",
        "nested",
        "--seed",
        "7",
        "--trials",
        "20",
        "--format",
        "json",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = lab(&args, envs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "legacy orphans and canonical passes, as nested expects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["as_expected"], true, "{v}");
    let canonical = strategy(&v, "canonical");
    assert_eq!(
        (canonical["trials"].as_u64(), canonical["pass"].as_u64()),
        (Some(20), Some(20)),
        "{canonical}"
    );
    let legacy = strategy(&v, "legacy");
    assert_eq!(
        (legacy["trials"].as_u64(), legacy["orphan"].as_u64()),
        (Some(20), Some(20)),
        "{legacy}"
    );
    assert!(legacy["orphans_total"].as_u64().unwrap() >= 20);
    // One CSV row per trial, plus the header.
    let csv = std::fs::read_to_string(v["csv"].as_str().unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 41);
    let _ = std::fs::remove_dir_all(out_dir);
    v
}

fn nested_canonical_passes_and_legacy_orphans_in_cgroup_mode() {
    let v = nested("cgroup", &[], &[]);
    assert_eq!(
        v["cgroup"], true,
        "ran without its cgroup: {}",
        v["cgroup_note"]
    );
    assert_eq!(v["scenario"], "nested");
    assert_eq!(v["seed"], "7", "seeds travel as strings in JSON");
}

fn nested_canonical_passes_and_legacy_orphans_with_subreaper_alone() {
    let v = nested("subreaper", &["--no-cgroup"], &[]);
    assert_eq!(v["cgroup"], false);
    let v = nested("subreaper-env", &[], &[("LAB_NO_CGROUP", "1")]);
    assert_eq!(v["cgroup"], false);
}

fn a_deadlocked_tree_is_a_hang_at_its_deadline_and_is_cleaned_up() {
    let dir = out_dir("hang");
    let deadlock = scenario("deadlock.toml");
    let out = lab(
        &[
            "run",
            &deadlock,
            "--trials",
            "3",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    for name in ["canonical", "legacy"] {
        let r = strategy(&v, name);
        assert_eq!(r["hang"].as_u64(), Some(3), "{r}");
        let t = r["median_verdict_us"].as_u64().unwrap();
        assert!(
            (300_000..1_300_000).contains(&t),
            "a hang is known at its 300 ms deadline, not at {t} us"
        );
        assert_eq!(r["replay"][0]["verdict"], "hang");
    }
    let csv = std::fs::read_to_string(v["csv"].as_str().unwrap()).unwrap();
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.contains(",hang,") && l.contains("root")),
        "{csv}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn a_tree_that_ends_by_itself_passes_on_every_strategy() {
    let dir = out_dir("exits");
    let exits = scenario("exits.toml");
    let out = lab(
        &[
            "run",
            &exits,
            "--trials",
            "5",
            "--strategy",
            "canonical",
            "--strategy",
            "legacy",
            "--strategy",
            "pdeathsig-checked",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json(&out);
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["pass"].as_u64(), Some(5), "{r}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn plans_are_identical_across_runs_and_differ_across_seeds() {
    let a = lab(&["plan", "nested", "--seed", "7"], &[]);
    let b = lab(&["plan", "nested", "--seed", "7"], &[]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
    let hashes: std::collections::BTreeSet<String> = (0..20)
        .map(|seed| {
            let out = lab(
                &[
                    "plan",
                    "nested",
                    "--seed",
                    &seed.to_string(),
                    "--format",
                    "json",
                ],
                &[],
            );
            json(&out)["plan_hash"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(hashes.len() > 1, "the seed must matter");
}

fn bad_input_is_refused_with_its_location_and_status_2() {
    let dir = out_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\nname = \"bad\"\n[tree]\nbreadth = 0\ndepth = 2\n",
    )
    .unwrap();
    let out = lab(&["check", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4:11: breadth must be at least 1") && err.contains("  | 0"),
        "{err}"
    );
    let out = lab(
        &["run", bad.to_str().unwrap(), "--out", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = lab(
        &["run", "no-such-scenario", "--out", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("built in: nested"));
    let out = lab(
        &[
            "run",
            "nested",
            "--strategy",
            "bogus",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

fn check_and_list_accept_the_shipped_scenarios() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nested.toml");
    let out = lab(
        &[
            "check",
            shipped.to_str().unwrap(),
            &scenario("deadlock.toml"),
            &scenario("exits.toml"),
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lab(&["list"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nested"));
}

#[path = "lab/casebook.rs"]
mod casebook;

#[path = "lab/forensics.rs"]
mod forensics;

#[path = "lab/guards.rs"]
mod guards;

#[path = "lab/hygiene.rs"]
mod hygiene;

#[path = "lab/soak.rs"]
mod soak;

#[path = "lab/suite.rs"]
mod suite;

#[path = "lab/analysis.rs"]
mod analysis;

#[path = "lab/corpus.rs"]
mod corpus;

#[path = "lab/pidns.rs"]
mod pidns;

#[path = "lab/survivors.rs"]
mod survivors;

#[path = "lab/evidence.rs"]
mod evidence;

#[path = "lab/expect.rs"]
mod expect;

#[path = "lab/commands.rs"]
mod commands;

#[path = "lab/birth.rs"]
mod birth;

#[path = "lab/json.rs"]
mod json;

#[path = "lab/junit.rs"]
mod junit;

#[path = "lab/shell.rs"]
mod shell;

#[path = "lab/exec.rs"]
mod exec;
#[path = "lab/fuzz.rs"]
mod fuzz;
#[path = "lab/input.rs"]
mod input;
#[path = "lab/interrupt.rs"]
mod interrupt;
#[path = "lab/layout.rs"]
mod layout;
#[path = "lab/lineage.rs"]
mod lineage;
#[path = "lab/runners.rs"]
mod runners;
#[path = "lab/trust.rs"]
mod trust;
#[path = "lab/wrap.rs"]
mod wrap;

tests! {
    nested_canonical_passes_and_legacy_orphans_in_cgroup_mode needs CGROUP;
    nested_canonical_passes_and_legacy_orphans_with_subreaper_alone;
    a_deadlocked_tree_is_a_hang_at_its_deadline_and_is_cleaned_up;
    a_tree_that_ends_by_itself_passes_on_every_strategy;
    plans_are_identical_across_runs_and_differ_across_seeds;
    bad_input_is_refused_with_its_location_and_status_2;
    check_and_list_accept_the_shipped_scenarios;
}
