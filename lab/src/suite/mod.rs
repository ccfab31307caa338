//! Suites: several scenarios run one after another in one supervisor, the
//! way tests run as threads of one `cargo test` process and share its
//! process-global state; `lab suite` compares each member alone and in the
//! suite, and `lab bisect` finds the members that make a victim fail.
//!
//! The supervisor is the suite's **test process** (the host): a member whose
//! scenario has a `[host]` action changes the supervisor's own state (the
//! attendant global and its worker thread), and that state persists for the
//! members that run after it in the same supervisor. A member run alone gets
//! a fresh supervisor, as a runner that starts one process per test would.
//!
//! The tests may also come from a real test runner ([`runner`]: a Rust
//! test binary, pytest, any runner that lists its tests and runs a given
//! list in one process): then each run of its test process is one trial,
//! and the runner's output says what each test did. [`source`] is the one
//! abstraction both go through.
//!
//! - [`file`](mod@file): the suite format (`scenarios/suites/NAME.toml`);
//! - [`source`]: where the tests come from (a suite file or a runner);
//! - [`runner`], [`libtest`], [`pytest`]: test runners as sources;
//! - [`executor`]: the machinery (an ordered list of members in one fresh
//!   supervisor, or one run of a test process, on the session's
//!   supervisors);
//! - [`run`]: `lab suite`'s runs (every member alone and the suite, K
//!   times) and its table;
//! - [`report`]: `lab suite`'s test report (JUnit, CTRF);
//! - [`bisect`]: delta debugging over the victim's predecessors.

pub mod bisect;
pub mod capture;
pub mod executor;
pub mod file;
pub mod libtest;
pub mod pytest;
pub mod report;
pub mod run;
pub mod runner;
pub mod search;
pub mod source;
pub mod test_result;

use std::fmt::Write as _;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use file::{Member, Suite};
pub use source::{Source, SourceSpec};

use crate::error::LabError;
use crate::strategy::Strategy;

impl Member {
    /// The program its root runs, when its scenario puts a `command` at the
    /// root (what `lab exec` runs): the root is then an external program,
    /// exec'd, a fresh process that inherits none of the test process's
    /// state (the attendant global, its worker), so nothing that ran before
    /// it in the suite can change its verdict. `None` for a root that is a
    /// copy of the test process.
    pub fn root_command(&self) -> Option<String> {
        self.plan
            .nodes
            .first()?
            .command
            .as_ref()
            .map(|c| c.join(" "))
    }
}

/// Why the members in `order` (indexes into `suite`) cannot be
/// order-dependent, when every one of them runs a command at its root
/// (see [`Member::root_command`]); `None` when some member's root is a copy
/// of the test process.
pub fn shares_nothing(source: &Source, order: &[usize]) -> Option<String> {
    let Source::Suite(suite) = source else {
        return None;
    };
    if order.is_empty()
        || order
            .iter()
            .any(|&m| suite.members[m].root_command().is_none())
    {
        return None;
    }
    Some(
        "every member runs a command at its root (a fresh exec'd process that inherits nothing \
         from the test process), so no member can be order-dependent and this suite finds \
         nothing; an order dependence needs members whose root is a copy of the test process \
         (no `command` at the root), as in scenarios/suites/attendant.toml"
            .to_string(),
    )
}

/// The order in which a suite's members run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// As written in the suite file.
    Written,
    /// The reverse of the written order.
    Reversed,
    /// A permutation drawn by ChaCha8 from the seed (Fisher-Yates), the
    /// same on every run and machine.
    Shuffled(u64),
    /// Exactly these members, in this order (a subset is allowed: what a
    /// replay command gives). A runner that sorts the names it is given
    /// (libtest) runs them in its own order.
    Members(Vec<String>),
}

