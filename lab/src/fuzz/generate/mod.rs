//! The scenarios `lab fuzz` generates: a [`Case`] (a small description of
//! a tree, its node rules, kills and teardown), drawn by a proptest
//! [`Strategy`] with swarm testing (each case first draws which
//! [`Feature`]s it may use, and leaves the others out), rendered as a
//! readable, commented scenario file ([`Case::render`]) that the lab's own
//! parser reads back and plans ([`Case::check`]): only cases that parse and
//! plan are generated ([`cases`] filters the others out, shrinking
//! included).
//!
//! What is generated: trees of at most [`MAX_NODES`] nodes (a trial stays
//! fast); node rules on every kind of selector with `linger`, `exit_code`,
//! `exit_delay`, `exec`, `threads`, `hazard`, `hold`, `spawn_from_thread`,
//! `attendant`, `capture`, `read`, `output`, `dup_stdout`, `helper`,
//! `daemon`, `ignore` and short well-behaved `command` leaves (`linger`
//! only on `*`, `interior` and `root`, so that every lingering node's
//! parent lingers too: a parent waiting for a child that waits for the
//! parent's death hangs under every strategy); kills at
//! `ready`, a gate, a delay, a window or a birth, with ladders; a teardown
//! signal or ladder, `group` or not. Left out: what fails under every
//! strategy by design, so that a failure says something about the strategy
//! (`spin`: a livelock is a `hang` everywhere; a `helper` or `daemon`
//! without a `group` teardown: an orphan everywhere, so a case with either
//! gets `group = true`, a teardown of one `KILL`, and no `capture` or
//! `output`, which a helper holding its node's stdout turns into a leak or
//! a hang everywhere; more output than a pipe holds where a node lingers,
//! since a lingering parent never reads it (casebook 5); a teardown whose last rung is not `KILL`; commands
//! that leave processes behind or exit with an unexpected status), what
//! needs privileges (`pid_reuse`), and what only shapes the files a run
//! writes (`log`), the host's own actions (`[host]`) and `[expect]`.
//!
//! This file holds the case model, its checks and the strategy of `lab
//! fuzz`; `draw.rs` draws the parts of a case and `render.rs` writes it as
//! a scenario file.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::plan::Plan;
use crate::scenario::Scenario;

mod draw;
mod render;

/// The most output (KiB) a node writes in a case where a node lingers:
/// below the 64 KiB pipe buffer, which a lingering parent never drains.
const PIPE_SAFE_KIB: u8 = 16;

/// The most nodes a generated tree has (the root included).
pub const MAX_NODES: u64 = 15;

/// A feature of the scenario format that a case may use (swarm testing: a
/// case draws a subset of them first and leaves the others out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `linger`.
    Linger,
    /// `exit_code`, `exit_delay`.
    Exit,
    /// `exec`.
    Exec,
    /// `threads`, `hazard`, `hold`, `spawn_from_thread`, `attendant`.
    Threads,
    /// `capture`, `read`, `output`.
    Capture,
    /// `dup_stdout`.
    DupStdout,
    /// `helper`, `daemon` (with a `group` teardown).
    Outside,
    /// `ignore`.
    Ignore,
    /// `command` leaves.
    Command,
    /// `[[kill]]`.
    Kills,
    /// Kills held at a gate (`gate:created`, `gate:armed`).
    Gates,
    /// Ladders: a kill's `then`, the teardown's `ladder`.
    Ladders,
    /// `teardown.group`.
    Group,
}

impl Feature {
    /// Every feature, in the order of a case's feature mask.
    pub const ALL: [Feature; 13] = [
        Feature::Linger,
        Feature::Exit,
        Feature::Exec,
        Feature::Threads,
        Feature::Capture,
        Feature::DupStdout,
        Feature::Outside,
        Feature::Ignore,
        Feature::Command,
        Feature::Kills,
        Feature::Gates,
        Feature::Ladders,
        Feature::Group,
    ];

    /// Its name in a case's header (`linger`, `dup_stdout`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Feature::Linger => "linger",
            Feature::Exit => "exit",
            Feature::Exec => "exec",
            Feature::Threads => "threads",
            Feature::Capture => "capture",
            Feature::DupStdout => "dup_stdout",
            Feature::Outside => "helper",
            Feature::Ignore => "ignore",
            Feature::Command => "command",
            Feature::Kills => "kill",
            Feature::Gates => "gate",
            Feature::Ladders => "ladder",
            Feature::Group => "group",
        }
    }
}

/// A node selector of a generated case, made valid for any tree when it is
/// rendered ([`Case::render`]): a depth or a path is taken modulo the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sel {
    /// `*`
    All,
    /// `root`
    Root,
    /// `leaves`
    Leaves,
    /// `interior`
    Interior,
    /// `depth:N`, N modulo the depth + 1.
    Depth(u8),
    /// A path, each index modulo its level's breadth, cut to the depth.
    Path(Vec<u8>),
}

