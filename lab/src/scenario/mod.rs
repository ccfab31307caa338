//! Scenarios: named, versioned descriptions of a spawn tree and its faults,
//! in TOML (`scenarios/NAME.toml`). See `docs/scenario-format.md`.
//!
//! Parsing refuses unknown keys, and every error names `file:line:col` and
//! the offending text ([`ScenarioError`]).

mod error;
mod file;
pub mod overrides;
mod selector;
pub mod sweep;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::signal::Sig;

pub use error::{ScenarioError, MAX_QUOTE_CHARS};
pub(crate) use file::hex16 as hex16_of;
pub use file::text_hash;
pub use selector::Selector;

/// The lab's ceiling on nodes per tree; `limits.max_nodes` may not exceed it.
pub const MAX_NODES_CEILING: u64 = 10_000;
/// `limits.max_nodes` when the file does not set it.
pub const DEFAULT_MAX_NODES: u64 = 1_000;
/// The largest scenario file the lab reads (1 MiB); a larger one is
/// refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = crate::input::MIB;
/// The most `[[kill]]` entries a scenario may have.
pub const MAX_KILLS: usize = 1_000;
/// The most `[nodes.SELECTOR]` tables a scenario may have.
pub const MAX_NODE_RULES: usize = 1_000;
/// The most arguments of a `command` (the program included), and of the
/// variables of an `env`: room for a test runner's whole list of tests
/// (`lab suite` runs it as one command), still bounded (the file itself is
/// at most 1 MiB; the kernel's own bound on an exec's arguments and
/// environment is `ARG_MAX`, a quarter of the stack limit).
pub const MAX_COMMAND_ARGS: usize = 65_536;
/// The most signal names of an `ignore` list or a teardown `ladder`.
pub const MAX_SIGNAL_LIST: usize = 16;

/// The longest name of a scenario, a suite or a suite member (characters).
/// A name is part of the name of every result file and directory it makes,
/// with a time stamp, a seed and a PID, and the kernel bounds a file name at
/// 255 bytes (`NAME_MAX`, `include/uapi/linux/limits.h`).
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `name` can name a scenario, a suite or a suite member: 1 to
/// [`MAX_NAME_CHARS`] ASCII letters, digits, `-` and `_`, because it names
/// result files.
pub fn is_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The scenarios built into the binary, by name: `(name, TOML text)`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("nested", include_str!("../../../scenarios/nested.toml")),
    (
        "pdeathsig-race",
        include_str!("../../../scenarios/pdeathsig-race.toml"),
    ),
    (
        "pdeathsig-birth",
        include_str!("../../../scenarios/pdeathsig-birth.toml"),
    ),
    (
        "pdeathsig-startup",
        include_str!("../../../scenarios/pdeathsig-startup.toml"),
    ),
    (
        "pdeathsig-thread",
        include_str!("../../../scenarios/pdeathsig-thread.toml"),
    ),
    (
        "lifeline-leak",
        include_str!("../../../scenarios/lifeline-leak.toml"),
    ),
    (
        "stdio-dup",
        include_str!("../../../scenarios/stdio-dup.toml"),
    ),
    (
        "mt-fork-mutex",
        include_str!("../../../scenarios/mt-fork-mutex.toml"),
    ),
    (
        "mt-fork-attendant",
        include_str!("../../../scenarios/mt-fork-attendant.toml"),
    ),
    (
        "pipe-fill",
        include_str!("../../../scenarios/pipe-fill.toml"),
    ),
    (
        "setsid-escape",
        include_str!("../../../scenarios/setsid-escape.toml"),
    ),
    (
        "proc-oracle",
        include_str!("../../../scenarios/proc-oracle.toml"),
    ),
    (
        "pid-reuse",
        include_str!("../../../scenarios/pid-reuse.toml"),
    ),
    (
        "ignore-term",
        include_str!("../../../scenarios/ignore-term.toml"),
    ),
];

/// A phase a node reports on its way: the points where a gate can hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The node runs; its parent-death detection is not armed yet.
    Created,
    /// Parent-death detection is armed; children not yet spawned.
    Armed,
    /// All its children are spawned.
    Ready,
    /// It is about to exit by itself.
    Exiting,
}

impl Phase {
    /// The phase's name as written in scenarios and output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Armed => "armed",
            Phase::Ready => "ready",
            Phase::Exiting => "exiting",
        }
    }
}

/// Whether a kill hits every node its selector matches or one the seed picks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// Every matching node.
    #[default]
    All,
    /// One matching node, chosen by the seed.
    One,
}

