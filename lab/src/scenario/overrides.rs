//! Overrides of a scenario's keys (`lab run --set KEY=VALUE`) and sweeps of
//! one key over a range (`lab soak --sweep KEY=A..B/STEPS`): the scenario's
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
    /// A message when there is no `=` or either side is empty.
    pub fn parse(s: &str) -> Result<Override, String> {
        match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => Ok(Override {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!(
                "`{s}` is not KEY=VALUE (e.g. tree.depth=3, kill_delay=5ms)"
            )),
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

/// `text` (a scenario file) with every override applied, as TOML text.
///
/// # Errors
/// The TOML does not parse, or a path goes through something that is not a
/// table (or, for a numeric part, an array with that index).
pub fn apply(text: &str, overrides: &[Override]) -> Result<String, String> {
    let mut doc: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    for o in overrides {
        set(&mut doc, o.path(), o.toml_value())
            .map_err(|e| format!("cannot set {} ({}): {e}", o.key, o.path()))?;
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

fn set(doc: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    set_at(doc, &parts, value)
}

/// Set `parts` (a path: table keys, and an index after a list's name) below
/// `here` to `value`, making the tables on the way that do not exist yet.
fn set_at(here: &mut toml::Table, parts: &[&str], value: toml::Value) -> Result<(), String> {
    let (first, rest) = parts.split_first().ok_or("an empty key")?;
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
            let i: usize = index
                .parse()
                .map_err(|_| format!("`{first}` is a list: give an index after it ({first}.0)"))?;
            let len = items.len();
            let item = items
                .get_mut(i)
                .ok_or_else(|| format!("`{first}` has {len} entries, no index {i}"))?;
            match item {
                _ if after.is_empty() => {
                    *item = value;
                    Ok(())
                }
                toml::Value::Table(t) => set_at(t, after, value),
                _ => Err(format!("`{first}.{i}` is not a table")),
            }
        }
        _ => Err(format!("`{first}` is not a table")),
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
    /// repeats dropped.
    ///
    /// # Errors
    /// A message naming what is wrong and the expected shape.
    pub fn parse(s: &str) -> Result<Sweep, String> {
        let shape = "KEY=A..B/STEPS (e.g. kill_delay=1ms..20ms/5, threads=1..8/8, hold=0.1..0.9/5, depth=1..4/4)";
        let o = Override::parse(s).map_err(|_| format!("`{s}` is not {shape}"))?;
        let (range, steps) = o
            .value
            .rsplit_once('/')
            .ok_or_else(|| format!("`{s}`: no /STEPS; the shape is {shape}"))?;
        let steps: usize = steps
            .trim()
            .parse()
            .ok()
            .filter(|&n| (1..=1000).contains(&n))
            .ok_or_else(|| format!("`{s}`: STEPS must be a whole number from 1 to 1000"))?;
        let (a, b) = range
            .split_once("..")
            .ok_or_else(|| format!("`{s}`: no A..B range; the shape is {shape}"))?;
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
            return Err(format!(
                "`{s}`: A and B must both be integers, decimals or durations (1ms)"
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
        assert!(Sweep::parse("depth=1..4").unwrap_err().contains("STEPS"));
        assert!(Sweep::parse("depth=a..b/2")
            .unwrap_err()
            .contains("integers"));
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
        assert!(set("kill.3.at", "5ms").unwrap_err().contains("no index 3"));
        assert!(set("kill.at", "5ms").unwrap_err().contains("give an index"));
        assert!(set("name.x", "1").unwrap_err().contains("not a table"));
        assert!(Override::parse("depth").is_err());
    }
}