/// The node keys a rule sets (`None`: not set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// `linger`.
    pub linger: Option<bool>,
    /// `exit_code`.
    pub exit_code: Option<u8>,
    /// `exit_delay`, in ms.
    pub exit_delay_ms: Option<u8>,
    /// `exec`.
    pub exec: Option<bool>,
    /// `threads`.
    pub threads: Option<u8>,
    /// `hazard`: 0 none, 1 mutex, 2 attendant.
    pub hazard: Option<u8>,
    /// `hold`, in thousandths.
    pub hold_permille: Option<u16>,
    /// `spawn_from_thread`.
    pub spawn_from_thread: Option<bool>,
    /// `attendant`: 0 none, 1 init, 2 start, 3 use.
    pub attendant: Option<u8>,
    /// `capture`.
    pub capture: Option<bool>,
    /// `read = "after-exit"` when true, `"to-eof"` when false.
    pub read_after_exit: Option<bool>,
    /// `output`, in KiB.
    pub output_kib: Option<u8>,
    /// `dup_stdout`.
    pub dup_stdout: Option<u8>,
    /// `helper`.
    pub helper: Option<bool>,
    /// `daemon`.
    pub daemon: Option<bool>,
    /// `ignore`: indexes into [`IGNORABLE`].
    pub ignore: Option<Vec<u8>>,
    /// `command` (leaves only): an index into [`COMMANDS`].
    pub command: Option<u8>,
}

/// A `[nodes.SELECTOR]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its selector.
    pub selector: Sel,
    /// What it sets.
    pub knobs: Knobs,
}

impl Rule {
    /// Whether its file says `linger = true`: only on `*`, `root` and
    /// `interior`, so that lingering nodes stay closed upwards (a lingering
    /// node's parent lingers too): a parent that waits for a child that
    /// waits for the parent's death is a hang under every strategy.
    fn lingers(&self) -> bool {
        self.knobs.linger == Some(true)
            && matches!(self.selector, Sel::All | Sel::Root | Sel::Interior)
    }
}

/// When a kill fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// `ready`.
    Ready,
    /// `gate:created`.
    GateCreated,
    /// `gate:armed`.
    GateArmed,
    /// A delay after the tree is ready, in ms.
    After(u8),
    /// A seeded window after the tree is ready, `low..low+width` ms.
    Window(u8, u8),
    /// A delay after the target's birth, in µs.
    Spawn(u16),
}

/// A `[[kill]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillCase {
    /// `target`.
    pub target: Sel,
    /// `pick = "one"` when true.
    pub one: bool,
    /// `signal`: an index into [`KILL_SIGNALS`].
    pub signal: u8,
    /// `at`.
    pub at: When,
    /// `then = ["KILL"]` (with ladders on).
    pub ladder: bool,
}

/// The `[teardown]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeardownCase {
    /// `ladder = ["INT", "TERM", "KILL"]` (with ladders on), else `KILL`.
    pub ladder: bool,
    /// `group = true` (with group on, or a helper or daemon in the case).
    pub group: bool,
}

/// One generated scenario, before rendering. The feature mask decides which
/// of its parts are written: a part whose feature is off is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// Which [`Feature::ALL`] are on.
    pub features: [bool; 13],
    /// Breadth per level (cut to [`MAX_NODES`] when rendered).
    pub tree: Vec<u8>,
    /// `[nodes.SELECTOR]` tables.
    pub rules: Vec<Rule>,
    /// `[[kill]]` entries.
    pub kills: Vec<KillCase>,
    /// `[teardown]`.
    pub teardown: TeardownCase,
}

/// The signals a kill sends.
pub const KILL_SIGNALS: [&str; 4] = ["KILL", "TERM", "INT", "HUP"];

/// The signals a node may ignore.
pub const IGNORABLE: [&str; 3] = ["TERM", "INT", "HUP"];

/// The commands a leaf may run: short programs that end by themselves with
/// the status they are expected to, and leave nothing behind.
pub const COMMANDS: [(&[&str], u8); 3] = [
    (&["true"], 0),
    (&["sh", "-c", "exit 3"], 3),
    (&["sh", "-c", "echo fuzz"], 0),
];

/// A case as the lab runs it: its scenario text, parsed and planned.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The scenario file's text.
    pub text: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Its plan under the run's seed.
    pub plan: Plan,
}

impl Case {
    fn on(&self, f: Feature) -> bool {
        let i = Feature::ALL.iter().position(|x| *x == f).unwrap_or(0);
        self.features[i]
    }