impl Order {
    /// The test indexes of `source` in this order. A runner that sorts the
    /// names it is given (libtest) runs them in its listing's order, which
    /// is sorted: the indexes are sorted.
    ///
    /// # Errors
    /// [`LabError::Input`] for a name that is no test, a test named twice,
    /// or a reversed or shuffled order asked of a runner that sorts.
    pub fn resolve(&self, source: &Source) -> Result<Vec<usize>, LabError> {
        let mut order = self.resolve_as_given(source)?;
        if let Some(r) = source.runner().filter(|r| r.sorts()) {
            if matches!(self, Order::Reversed | Order::Shuffled(_)) {
                return Err(LabError::Input(format!(
                    "{}: libtest runs the names it is given in its own sorted order, so \
                     --reverse and --seed cannot change it; choose the tests with --only",
                    r.kind.label()
                )));
            }
            order.sort_unstable();
        }
        Ok(order)
    }

    fn resolve_as_given(&self, source: &Source) -> Result<Vec<usize>, LabError> {
        let n = source.len();
        let flag = if source.runner().is_some() {
            "--only"
        } else {
            "--members"
        };
        Ok(match self {
            Order::Written => (0..n).collect(),
            Order::Reversed => (0..n).rev().collect(),
            Order::Shuffled(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                let mut order: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                order
            }
            Order::Members(names) => {
                let mut order = Vec::with_capacity(names.len());
                for name in names {
                    let i = source.index(name).ok_or_else(|| no_test(source, name))?;
                    if order.contains(&i) {
                        return Err(LabError::Input(format!("{flag} names `{name}` twice")));
                    }
                    order.push(i);
                }
                if order.is_empty() {
                    return Err(LabError::Input(format!("{flag} names no test")));
                }
                order
            }
        })
    }

    /// How the order was chosen, for the report: `written`, `reversed`,
    /// `seed N`, `members`.
    pub fn describe(&self) -> String {
        match self {
            Order::Written => "written".into(),
            Order::Reversed => "reversed".into(),
            Order::Shuffled(seed) => format!("seed {seed}"),
            Order::Members(_) => "members".into(),
        }
    }

    /// The command-line flag that chooses this order (empty for the written
    /// one), with a leading space.
    fn flag(&self) -> String {
        match self {
            Order::Written => String::new(),
            Order::Reversed => " --reverse".into(),
            Order::Shuffled(seed) => format!(" --seed {seed}"),
            Order::Members(names) => format!(" --members {}", names.join(",")),
        }
    }
}

/// The error of a name that is no test of `source`.
pub fn no_test(source: &Source, name: &str) -> LabError {
    match source {
        Source::Suite(s) => LabError::Input(format!(
            "{}: no member `{name}` (members: {})",
            s.file,
            s.names()
        )),
        Source::Runner(r) => LabError::Input(format!(
            "{}: no test `{name}` in its list (tests: {}); give a name as the runner lists it",
            r.kind.label(),
            source.names()
        )),
    }
}

/// What every suite execution shares: where the lab binary is, how many
/// supervisors run at once, the deadline override and the cgroup switch.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The suite file or the runner, as given.
    pub source: SourceSpec,
    /// Repetitions of every execution (`--repeat K`).
    pub repeat: u64,
    /// The order of the members.
    pub order: Order,
    /// Deadline override for every member's trial; `None`: each plan's own.
    pub deadline: Option<Duration>,
    /// Do not use a cgroup even where one is available.
    pub no_cgroup: bool,
    /// Supervisors running at once.
    pub jobs: usize,
    /// The `lab` binary (supervisors are started from it).
    pub exe: std::path::PathBuf,
    /// Where a runner's runs are recorded (`DIR/<run-id>/trials.csv`, the
    /// diagnoses and output beside it); `None`: not recorded.
    pub out: Option<std::path::PathBuf>,
}

