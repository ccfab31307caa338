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
//! - [`file`](mod@file): the suite format (`scenarios/suites/NAME.toml`);
//! - [`executor`]: the machinery (an ordered list of members in one fresh
//!   supervisor, on the session's supervisors);
//! - [`run`]: `lab suite`'s runs (every member alone and the suite, K
//!   times) and its table;
//! - [`bisect`]: delta debugging over the victim's predecessors.

pub mod bisect;
pub mod executor;
pub mod file;
pub mod run;

use std::fmt::Write as _;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use file::{Member, Suite};

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
pub fn shares_nothing(suite: &Suite, order: &[usize]) -> Option<String> {
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
    /// replay command gives).
    Members(Vec<String>),
}

impl Order {
    /// The member indexes of `suite` in this order.
    ///
    /// # Errors
    /// [`LabError::Input`] for a name that is no member, or a member named
    /// twice.
    pub fn resolve(&self, suite: &Suite) -> Result<Vec<usize>, LabError> {
        let n = suite.members.len();
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
                    let i = suite.index(name).ok_or_else(|| {
                        LabError::Input(format!(
                            "{}: no member `{name}` (members: {})",
                            suite.file,
                            suite.names()
                        ))
                    })?;
                    if order.contains(&i) {
                        return Err(LabError::Input(format!("--members names `{name}` twice")));
                    }
                    order.push(i);
                }
                if order.is_empty() {
                    return Err(LabError::Input("--members names no member".into()));
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

/// What every suite execution shares: where the lab binary is, how many
/// supervisors run at once, the deadline override and the cgroup switch.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The suite file as given (a path).
    pub suite: String,
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
}

impl Setup {
    /// `lab suite FILE --members A,B,... --strategy S --repeat K` with this
    /// setup's deadline and cgroup switch: the command that replays `members`
    /// in this order.
    pub fn suite_command(&self, members: &[&str], strategy: &Strategy) -> String {
        let mut cmd = format!(
            "lab suite {} --members {} --strategy {} --repeat {}",
            shell_word(&self.suite),
            members.join(","),
            shell_word(&strategy.name),
            self.repeat
        );
        self.push_common(&mut cmd);
        cmd
    }

    /// `lab bisect FILE --victim NAME --strategy S --repeat K` with this
    /// setup's order, deadline and cgroup switch.
    pub fn bisect_command(&self, victim: &str, strategy: &Strategy, opposite: bool) -> String {
        let mut cmd = format!(
            "lab bisect {} --victim {victim} --strategy {} --repeat {}{}",
            shell_word(&self.suite),
            shell_word(&strategy.name),
            self.repeat,
            self.order.flag()
        );
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
    }
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
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
        let s = suite(6);
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
