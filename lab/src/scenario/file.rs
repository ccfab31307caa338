//! The TOML layer: the raw serde model of a scenario file and its validation
//! into a [`Scenario`], with spans for every error.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    node_count, At, Kill, NodeRule, Phase, Pick, Scenario, ScenarioError, Selector, Sig, Sp,
    DEFAULT_MAX_NODES, MAX_NODES_CEILING,
};

/// The longest duration a scenario may write.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTree {
    breadth: Sp<RawBreadth>,
    depth: Option<Sp<i64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBreadth {
    One(i64),
    PerLevel(Vec<i64>),
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    linger: Option<bool>,
    exit_code: Option<Sp<i64>>,
    exit_delay: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeardown {
    signal: Sp<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_nodes: Option<Sp<i64>>,
    deadline: Option<Sp<String>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ScenarioError> {
        Err(ScenarioError::at(
            self.file,
            self.text,
            span,
            message.into(),
        ))
    }

    fn signal(&self, s: &Sp<String>) -> Result<Sig, ScenarioError> {
        Sig::parse(s.get_ref()).map_or_else(
            || {
                self.err(
                    s.span(),
                    "unknown signal; use one of KILL, TERM, INT, HUP, QUIT, USR1, USR2",
                )
            },
            Ok,
        )
    }

    fn duration(&self, s: &str, span: std::ops::Range<usize>) -> Result<Duration, ScenarioError> {
        let d = humantime::parse_duration(s.trim()).or_else(|e| {
            self.err(
                span.clone(),
                format!("not a duration ({e}); write it like \"5ms\", \"200us\" or \"1s\""),
            )
        })?;
        if d > MAX_DURATION {
            return self.err(span, "durations are at most 24h");
        }
        Ok(d)
    }

    fn selector(&self, s: &Sp<String>, shape: &[u32]) -> Result<Selector, ScenarioError> {
        let Some(sel) = Selector::parse(s.get_ref()) else {
            return self.err(
                s.span(),
                "unknown node selector; use root, leaves, interior, depth:N, a path like 0.1, or *",
            );
        };
        if !sel.fits(shape) {
            return self.err(
                s.span(),
                format!("`{sel}` names no node of this tree (breadths per level: {shape:?})"),
            );
        }
        Ok(sel)
    }
}

pub(super) fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => ScenarioError::at(file, text, span, message),
            None => ScenarioError::plain(file, message),
        }
    })?;
    if *raw.version.get_ref() != VERSION {
        return cx.err(
            raw.version.span(),
            format!("unsupported version; this lab reads version = {VERSION}"),
        );
    }
    let name = raw.name.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return cx.err(
            raw.name.span(),
            "a name is letters, digits, '-' and '_' (it names result files)",
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
    let kills = raw
        .kill
        .iter()
        .map(|k| kill(&cx, k, &shape))
        .collect::<Result<Vec<_>, _>>()?;
    let mut nodes = Vec::new();
    for (sel, rule) in &raw.nodes {
        nodes.push((cx.selector(sel, &shape)?, node_rule(&cx, rule)?));
    }
    nodes.sort_by_key(|(s, _)| s.specificity());
    let teardown = match &raw.teardown {
        Some(t) => cx.signal(&t.signal)?,
        None => Sig::Kill,
    };
    let hash = Sha256::digest(text.as_bytes());
    Ok(Scenario {
        name: name.clone(),
        about: raw.about.trim().to_string(),
        source_hash: hex16(&hash),
        shape,
        kills,
        nodes,
        teardown,
        max_nodes,
        deadline,
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
        (RawBreadth::PerLevel(levels), _) if levels.len() > 64 => cx.err(span, "at most 64 levels"),
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
            Err(_) => {
                return cx.err(
                    k.at.span(),
                    "at is \"ready\", \"gate:created\", \"gate:armed\", a delay \"5ms\" or a seeded window \"2ms..20ms\"",
                )
            }
        }
    };
    Ok(Kill {
        target,
        pick: k.pick,
        signal,
        at,
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

fn node_rule(cx: &Ctx<'_>, n: &RawNode) -> Result<NodeRule, ScenarioError> {
    let exit_code = match &n.exit_code {
        Some(c) => Some(
            u8::try_from(*c.get_ref()).or_else(|_| cx.err(c.span(), "an exit code is 0..=255"))?,
        ),
        None => None,
    };
    let exit_delay = match &n.exit_delay {
        Some(d) => Some(cx.duration(d.get_ref(), d.span())?),
        None => None,
    };
    Ok(NodeRule {
        linger: n.linger,
        exit_code,
        exit_delay,
    })
}

/// The first 16 hex digits of a digest.
pub(crate) fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