/// When a kill fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// Once every node of the tree has reported `ready`.
    Ready,
    /// While one child of the target (chosen by the seed) is held at its gate
    /// in this phase, and the target itself is `ready`. The child is released
    /// once the target's death is confirmed.
    Gate(Phase),
    /// A delay after the tree is ready, drawn by the seed from `lo..=hi`.
    Window {
        /// Lower bound.
        lo: Duration,
        /// Upper bound (inclusive).
        hi: Duration,
    },
    /// A delay after the target's own creation (its `created` report, made
    /// right after its parent's clone or fork), drawn by the seed from
    /// `lo..=hi`: `at = "spawn+2ms"`, `"spawn+0ms..10ms"`. It races the
    /// target's start-up: its own children may not be spawned or armed.
    Birth {
        /// Lower bound.
        lo: Duration,
        /// Upper bound (inclusive).
        hi: Duration,
    },
    /// A delay after the target forked its first child (the child's
    /// `created` report), drawn by the seed from `lo..=hi`: `at =
    /// "child+2ms"`. The field's PDEATHSIG race: the parent dies a time
    /// after its fork, while the child may be between fork and `prctl`.
    ChildBirth {
        /// Lower bound.
        lo: Duration,
        /// Upper bound (inclusive).
        hi: Duration,
    },
}

impl At {
    /// The window of a timed `at` (µs, inclusive); `None` for `ready` and
    /// gates.
    pub fn window_us(&self) -> Option<(u64, u64)> {
        match *self {
            At::Window { lo, hi } | At::Birth { lo, hi } | At::ChildBirth { lo, hi } => {
                Some((lo.as_micros() as u64, hi.as_micros() as u64))
            }
            At::Ready | At::Gate(_) => None,
        }
    }
}

/// One entry of the kill schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// Which nodes.
    pub target: Selector,
    /// All of them, or one picked by the seed.
    pub pick: Pick,
    /// The signal.
    pub signal: Sig,
    /// When.
    pub at: At,
    /// A ladder: the signals sent in turn after `signal`, each `grace`
    /// after the one before, while the target is still alive (`then =
    /// ["TERM", "KILL"]`); empty for a single signal.
    pub then: Vec<Sig>,
    /// The wait between the signals of a ladder (default 100 ms).
    pub grace: Duration,
    /// A timed `at`'s moment is drawn per trial, from the seed and the
    /// trial's index (`per_trial = true`), not once per plan.
    pub per_trial: bool,
}

/// A hazard a node's extra threads create for a child that is a copy of it
/// (fork or clone3 without exec), casebook 4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hazard {
    /// No hazard.
    #[default]
    None,
    /// The threads contend a process-global `std::sync::Mutex`, holding it
    /// a fraction of the time; each child locks it once when it starts.
    Mutex,
    /// A `OnceLock` global that owns a worker thread (the attendant) is
    /// initialised before the children are spawned; each child asks the
    /// worker for an answer when it starts.
    Attendant,
}

/// What a process does with the attendant global itself (casebook 4b), as
/// opposed to [`Hazard::Attendant`], which is what a node leaves to its
/// copies. The attendant is a `OnceLock` global that owns a worker thread;
/// its worker is started on first use, in the process that uses it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttendantAction {
    /// Nothing.
    #[default]
    None,
    /// Create the global without starting its worker (a registration: the
    /// worker starts on first use).
    Init,
    /// Start the worker of the global if it exists and has none yet; nothing
    /// when the global does not exist (a warm-up of what was registered).
    Start,
    /// Ask the attendant for an answer, creating the global and starting its
    /// worker in this process first when needed (what library code does
    /// lazily). In a copy of a process whose worker was started, the request
    /// is never answered.
    Use,
}

impl AttendantAction {
    /// The value as written in scenarios (`init`, `start`, `use`).
    pub fn name(self) -> &'static str {
        match self {
            AttendantAction::None => "none",
            AttendantAction::Init => "init",
            AttendantAction::Start => "start",
            AttendantAction::Use => "use",
        }
    }

    /// Whether it may leave a worker thread running in the process that
    /// does it.
    pub fn may_start_worker(self) -> bool {
        matches!(self, AttendantAction::Start | AttendantAction::Use)
    }
}

/// What the **host** does: the process that runs a trial (the supervisor),
/// which in a suite is the test process every member shares, the way tests
/// share a `cargo test` process. What it does to its process-global state
/// persists for the later members of the same suite run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// What the host does with the attendant before it spawns the root.
    pub attendant: AttendantAction,
    /// The probability (in thousandths) that the host does it in a given
    /// trial, drawn from the plan's seed and the trial's index.
    pub chance_permille: u32,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            attendant: AttendantAction::None,
            chance_permille: 1000,
        }
    }
}

