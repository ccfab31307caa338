//! The TOML layer: the raw serde model of a scenario file and its validation
//! into a [`Scenario`], with spans for every error.
//!
//! This file holds the raw model and the parse of the whole file (its
//! tree, kills, teardown, host and `[expect]`); `ctx.rs` reads one value with
//! its span, and `node_rule.rs` checks a `[nodes.SELECTOR]` table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::expect::Expect;
use crate::signal::Sig;
use crate::strategy::Strategy;

mod ctx;
mod node_rule;

use ctx::Ctx;
use node_rule::{node_rule, raw_rule_env_span};

use super::{
    node_count, At, AttendantAction, Host, Kill, Phase, Pick, Scenario, ScenarioError, Selector,
    Sp, Teardown, DEFAULT_MAX_NODES, MAX_FILE_BYTES, MAX_KILLS, MAX_NODES_CEILING, MAX_NODE_RULES,
    MAX_SIGNAL_LIST,
};

/// The longest duration a scenario may write.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// How long a rung of the teardown ladder waits when the file does not say.
const DEFAULT_RUNG_WAIT: Duration = Duration::from_millis(20);
/// The longest rung wait a file may ask for.
const MAX_RUNG_WAIT: Duration = Duration::from_secs(10);
/// The wait between the signals of a kill ladder when `grace` is not given.
const DEFAULT_GRACE: Duration = Duration::from_millis(100);

/// The only format version this lab reads.
const VERSION: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    version: Sp<i64>,
    name: Sp<String>,
    #[serde(default)]
    about: String,
    tree: Sp<RawTree>,
    #[serde(default)]
    kill: Vec<RawKill>,
    #[serde(default)]
    nodes: BTreeMap<Sp<String>, RawNode>,
    #[serde(default)]
    teardown: Option<RawTeardown>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    host: Option<RawHost>,
    #[serde(default)]
    expect: Option<Sp<RawExpect>>,
}

/// `[expect]`: strategy (a preset name or the axes) -> the verdicts its
/// trials may have.
type RawExpect = BTreeMap<Sp<String>, Sp<Vec<Sp<String>>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    attendant: Option<Sp<String>>,
    chance: Option<Sp<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTree {
    breadth: Sp<RawBreadth>,
    depth: Option<Sp<i64>>,
}

/// `tree.breadth`: one integer, or a list of them (one per level). Read by
/// hand rather than as an untagged enum, so that a wrong value says what a
/// breadth is instead of naming an internal type.
enum RawBreadth {
    One(i64),
    PerLevel(Vec<i64>),
}

/// The most levels of a tree: a `breadth` list or a `depth`.
const MAX_LEVELS: usize = 64;

