//! The workspace's test harness for tests that need a capability of the
//! machine (root, a writable cgroup v2, a PID namespace, gdb, ...).
//!
//! A test binary built with `harness = false` lists its tests as [`Test`]s,
//! each with the [`Capability`]s it needs, and hands them to [`main`], which
//! runs them with [libtest-mimic] (the arguments and output of libtest, so
//! `cargo test`, `--exact NAME`, `--list` and cargo-nextest work as usual).
//!
//! - A test whose capability is missing is **skipped**: it is reported as
//!   `ignored` by `cargo test` and as `SKIP` by nextest, and before the run
//!   the harness prints on stderr which tests were skipped and why. It never
//!   passes without having checked anything.
//! - Under `LAB_TESTS_REQUIRE=NAME,NAME...` (or `all`) a test that needs a
//!   listed capability is run even where the capability is missing, and then
//!   fails, naming the capability and why it is missing. CI sets it, so that
//!   a machine that lost a capability fails instead of skipping quietly.
//! - A skipped test run anyway (`--include-ignored`, `--ignored`) fails the
//!   same way: it cannot check what it is meant to.
//!
//! [libtest-mimic]: https://docs.rs/libtest-mimic

use std::collections::HashMap;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;

use libtest_mimic::{Arguments, Failed, Trial};

/// The environment variable that turns a missing capability into a failure:
/// a comma-separated list of [`Capability::name`]s, or `all`.
pub const REQUIRE_VAR: &str = "LAB_TESTS_REQUIRE";

/// Every capability name a test of this workspace may need; a name of
/// `LAB_TESTS_REQUIRE` outside this list is refused (a typo would otherwise
/// require nothing).
pub const KNOWN: &[&str] = &[
    "root",
    "cgroup",
    "pidns",
    "proc-connector",
    "gdb",
    "strace",
    "python3",
    "pytest",
    "man",
    "nextest",
    "cargo",
];

/// Something of the machine a test needs: a name (one of [`KNOWN`]) and a
/// probe that says whether this machine has it, or why not.
#[derive(Clone, Copy)]
pub struct Capability {
    /// The name used in `LAB_TESTS_REQUIRE` and in skip messages.
    pub name: &'static str,
    probe: fn() -> Result<(), String>,
}

impl Capability {
    /// A capability named `name` (one of [`KNOWN`]) found by `probe`, which
    /// returns why it is missing. Probed at most once per test process, and
    /// cached by name: a test binary has one probe per name (the `pidns`,
    /// `cgroup`, `strace` and `proc-connector` probes are the binaries' own,
    /// since what they need to show differs).
    pub const fn new(name: &'static str, probe: fn() -> Result<(), String>) -> Self {
        Capability { name, probe }
    }

    /// Whether this machine has it, or why not (probed once per process).
    pub fn check(&self) -> Result<(), String> {
        static SEEN: Mutex<Option<HashMap<&'static str, Result<(), String>>>> = Mutex::new(None);
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        seen.get_or_insert_with(HashMap::new)
            .entry(self.name)
            .or_insert_with(|| (self.probe)())
            .clone()
    }
}

/// Effective uid 0.
pub const ROOT: Capability = Capability::new("root", || {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(format!(
            "the tests run as uid {}, not root",
            rustix::process::geteuid().as_raw()
        ))
    }
});

/// `cargo` and `rustc` runnable by this user (a test that builds a fixture
/// crate; under another user than the toolchain's owner they may be out of
/// reach).
pub const CARGO: Capability =
    Capability::new("cargo", || program("cargo").and_then(|()| program("rustc")));

/// `cargo-nextest` on `PATH` (`.ci/run` installs it where it can).
pub const NEXTEST: Capability = Capability::new("nextest", || program("cargo-nextest"));

/// `gdb` on `PATH`.
pub const GDB: Capability = Capability::new("gdb", || program("gdb"));
/// `python3` on `PATH`.
pub const PYTHON3: Capability = Capability::new("python3", || program("python3"));
/// pytest for `python3` (`python3 -m pytest --version` exits 0; `.ci/run`
/// installs it with pip).
pub const PYTEST: Capability = Capability::new("pytest", || {
    match Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(_) => Err("pytest is not installed for python3 (python3 -m pip install pytest)".into()),
        Err(e) => Err(format!("python3 is not installed ({e})")),
    }
});

/// Whether `name --version` runs (the program is on `PATH` and starts).
pub fn program(name: &str) -> Result<(), String> {
    match Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{name} is not installed ({e})")),
    }
}

/// One test: its name (as `cargo test NAME` and nextest filter it), the
/// capabilities it needs, and its body (a panic fails it).
pub struct Test {
    name: String,
    needs: Vec<Capability>,
    body: fn(),
}

/// A test named `name` running `body`, needing nothing.
pub fn test(name: impl Into<String>, body: fn()) -> Test {
    Test {
        name: name.into(),
        needs: Vec::new(),
        body,
    }
}

impl Test {
    /// The test also needs `cap`.
    pub fn needs(mut self, cap: Capability) -> Self {
        self.needs.push(cap);
        self
    }
}

/// The capability names `LAB_TESTS_REQUIRE` lists (every one of [`KNOWN`]
/// for `all`), or an error naming an unknown one.
fn required() -> Result<Vec<String>, String> {
    let Ok(list) = std::env::var(REQUIRE_VAR) else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            names.extend(KNOWN.iter().map(|n| n.to_string()));
        } else if KNOWN.contains(&name) {
            names.push(name.to_string());
        } else {
            return Err(format!(
                "{REQUIRE_VAR}: unknown capability {name:?} (known: all, {})",
                KNOWN.join(", ")
            ));
        }
    }
    Ok(names)
}

/// Why `test` cannot check what it is meant to here (the first missing
/// capability and its reason), or `None` when it can.
fn missing(test: &Test) -> Option<(&'static str, String)> {
    test.needs
        .iter()
        .find_map(|cap| cap.check().err().map(|why| (cap.name, why)))
}

/// Run `tests` as the test binary's `main`: libtest's command line, a skip
/// for each test whose capability is missing (listed on stderr), a failure
/// instead where `LAB_TESTS_REQUIRE` requires it. Returns the exit code
/// (101 when a test failed, 2 on a bad `LAB_TESTS_REQUIRE`).
pub fn main(tests: Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    let required = match required() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let listing = args.list;
    let mut skipped = Vec::new();
    let trials = tests
        .into_iter()
        .map(|t| {
            let gap = if t.needs.is_empty() {
                None
            } else {
                missing(&t)
            };
            let skip = gap
                .as_ref()
                .is_some_and(|(cap, _)| !required.iter().any(|r| r == cap));
            if let (true, Some((cap, why))) = (skip, &gap) {
                skipped.push(format!("{}: needs {cap}: {why}", t.name));
            }
            let body = t.body;
            Trial::test(t.name, move || match gap {
                Some((cap, why)) => Err(Failed::from(format!(
                    "this test needs {cap}, which this machine lacks: {why}{}",
                    if skip {
                        ""
                    } else {
                        " (LAB_TESTS_REQUIRE requires it)"
                    }
                ))),
                None => {
                    body();
                    Ok(())
                }
            })
            .with_ignored_flag(skip)
        })
        .collect();
    if !listing && !skipped.is_empty() {
        eprintln!("skipped for a missing capability ({REQUIRE_VAR} turns these into failures):");
        for s in &skipped {
            eprintln!("  {s}");
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