/// How a node reads the stdout of a captured child under the `proc` observe
/// axis (the legacy way). Under `pidfd` the node always reads while it waits
/// for the child's exit, and bounds the wait for EOF once the child is reaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadDiscipline {
    /// Read the pipe to EOF, then wait for the child (blocks while anything
    /// else holds a write end).
    #[default]
    ToEof,
    /// Wait for the child to exit, then read (blocks while the child is
    /// blocked writing into a full pipe).
    AfterExit,
}

/// Behaviour of the nodes a selector matches; unset fields inherit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeRule {
    /// After `ready`, block until parent death is detected, then exit.
    pub linger: Option<bool>,
    /// Exit code when the node exits by itself (0..=255).
    pub exit_code: Option<u8>,
    /// The exit status a `command` node's program is expected to end with
    /// (0..=255; default 0); another status, or a signal, is a `fail`.
    pub expect_exit: Option<u8>,
    /// Delay before exiting by itself, after its children have exited.
    pub exit_delay: Option<Duration>,
    /// Its parent execs it (the lab's node program) instead of running it as
    /// a copy of itself.
    pub exec: Option<bool>,
    /// The start-up work of an exec'd program: after its `created` report
    /// (and its `created` gate) the node works on a CPU for this much CPU
    /// time before it arms its parent-death detection, as a runtime's
    /// start-up runs before the program's own `prctl`. Implies `exec`
    /// (below the root).
    pub startup: Option<Duration>,
    /// An external program its parent execs in its place (a leaf).
    pub command: Option<Vec<String>>,
    /// Variables set in the environment of a root `command`
    /// (`NAME=VALUE`), over the lab's own.
    pub env: Option<Vec<String>>,
    /// The working directory of a root `command`.
    pub cwd: Option<String>,
    /// Extra threads it starts before spawning its children (0..=64).
    pub threads: Option<u32>,
    /// What those threads do.
    pub hazard: Option<Hazard>,
    /// What it does with the attendant global itself, before it spawns its
    /// children.
    pub attendant: Option<AttendantAction>,
    /// Fraction of the time each mutex thread holds the lock, in ‰.
    pub hold_permille: Option<u32>,
    /// It spawns each child from a thread of its own that exits once the
    /// child has armed its parent-death detection.
    pub spawn_from_thread: Option<bool>,
    /// Its parent captures its stdout through a pipe.
    pub capture: Option<bool>,
    /// Its stdout and stderr go to a file of its own in the run's `log/`
    /// directory (stdout stays the pipe when `capture` is set too).
    pub log: Option<bool>,
    /// How it reads captured children under the `proc` observe axis.
    pub read: Option<ReadDiscipline>,
    /// Bytes it writes to its stdout before exiting by itself.
    pub output_bytes: Option<u64>,
    /// An fd (3..=255) it duplicates its stdout to when it starts, without
    /// close-on-exec.
    pub dup_stdout: Option<i32>,
    /// It spawns a helper process (outside the plan) that blocks forever
    /// with whatever fds the create axis passes on.
    pub helper: Option<bool>,
    /// It starts a daemon: a child that calls `setsid` and forks a
    /// grandchild that blocks forever, then exits.
    pub daemon: Option<bool>,
    /// After `ready`, it runs on a CPU forever without another report (a
    /// livelock), instead of lingering or exiting.
    pub spin: Option<bool>,
    /// Signals it ignores (`SIG_IGN`, inherited by its children).
    pub ignore: Option<Vec<Sig>>,
    /// It runs the PID-reuse experiment (casebook 8) in a private PID
    /// namespace before going on.
    pub pid_reuse: Option<bool>,
}

/// How the supervisor ends the tree once the planned course has settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Teardown {
    /// Signals sent in turn; the last one is the end of the ladder.
    pub ladder: Vec<Sig>,
    /// How long each rung waits for the nodes to die before the next.
    pub rung_wait: Duration,
    /// Signal the whole tree, not the root: legacy strategies signal the
    /// root's process group, canonical ones use `cgroup.kill` (or every
    /// pidfd they hold without a cgroup).
    pub group: bool,
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Its name (`nested`).
    pub name: String,
    /// One paragraph: what it shows and where it was seen.
    pub about: String,
    /// Hex SHA-256 (first 16 digits) of the file's text ([`text_hash`]).
    pub source_hash: String,
    /// Breadth of each level below the root; its length is the depth.
    pub shape: Vec<u32>,
    /// The kill schedule, in file order.
    pub kills: Vec<Kill>,
    /// Node rules, most general first (`*`, then `interior`/`leaves`,
    /// `depth:N`, then `root` and paths); later rules override earlier ones.
    pub nodes: Vec<(Selector, NodeRule)>,
    /// How the supervisor ends the tree at the end of the course.
    pub teardown: Teardown,
    /// Refuse trees larger than this.
    pub max_nodes: u64,
    /// Deadline of a trial, if the file sets one.
    pub deadline: Option<Duration>,
    /// What the host (the process that runs the trial) does itself.
    pub host: Host,
    /// What each strategy is expected to give (`[expect]`), if the file
    /// says.
    pub expect: Option<crate::expect::Expect>,
}