impl<'de> Deserialize<'de> for RawBreadth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawBreadth;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "a breadth: an integer of at least 1, or a list of them, one per level (at most {MAX_LEVELS}), like [3, 2, 2]"
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawBreadth, E> {
                Ok(RawBreadth::One(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawBreadth, E> {
                Ok(RawBreadth::One(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawBreadth, A::Error> {
                let mut levels = Vec::new();
                while let Some(b) = seq.next_element::<i64>()? {
                    if levels.len() == MAX_LEVELS {
                        return Err(serde::de::Error::invalid_length(levels.len() + 1, &self));
                    }
                    levels.push(b);
                }
                Ok(RawBreadth::PerLevel(levels))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKill {
    target: Sp<String>,
    #[serde(default)]
    pick: Pick,
    #[serde(default)]
    signal: Option<Sp<String>>,
    at: Sp<String>,
    then: Option<Sp<Vec<Sp<String>>>>,
    grace: Option<Sp<String>>,
    per_trial: Option<Sp<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    linger: Option<bool>,
    exit_code: Option<Sp<i64>>,
    expect_exit: Option<Sp<i64>>,
    exit_delay: Option<Sp<String>>,
    exec: Option<bool>,
    startup: Option<Sp<String>>,
    command: Option<Sp<Vec<String>>>,
    env: Option<Sp<Vec<String>>>,
    cwd: Option<Sp<String>>,
    threads: Option<Sp<i64>>,
    hazard: Option<Sp<String>>,
    attendant: Option<Sp<String>>,
    hold: Option<Sp<f64>>,
    spawn_from_thread: Option<bool>,
    capture: Option<bool>,
    log: Option<bool>,
    read: Option<Sp<String>>,
    output: Option<Sp<toml::Value>>,
    dup_stdout: Option<Sp<i64>>,
    helper: Option<bool>,
    daemon: Option<bool>,
    spin: Option<bool>,
    ignore: Option<Vec<Sp<String>>>,
    pid_reuse: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeardown {
    signal: Option<Sp<String>>,
    ladder: Option<Sp<Vec<Sp<String>>>>,
    rung_wait: Option<Sp<String>>,
    #[serde(default)]
    group: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_nodes: Option<Sp<i64>>,
    deadline: Option<Sp<String>>,
}

pub(super) fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file, text };
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ScenarioError::plain(
            file,
            format!(
                "the text is {} bytes, more than the limit of {MAX_FILE_BYTES} bytes (1 MiB) for a scenario",
                text.len()
            ),
        ));
    }
    let raw: RawScenario =
        toml::from_str(text).map_err(|e| ScenarioError::from_toml(file, text, e))?;
    if *raw.version.get_ref() != VERSION {
        return cx.err(
            raw.version.span(),
            format!("unsupported version; this lab reads version = {VERSION}"),
        );
    }
    let name = raw.name.get_ref();
    if !super::is_name(name) {
        return cx.err(
            raw.name.span(),
            format!(
                "a name is letters, digits, '-' and '_', at most {} of them (it names result files)",
                super::MAX_NAME_CHARS
            ),
        );
    }
    let shape = tree_shape(&cx, raw.tree.get_ref())?;
    let limits = raw.limits.as_ref();
    let max_nodes = match limits.and_then(|l| l.max_nodes.as_ref()) {
        None => DEFAULT_MAX_NODES,
        Some(m) if *m.get_ref() < 1 || *m.get_ref() as u64 > MAX_NODES_CEILING => {
            return cx.err(
                m.span(),
                format!("max_nodes must be 1..={MAX_NODES_CEILING}"),
            );
        }
        Some(m) => *m.get_ref() as u64,
    };
    let count = node_count(&shape);
    if count > max_nodes {
        return cx.err(
            raw.tree.span(),
            format!(
                "this tree has {count} nodes, more than limits.max_nodes = {max_nodes}; lower breadth or depth, \
                 or raise limits.max_nodes (at most {MAX_NODES_CEILING})"
            ),
        );
    }
    let deadline = match limits.and_then(|l| l.deadline.as_ref()) {
        None => None,
        Some(d) => {
            let v = cx.duration(d.get_ref(), d.span())?;
            if v.is_zero() {
                return cx.err(d.span(), "a deadline must be longer than zero");
            }
            Some(v)
        }
    };
    if let Some(k) = raw.kill.get(MAX_KILLS) {
        return cx.err(
            k.target.span(),
            format!(
                "more than {MAX_KILLS} kills; a scenario has at most {MAX_KILLS} [[kill]] entries"
            ),
        );
    }
    if let Some((sel, _)) = raw.nodes.iter().nth(MAX_NODE_RULES) {
        return cx.err(
            sel.span(),
            format!("more than {MAX_NODE_RULES} [nodes.SELECTOR] tables; a scenario has at most {MAX_NODE_RULES}"),
        );
    }
    let kills = raw
        .kill
        .iter()
        .map(|k| kill(&cx, k, &shape))
        .collect::<Result<Vec<_>, _>>()?;
    let mut nodes = Vec::new();
    for (sel, rule) in &raw.nodes {
        let selector = cx.selector(sel, &shape)?;
        if let Some(span) = raw_rule_env_span(rule) {
            if rule.command.is_none() || selector != Selector::Root {
                return cx.err(
                    span,
                    "env and cwd belong to a command at the root (the program `lab exec` runs): put them in [nodes.root] beside its `command`",
                );
            }
        }
        let rule = node_rule(&cx, rule)?;
        if rule.command.is_some() && target_has_interior(&selector, &shape) {
            return cx.err(
                sel.span(),
                format!("`{selector}` matches nodes with children, but a command node runs an external program and cannot spawn them; put `command` on leaves"),
            );
        }
        nodes.push((selector, rule));
    }
    nodes.sort_by_key(|(s, _)| s.specificity());
    let teardown = teardown(&cx, raw.teardown.as_ref())?;
    let host = host(&cx, raw.host.as_ref())?;
    let expect = raw.expect.as_ref().map(|e| expect(&cx, e)).transpose()?;
    Ok(Scenario {
        name: name.clone(),
        about: raw.about.trim().to_string(),
        source_hash: text_hash(text),
        shape,
        kills,
        nodes,
        teardown,
        max_nodes,
        deadline,
        host,
        expect,
    })
}

/// The `[expect]` table: every key a strategy (`Strategy::parse`), every
/// value a non-empty list of verdict names, no strategy twice (by name or
/// by axes).
fn expect(cx: &Ctx<'_>, raw: &Sp<RawExpect>) -> Result<Expect, ScenarioError> {
    if raw.get_ref().is_empty() {
        return cx.err(
            raw.span(),
            "an [expect] table names at least one strategy: canonical = [\"pass\"], legacy = [\"orphan\"]",
        );
    }
    let mut out = Expect::default();
    // In file order, so that a strategy listed twice is found at its second key.
    let mut entries: Vec<_> = raw.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    for (key, list) in entries {
        let strategy = Strategy::parse(key.get_ref())
            .or_else(|e| cx.err(key.span(), format!("[expect]: {e}")))?;
        if list.get_ref().is_empty() {
            return cx.err(
                list.span(),
                format!(
                    "[expect]: list the verdicts `{}` may give, at least one ({})",
                    key.get_ref(),
                    crate::expect::verdict_names()
                ),
            );
        }
        let mut verdicts = Vec::new();
        for v in list.get_ref() {
            verdicts.push(
                crate::expect::verdict_named(v.get_ref())
                    .or_else(|e| cx.err(v.span(), format!("[expect]: {e}")))?,
            );
        }
        if let Err(first) = out.add(&strategy, &verdicts) {
            return cx.err(
                key.span(),
                format!(
                    "[expect]: `{}` is the same strategy as `{first}`, already expected",
                    key.get_ref()
                ),
            );
        }
    }
    Ok(out)
}

fn host(cx: &Ctx<'_>, h: Option<&RawHost>) -> Result<Host, ScenarioError> {
    let Some(h) = h else {
        return Ok(Host::default());
    };
    let attendant = match &h.attendant {
        Some(a) => cx.attendant(a)?,
        None => AttendantAction::None,
    };
    let chance_permille = match &h.chance {
        Some(c) if attendant == AttendantAction::None => {
            return cx.err(
                c.span(),
                "chance says how often the host does what `attendant` says; set host.attendant",
            )
        }
        Some(c) if !(0.0..=1.0).contains(c.get_ref()) => {
            return cx.err(
                c.span(),
                "chance is the probability that the host does it in a trial, 0.0..=1.0",
            )
        }
        Some(c) => (c.get_ref() * 1000.0).round() as u32,
        None => 1000,
    };
    Ok(Host {
        attendant,
        chance_permille,
    })
}

fn tree_shape(cx: &Ctx<'_>, tree: &RawTree) -> Result<Vec<u32>, ScenarioError> {
    let span = tree.breadth.span();
    let check = |b: i64| -> Result<u32, ScenarioError> {
        if b < 1 {
            return cx.err(
                span.clone(),
                "breadth must be at least 1 (a level of no nodes is depth - 1)",
            );
        }
        u32::try_from(b).or_else(|_| cx.err(span.clone(), "breadth too large"))
    };
    match (tree.breadth.get_ref(), &tree.depth) {
        (RawBreadth::One(b), Some(d)) => {
            let depth = *d.get_ref();
            if !(0..=64).contains(&depth) {
                return cx.err(d.span(), "depth must be 0..=64 (0 is a root alone)");
            }
            Ok(vec![check(*b)?; depth as usize])
        }
        (RawBreadth::One(_), None) => cx.err(
            span,
            "a single breadth needs a depth; or give one breadth per level: [3, 2, 2]",
        ),
        (RawBreadth::PerLevel(levels), _) if levels.len() > MAX_LEVELS => {
            cx.err(span, format!("at most {MAX_LEVELS} levels"))
        }
        (RawBreadth::PerLevel(levels), depth) => {
            if let Some(d) = depth {
                if *d.get_ref() != levels.len() as i64 {
                    return cx.err(
                        d.span(),
                        format!(
                            "depth must equal the number of breadths given ({})",
                            levels.len()
                        ),
                    );
                }
            }
            levels.iter().map(|&b| check(b)).collect()
        }
    }
}

/// The refusal of an `at` that is none of its forms (docs/scenario-format.md
/// quotes it).
pub(crate) const AT_FORMS: &str = "at is \"ready\", \"gate:created\", \"gate:armed\", a delay \"5ms\" or a seeded window \"2ms..20ms\" after the tree is ready, one after the target's creation \"spawn+2ms\", \"spawn+0ms..10ms\", or one after its fork of its first child \"child+2ms\", \"child+0ms..10ms\"";

fn kill(cx: &Ctx<'_>, k: &RawKill, shape: &[u32]) -> Result<Kill, ScenarioError> {
    let target = cx.selector(&k.target, shape)?;
    let signal = match &k.signal {
        Some(s) => cx.signal(s)?,
        None => Sig::Kill,
    };
    let at_text = k.at.get_ref().trim();
    let at = if at_text == "ready" {
        At::Ready
    } else if let Some(phase) = at_text.strip_prefix("gate:") {
        let phase = match phase {
            "created" => Phase::Created,
            "armed" => Phase::Armed,
            _ => return cx.err(k.at.span(), "a gate is gate:created or gate:armed"),
        };
        if !target_has_interior(&target, shape) {
            return cx.err(
                k.target.span(),
                format!("at = \"{at_text}\" holds a child of the target at a gate, but `{target}` matches no node with children"),
            );
        }
        At::Gate(phase)
    } else if let Some(after) = at_text.strip_prefix("child+") {
        let (lo, hi) = after.split_once("..").unwrap_or((after, after));
        let lo_d = cx.duration(lo, k.at.span())?;
        let hi_d = cx.duration(hi, k.at.span())?;
        if lo_d > hi_d {
            return cx.err(k.at.span(), "a window is low..high with low <= high");
        }
        if !target_has_interior(&target, shape) {
            return cx.err(
                k.target.span(),
                format!("at = \"{at_text}\" counts from the target's fork of its first child, but `{target}` matches no node with children"),
            );
        }
        At::ChildBirth { lo: lo_d, hi: hi_d }
    } else if let Some(after) = at_text.strip_prefix("spawn+") {
        let (lo, hi) = after.split_once("..").unwrap_or((after, after));
        let lo_d = cx.duration(lo, k.at.span())?;
        let hi_d = cx.duration(hi, k.at.span())?;
        if lo_d > hi_d {
            return cx.err(k.at.span(), "a window is low..high with low <= high");
        }
        At::Birth { lo: lo_d, hi: hi_d }
    } else if let Some((lo, hi)) = at_text.split_once("..") {
        let lo_d = cx.duration(lo, k.at.span())?;
        let hi_d = cx.duration(hi, k.at.span())?;
        if lo_d > hi_d {
            return cx.err(k.at.span(), "a window is low..high with low <= high");
        }
        At::Window { lo: lo_d, hi: hi_d }
    } else {
        match humantime::parse_duration(at_text) {
            Ok(d) if d <= MAX_DURATION => At::Window { lo: d, hi: d },
            Ok(_) => return cx.err(k.at.span(), "durations are at most 24h"),
            Err(_) => return cx.err(k.at.span(), AT_FORMS),
        }
    };
    let then = match &k.then {
        Some(l) if l.get_ref().len() > MAX_SIGNAL_LIST => {
            return cx.err(
                l.span(),
                format!("then lists at most {MAX_SIGNAL_LIST} signals"),
            )
        }
        Some(l) => l
            .get_ref()
            .iter()
            .map(|s| cx.signal(s))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let grace = match &k.grace {
        Some(g) if then.is_empty() => return cx.err(
            g.span(),
            "grace is the wait between the signals of a ladder; give `then` too: then = [\"KILL\"]",
        ),
        Some(g) => {
            let d = cx.duration(g.get_ref(), g.span())?;
            if d.is_zero() {
                return cx.err(g.span(), "grace must be longer than zero");
            }
            d
        }
        None => DEFAULT_GRACE,
    };
    let per_trial = match &k.per_trial {
        Some(p) if *p.get_ref() && at.window_us().is_none() => {
            return cx.err(
                p.span(),
                "per_trial draws a timed at's moment per trial; give at a time or a window \
                 (\"2ms..20ms\", \"spawn+0ms..10ms\", \"child+0ms..1ms\")",
            )
        }
        Some(p) => *p.get_ref(),
        None => false,
    };
    Ok(Kill {
        target,
        pick: k.pick,
        signal,
        at,
        then,
        grace,
        per_trial,
    })
}

/// Whether `sel` can match a node with children in a tree of `shape`.
fn target_has_interior(sel: &Selector, shape: &[u32]) -> bool {
    match sel {
        Selector::Leaves => false,
        Selector::Depth(d) => (*d as usize) < shape.len(),
        Selector::Path(p) => p.len() < shape.len() && sel.fits(shape),
        _ => !shape.is_empty(),
    }
}

fn teardown(cx: &Ctx<'_>, t: Option<&RawTeardown>) -> Result<Teardown, ScenarioError> {
    let Some(t) = t else {
        return Ok(Teardown {
            ladder: vec![Sig::Kill],
            rung_wait: DEFAULT_RUNG_WAIT,
            group: false,
        });
    };
    let ladder = match (&t.signal, &t.ladder) {
        (Some(_), Some(l)) => return cx.err(l.span(), "give either signal or ladder, not both"),
        (Some(s), None) => vec![cx.signal(s)?],
        (None, Some(l)) if l.get_ref().is_empty() => {
            return cx.err(
                l.span(),
                "a ladder has at least one rung: [\"INT\", \"TERM\", \"KILL\"]",
            )
        }
        (None, Some(l)) if l.get_ref().len() > MAX_SIGNAL_LIST => {
            return cx.err(
                l.span(),
                format!("a ladder has at most {MAX_SIGNAL_LIST} rungs"),
            )
        }
        (None, Some(l)) => l
            .get_ref()
            .iter()
            .map(|s| cx.signal(s))
            .collect::<Result<Vec<_>, _>>()?,
        (None, None) => vec![Sig::Kill],
    };
    let rung_wait = match &t.rung_wait {
        Some(w) => {
            let d = cx.duration(w.get_ref(), w.span())?;
            if d.is_zero() || d > MAX_RUNG_WAIT {
                return cx.err(w.span(), "rung_wait is more than zero and at most 10s");
            }
            d
        }
        None => DEFAULT_RUNG_WAIT,
    };
    Ok(Teardown {
        ladder,
        rung_wait,
        group: t.group,
    })
}

/// The hash of a scenario's text ([`Scenario::source_hash`]): the first
/// 16 hex digits of its SHA-256.
///
/// [`Scenario::source_hash`]: crate::scenario::Scenario::source_hash
pub fn text_hash(text: &str) -> String {
    hex16(&Sha256::digest(text.as_bytes()))
}

/// The first 16 hex digits of a digest.
pub(crate) fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