    /// The features that are on, by name.
    pub fn feature_names(&self) -> Vec<&'static str> {
        Feature::ALL
            .iter()
            .filter(|f| self.on(**f))
            .map(|f| f.name())
            .collect()
    }

    /// The breadths of the rendered tree: the drawn ones, cut to the first
    /// levels that keep it within [`MAX_NODES`].
    pub fn shape(&self) -> Vec<u32> {
        let mut shape = Vec::new();
        let mut width = 1u64;
        let mut nodes = 1u64;
        for b in &self.tree {
            let b = u64::from((*b).max(1));
            if nodes + width * b > MAX_NODES {
                break;
            }
            width *= b;
            nodes += width;
            shape.push(b as u32);
        }
        shape
    }

    /// The number of nodes of the rendered tree, the root included.
    pub fn nodes(&self) -> u64 {
        crate::scenario::node_count(&self.shape())
    }

    /// Whether a node may linger (a `linger` rule is written).
    fn lingers(&self) -> bool {
        self.on(Feature::Linger) && self.rules.iter().any(Rule::lingers)
    }

    /// Whether a helper or a daemon is written: it gets a `group` teardown.
    fn has_outside(&self) -> bool {
        self.on(Feature::Outside)
            && self
                .rules
                .iter()
                .any(|r| r.knobs.helper == Some(true) || r.knobs.daemon == Some(true))
    }

    /// Render, parse and plan this case under `seed`.
    ///
    /// # Errors
    /// Why the lab would not run it: the parser's error, or a gate that no
    /// phase report can reach.
    pub fn check(&self, name: &str, header: &str, seed: u64) -> Result<Checked, String> {
        let text = self.render(name, header);
        let scenario = Scenario::parse("fuzz.toml", &text).map_err(|e| e.to_string())?;
        let plan = Plan::new(&scenario, seed);
        if let Some(why) = plan.unreachable_gate() {
            return Err(why);
        }
        Ok(Checked {
            text,
            scenario,
            plan,
        })
    }
}

/// The strategy of `lab fuzz`: cases that parse and plan under `seed`
/// (shrinking stays among them).
pub fn cases(seed: u64) -> BoxedStrategy<Case> {
    draw::raw()
        .prop_filter("the lab parses and plans it", move |c| {
            c.check("fuzz", "", seed).is_ok()
        })
        .boxed()
}

/// The value tree of case `index` of a fuzz run with `seed`: drawn by a
/// ChaCha generator seeded from both, so a seed explores the same cases on
/// every run and machine, and a case can be drawn again (to shrink it)
/// without the others.
///
/// # Errors
/// Why no case could be drawn (proptest's reason: too many rejected).
pub fn case_tree(seed: u64, index: u64) -> Result<Box<dyn ValueTree<Value = Case>>, String> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&index.to_le_bytes());
    bytes[16..24].copy_from_slice(b"labfuzz1");
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    cases(seed)
        .new_tree(&mut runner)
        .map_err(|e| format!("case {index} could not be drawn: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_cases_every_time() {
        for i in 0..20 {
            let a = case_tree(7, i).unwrap().current();
            let b = case_tree(7, i).unwrap().current();
            assert_eq!(a, b);
            assert_eq!(a.render("fuzz", ""), b.render("fuzz", ""));
        }
        let differ = (0..20)
            .any(|i| case_tree(7, i).unwrap().current() != case_tree(8, i).unwrap().current());
        assert!(differ, "seeds 7 and 8 draw the same cases");
    }

    #[test]
    fn cases_vary_in_shape_and_features() {
        let cases: Vec<Case> = (0..60)
            .map(|i| case_tree(1, i).unwrap().current())
            .collect();
        let sizes: std::collections::BTreeSet<u64> = cases.iter().map(Case::nodes).collect();
        assert!(sizes.len() >= 4, "{sizes:?}");
        assert!(sizes.iter().all(|n| (1..=MAX_NODES).contains(n)));
        for f in Feature::ALL {
            assert!(
                cases.iter().any(|c| c.on(f)) && cases.iter().any(|c| !c.on(f)),
                "{f:?} is never on or never off"
            );
        }
        let text: String = cases.iter().map(|c| c.render("fuzz", "")).collect();
        for key in ["gate:", "command", "helper", "ladder", "linger", "hazard"] {
            assert!(text.contains(key), "no case writes {key}");
        }
    }

    #[test]
    fn shrinking_stays_valid_and_never_grows_the_tree() {
        for i in 0..10 {
            let mut tree = case_tree(3, i).unwrap();
            let start = tree.current().nodes();
            let mut steps = 0;
            // Accept every simplification: the smallest case it reaches.
            while tree.simplify() && steps < 500 {
                steps += 1;
                let c = tree.current();
                assert!(c.check("fuzz", "", 3).is_ok());
            }
            assert!(tree.current().nodes() <= start);
            assert_eq!(
                tree.current().nodes(),
                1,
                "case {i} did not shrink to a root"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_case_parses_and_plans(seed in any::<u64>(), index in 0u64..1000) {
            let c = case_tree(seed, index).unwrap().current();
            let checked = c.check("fuzz", "# a header\n", seed);
            prop_assert!(checked.is_ok(), "{:?}\n{}", checked.err(), c.render("fuzz", ""));
            let checked = checked.unwrap();
            prop_assert_eq!(checked.plan.nodes.len() as u64, c.nodes());
            prop_assert!(c.nodes() <= MAX_NODES);
        }
    }
}