impl Scenario {
    /// Parse and validate the TOML `text`; `file` names it in errors.
    ///
    /// # Errors
    /// A [`ScenarioError`] with `file:line:col`, the offending text, and what
    /// to do instead.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        file::parse(file, text)
    }

    /// Load a built-in scenario by name (`nested`), or a file by path (any
    /// argument that contains `/` or ends in `.toml`).
    ///
    /// # Errors
    /// An unknown name (listing the built-in ones), an unreadable file, or a
    /// parse error.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        let (file, text) = Scenario::source(name_or_path)?;
        Scenario::parse(&file, &text)
    }

    /// Load a scenario as [`Scenario::load`] does, with `overrides` applied
    /// to its text first; the overridden values are validated like the
    /// file's own.
    ///
    /// # Errors
    /// As [`Scenario::load`]; an override that cannot be applied; a value
    /// the format refuses (the error names the override).
    pub fn load_with(
        name_or_path: &str,
        overrides: &[overrides::Override],
    ) -> Result<Scenario, ScenarioError> {
        if overrides.is_empty() {
            return Scenario::load(name_or_path);
        }
        let (file, text) = Scenario::source(name_or_path)?;
        let shown: Vec<String> = overrides
            .iter()
            .map(|o| format!("{}={}", o.key, o.value))
            .collect();
        let file = format!("{file} (with {})", shown.join(", "));
        let text = overrides::apply(&text, overrides)
            .map_err(|e| ScenarioError::plain(&file, e.chain()))?;
        Scenario::parse(&file, &text)
    }

    /// The file name and text of a built-in scenario or a file.
    fn source(name_or_path: &str) -> Result<(String, String), ScenarioError> {
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
            let text = read_source(name_or_path, name_or_path)?;
            return Ok((name_or_path.to_string(), text));
        }
        match BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            Some((name, text)) => Ok((format!("scenarios/{name}.toml"), text.to_string())),
            None => Err(ScenarioError::plain(
                name_or_path,
                format!(
                    "no built-in scenario of this name (built in: {}); give a path to a .toml file for others",
                    BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// The number of nodes of the tree, the root included (saturating).
    pub fn node_count(&self) -> u64 {
        node_count(&self.shape)
    }
}

/// The text of the scenario or suite file at `path` (named `file` in
/// errors, as the user gave it): a regular file of at most
/// [`MAX_FILE_BYTES`] bytes of UTF-8, read by [`crate::input`] (a
/// FIFO, a device, a socket or a directory is refused at once, and no more
/// than the limit is ever read).
///
/// # Errors
/// An unreadable file; anything but a regular file (the message names what
/// it is); a file over the limit (the message names it); bytes that are
/// not UTF-8, located at the first bad byte.
pub(crate) fn read_source(
    path: impl AsRef<std::path::Path>,
    file: &str,
) -> Result<String, ScenarioError> {
    use crate::input::InputError;
    crate::input::read_text(path, MAX_FILE_BYTES).map_err(|e| match e {
        InputError::NotRegular(kind) => ScenarioError::plain(
            file,
            format!("is {kind}, not a regular file; give a scenario file (.toml)"),
        ),
        InputError::TooBig { .. } => ScenarioError::plain(
            file,
            format!(
                "{e} (1 MiB) for a scenario or suite file; it is a short description, not data"
            ),
        ),
        InputError::NotUtf8 { line, col, .. } => ScenarioError {
            file: file.to_string(),
            line,
            col,
            text: String::new(),
            message: format!("{e}; a scenario is TOML, which is UTF-8"),
        },
        InputError::Open(_) | InputError::Read(_) => ScenarioError::plain(file, e.to_string()),
    })
}

/// Nodes of a tree with these breadths per level, the root included
/// (saturating, so absurd shapes are refused rather than overflowing).
pub(crate) fn node_count(shape: &[u32]) -> u64 {
    let mut total: u64 = 1;
    let mut level: u64 = 1;
    for &b in shape {
        level = level.saturating_mul(b as u64);
        total = total.saturating_add(level);
    }
    total
}

/// A value with the byte span it came from.
pub(crate) type Sp<T> = Spanned<T>;
#[cfg(test)]
mod tests;