impl Setup {
    /// `lab suite FILE --members A,B,... --strategy S --repeat K` with this
    /// setup's deadline and cgroup switch: the command that replays `members`
    /// in this order (for a runner, `lab suite --libtest BIN --only A
    /// --only B ... --repeat K`, each name quoted for a shell).
    pub fn suite_command(&self, members: &[&str], strategy: &Strategy) -> String {
        let mut cmd = match &self.source {
            SourceSpec::File(file) => format!(
                "lab suite {} --members {} --strategy {} --repeat {}",
                shell_word(file),
                members.join(","),
                shell_word(&strategy.name),
                self.repeat
            ),
            SourceSpec::Runner(kind) => {
                let (flags, _) = kind.flags();
                let mut c = format!("lab suite {flags}");
                for m in members {
                    let _ = write!(c, " --only {}", shell_word(m));
                }
                let _ = write!(c, " --repeat {}", self.repeat);
                c
            }
        };
        self.push_common(&mut cmd);
        cmd
    }

    /// `lab bisect FILE --victim NAME --strategy S --repeat K` with this
    /// setup's order, deadline and cgroup switch (for a runner, `lab bisect
    /// --libtest BIN --victim NAME --repeat K`).
    pub fn bisect_command(&self, victim: &str, strategy: &Strategy, opposite: bool) -> String {
        let mut cmd = match &self.source {
            SourceSpec::File(file) => format!(
                "lab bisect {} --victim {} --strategy {} --repeat {}{}",
                shell_word(file),
                shell_word(victim),
                shell_word(&strategy.name),
                self.repeat,
                self.order.flag()
            ),
            SourceSpec::Runner(kind) => format!(
                "lab bisect {} --victim {} --repeat {}",
                kind.flags().0,
                shell_word(victim),
                self.repeat
            ),
        };
        if opposite {
            cmd.push_str(" --opposite");
        }
        self.push_common(&mut cmd);
        cmd
    }

    fn push_common(&self, cmd: &mut String) {
        if let Some(d) = self.deadline {
            let _ = write!(cmd, " --deadline {}ms", d.as_millis());
        }
        if self.no_cgroup {
            cmd.push_str(" --no-cgroup");
        }
        if let SourceSpec::Runner(kind) = &self.source {
            cmd.push_str(&kind.flags().1);
        }
    }
}

/// `word` quoted for a POSIX shell when it needs it.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(n: usize) -> Suite {
        let text = "version = 1\nname = \"x\"\n[tree]\nbreadth = []\n";
        let scenario = crate::scenario::Scenario::parse("x.toml", text).unwrap();
        Suite {
            name: "s".into(),
            about: String::new(),
            file: "s.toml".into(),
            members: (0..n)
                .map(|i| Member {
                    name: format!("m{i}"),
                    scenario: "x.toml".into(),
                    seed: 1,
                    plan: crate::plan::Plan::new(&scenario, 1),
                })
                .collect(),
        }
    }

    #[test]
    fn orders_are_written_reversed_seeded_or_given() {
        let s = Source::Suite(suite(6));
        assert_eq!(Order::Written.resolve(&s).unwrap(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(Order::Reversed.resolve(&s).unwrap(), [5, 4, 3, 2, 1, 0]);
        let a = Order::Shuffled(3).resolve(&s).unwrap();
        assert_eq!(a, Order::Shuffled(3).resolve(&s).unwrap());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5]);
        let shuffles: std::collections::BTreeSet<Vec<usize>> = (0..10)
            .map(|seed| Order::Shuffled(seed).resolve(&s).unwrap())
            .collect();
        assert!(shuffles.len() > 1, "the seed must matter");
        let given = Order::Members(vec!["m4".into(), "m1".into()]);
        assert_eq!(given.resolve(&s).unwrap(), [4, 1]);
        let bad = Order::Members(vec!["m9".into()]).resolve(&s).unwrap_err();
        assert!(bad.to_string().contains("no member `m9`"), "{bad}");
        let twice = Order::Members(vec!["m1".into(), "m1".into()]);
        assert!(twice.resolve(&s).is_err());
    }

    #[test]
    fn commands_quote_what_the_shell_would_split() {
        assert_eq!(shell_word("a/b.toml"), "a/b.toml");
        assert_eq!(
            shell_word("create=fork,death=none"),
            "create=fork,death=none"
        );
        assert_eq!(shell_word("my suite.toml"), "'my suite.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
