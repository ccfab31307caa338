//! Overrides of a scenario's keys (`lab run --set KEY=VALUE`) and sweeps of
//! one key over a range or a list (`lab soak --sweep KEY=A..B/STEPS`,
//! `--sweep KEY=V1,V2,...`): the scenario's
//! TOML is edited at a dotted path and parsed again, so every overridden
//! value goes through the same validation as the file's own.

use std::time::Duration;

/// Short names for the keys a soak usually sweeps.
pub const ALIASES: &[(&str, &str)] = &[
    ("kill_delay", "kill.0.at"),
    ("threads", "nodes.root.threads"),
    ("hold", "nodes.root.hold"),
    ("depth", "tree.depth"),
];

/// One override: a dotted path into the scenario file and the value to put
/// there.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The key as the user wrote it (an alias or a dotted path).
    pub key: String,
    /// The value as written (`5ms`, `4`, `0.5`).
    pub value: String,
}

impl Override {
    /// Parse `KEY=VALUE`.
    ///
    /// # Errors
    /// [`OverrideError::NotKeyValue`] when there is no `=` or either side is
    /// empty.
    pub fn parse(s: &str) -> Result<Override, OverrideError> {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => Ok(Override {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(OverrideError::NotKeyValue(s.to_string())),
        }
    }

    /// The dotted path the key stands for.
    pub fn path(&self) -> &str {
        ALIASES
            .iter()
            .find(|(a, _)| *a == self.key)
            .map_or(&self.key, |(_, p)| p)
    }

    /// The value as TOML: an integer, a float or a boolean when it reads as
    /// one, else a string (durations like `5ms` are strings in the format).
    fn toml_value(&self) -> toml::Value {
        let v = self.value.as_str();
        if let Ok(i) = v.parse::<i64>() {
            toml::Value::Integer(i)
        } else if let Ok(f) = v.parse::<f64>() {
            toml::Value::Float(f)
        } else if let Ok(b) = v.parse::<bool>() {
            toml::Value::Boolean(b)
        } else {
            toml::Value::String(v.to_string())
        }
    }
}

/// Why a `--set`, `--sweep` or the file they edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// `--set` without `KEY=VALUE`.
    #[error("`{0}` is not KEY=VALUE (e.g. tree.depth=3, kill_delay=5ms)")]
    NotKeyValue(String),
    /// The scenario file is not TOML.
    #[error("the scenario is not TOML")]
    Toml(#[from] toml::de::Error),
    /// The edited file cannot be written back as TOML.
    #[error("the edited scenario cannot be written as TOML")]
    Write(#[from] toml::ser::Error),
    /// A key's path cannot be set in the file.
    #[error("cannot set {key} ({path})")]
    Set {
        /// The key as written.
        key: String,
        /// The dotted path it stands for.
        path: String,
        /// What is in the way.
        #[source]
        source: PathError,
    },
    /// A `--sweep` that is not `KEY=A..B/STEPS`: the text and what is wrong.
    #[error("`{text}`: {why}")]
    Sweep {
        /// The sweep as written.
        text: String,
        /// What is wrong, with the expected shape.
        why: String,
    },
}

impl OverrideError {
    /// The message and its source after a colon ("cannot set kill.3.at
    /// (kill.3.at): `kill` has 1 entries, no index 3").
    pub fn chain(&self) -> String {
        std::iter::successors(Some(self as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ")
    }
}

/// What is in the way of a dotted path (`kill.3.at`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PathError(String);

/// `text` (a scenario file) with every override applied, as TOML text.
///
/// # Errors
/// The TOML does not parse, or a path goes through something that is not a
/// table (or, for a numeric part, an array with that index).
pub fn apply(text: &str, overrides: &[Override]) -> Result<String, OverrideError> {
    let mut doc: toml::Table = text.parse()?;
    for o in overrides {
        set(&mut doc, o.path(), o.toml_value()).map_err(|source| OverrideError::Set {
            key: o.key.clone(),
            path: o.path().to_string(),
            source,
        })?;
    }
    Ok(toml::to_string(&doc)?)
}

fn set(doc: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), PathError> {
    let parts: Vec<&str> = path.split('.').collect();
    set_at(doc, &parts, value)
}

/// Set `parts` (a path: table keys, and an index after a list's name) below
/// `here` to `value`, making the tables on the way that do not exist yet.
fn set_at(here: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), PathError> {
    let err = |m: String| PathError(m);
    let (first, rest) = parts
        .split_first()
        .ok_or_else(|| err("an empty key".into()))?;
    if rest.is_empty() {
        here.insert(first.to_string(), value);
        return Ok(());
    }
    let next = here
        .entry(first.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match next {
        toml::Value::Table(t) => set_at(t, rest, value),
        toml::Value::Array(items) => {
            let (index, after) = rest.split_first().expect("rest is not empty");
            let i: usize = index.parse().map_err(|_| {
                err(format!(
                    "`{first}` is a list: give an index after it ({first}.0)"
                ))
            })?;
            let len = items.len();
            let item = items
                .get_mut(i)
                .ok_or_else(|| err(format!("`{first}` has {len} entries, no index {i}")))?;
            match item {
                _ if after.is_empty() => {
                    *item = value;
                    Ok(())
                }
                toml::Value::Table(t) => set_at(t, after, value),
                _ => Err(err(format!("`{first}.{i}` is not a table"))),
            }
        }
        _ => Err(err(format!("`{first}` is not a table"))),
    }
}

/// A sweep: one key over `steps` values from `a` to `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// The key, as written.
    pub key: String,
    /// The values, as they are written into the scenario.
    pub values: Vec<String>,
}

impl Sweep {
    /// Parse `KEY=A..B/STEPS`: `STEPS` values evenly spaced from `A` to `B`
    /// (both included; one step is `A` alone). `A` and `B` are integers,
    /// decimals or durations (`1ms..20ms/5`); integer steps are rounded and
    /// repeats dropped. Or `KEY=V1,V2,...`: those values as written, in
    /// that order (`kill_delay=0ms,1ms,2ms,5ms,10ms`,
    /// `kill.0.at=spawn+0ms,spawn+1ms`), at most 1000, none empty, none
    /// twice.
    ///
    /// # Errors
    /// [`OverrideError::Sweep`], naming what is wrong and the expected shape.
    pub fn parse(s: &str) -> Result<Sweep, OverrideError> {
        let shape = "KEY=A..B/STEPS (e.g. kill_delay=1ms..20ms/5, threads=1..8/8, hold=0.1..0.9/5, depth=1..4/4) or a list KEY=V1,V2,... (e.g. kill_delay=0ms,1ms,2ms)";
        let bad = |why: String| OverrideError::Sweep {
            text: s.to_string(),
            why,
        };
        let o = Override::parse(s).map_err(|_| bad(format!("not {shape}")))?;
        if o.value.contains(',') {
            let values: Vec<String> = o.value.split(',').map(|v| v.trim().to_string()).collect();
            if values.iter().any(String::is_empty) {
                return Err(bad(format!(
                    "an empty value in the list; the shape is {shape}"
                )));
            }
            if values.len() > 1000 {
                return Err(bad("a list has at most 1000 values".into()));
            }
            if let Some(v) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| values[..i].contains(v).then_some(v))
            {
                return Err(bad(format!("`{v}` is listed twice")));
            }
            return Ok(Sweep { key: o.key, values });
        }
        let (range, steps) = o
            .value
            .rsplit_once('/')
            .ok_or_else(|| bad(format!("no /STEPS; the shape is {shape}")))?;
        let steps: usize = steps
            .trim()
            .parse()
            .ok()
            .filter(|&n| (1..=1000).contains(&n))
            .ok_or_else(|| bad("STEPS must be a whole number from 1 to 1000".into()))?;
        let (a, b) = range
            .split_once("..")
            .ok_or_else(|| bad(format!("no A..B range; the shape is {shape}")))?;
        let (a, b) = (a.trim(), b.trim());
        let at = |k: usize| {
            if steps == 1 {
                0.0
            } else {
                k as f64 / (steps - 1) as f64
            }
        };
        let mut values: Vec<String> = if let (Ok(x), Ok(y)) = (a.parse::<i64>(), b.parse::<i64>()) {
            (0..steps)
                .map(|k| ((x as f64 + (y - x) as f64 * at(k)).round() as i64).to_string())
                .collect()
        } else if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
            (0..steps)
                .map(|k| format!("{}", ((x + (y - x) * at(k)) * 1000.0).round() / 1000.0))
                .collect()
        } else if let (Ok(x), Ok(y)) = (humantime::parse_duration(a), humantime::parse_duration(b))
        {
            let (x, y) = (x.as_micros() as f64, y.as_micros() as f64);
            (0..steps)
                .map(|k| micros((x + (y - x) * at(k)).round() as u64))
                .collect()
        } else {
            return Err(bad(
                "A and B must both be integers, decimals or durations (1ms)".into(),
            ));
        };
        values.dedup();
        Ok(Sweep { key: o.key, values })
    }

    /// The override of step `value`.
    pub fn at(&self, value: &str) -> Override {
        Override {
            key: self.key.clone(),
            value: value.to_string(),
        }
    }
}

/// `n` µs as the shortest exact duration text: `5ms`, `2500us`, `1s`.
fn micros(n: u64) -> String {
    let d = Duration::from_micros(n);
    if n > 0 && n % 1_000_000 == 0 {
        format!("{}s", d.as_secs())
    } else if n % 1000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{n}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_spread_their_steps_evenly() {
        let s = Sweep::parse("threads=1..8/4").unwrap();
        assert_eq!(
            (s.key.as_str(), s.values),
            (
                "threads",
                vec!["1".into(), "3".into(), "6".into(), "8".into()]
            )
        );
        let s = Sweep::parse("hold=0.1..0.9/5").unwrap();
        assert_eq!(s.values, ["0.1", "0.3", "0.5", "0.7", "0.9"]);
        let s = Sweep::parse("kill_delay=1ms..20ms/3").unwrap();
        assert_eq!(s.values, ["1ms", "10500us", "20ms"]);
        assert_eq!(Sweep::parse("depth=2..2/1").unwrap().values, ["2"]);
        let why = |s: &str| Sweep::parse(s).unwrap_err().to_string();
        assert!(why("depth=1..4").contains("STEPS"), "{}", why("depth=1..4"));
        assert!(why("depth=a..b/2").starts_with("`depth=a..b/2`: A and B must both be integers"));
        // A list, as written and in its order.
        let s = Sweep::parse("kill_delay=0ms, 1ms,2ms,5ms,10ms").unwrap();
        assert_eq!(s.values, ["0ms", "1ms", "2ms", "5ms", "10ms"]);
        let s = Sweep::parse("kill.0.at=spawn+0ms,spawn+1ms").unwrap();
        assert_eq!((s.key.as_str(), s.values.len()), ("kill.0.at", 2));
        assert!(why("depth=1,,2").contains("an empty value"));
        assert!(why("depth=1,2,1").contains("`1` is listed twice"));
    }

    #[test]
    fn overrides_edit_the_file_at_a_path() {
        let text = "version = 1\nname = \"x\"\n[tree]\nbreadth = 2\ndepth = 3\n[[kill]]\ntarget = \"root\"\nat = \"ready\"\n";
        let set = |k: &str, v: &str| {
            apply(
                text,
                &[Override {
                    key: k.into(),
                    value: v.into(),
                }],
            )
        };
        let out: toml::Table = set("depth", "5").unwrap().parse().unwrap();
        assert_eq!(out["tree"]["depth"].as_integer(), Some(5));
        let out: toml::Table = set("kill_delay", "5ms").unwrap().parse().unwrap();
        assert_eq!(out["kill"][0]["at"].as_str(), Some("5ms"));
        let out: toml::Table = set("hold", "0.5").unwrap().parse().unwrap();
        assert_eq!(out["nodes"]["root"]["hold"].as_float(), Some(0.5));
        let why = |k: &str, v: &str| set(k, v).unwrap_err().chain();
        assert_eq!(
            why("kill.3.at", "5ms"),
            "cannot set kill.3.at (kill.3.at): `kill` has 1 entries, no index 3"
        );
        assert!(why("kill.at", "5ms").contains("give an index"));
        assert!(why("name.x", "1").contains("not a table"));
        assert!(Override::parse("depth").is_err());
    }
}
