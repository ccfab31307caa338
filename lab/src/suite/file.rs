//! The suite format: a TOML file (in `scenarios/suites/`) that lists the
//! scenarios run one after another in one supervisor, the way tests run in
//! one `cargo test` process. See `docs/suite.md`.
//!
//! ```toml
//! version = 1
//! name = "attendant"
//! about = "..."
//!
//! [[member]]
//! scenario = "attendant/warm-cache.toml"   # relative to this file, or a built-in name
//!
//! [[member]]
//! name = "ask"                             # default: the scenario's name
//! scenario = "attendant/fork-then-ask.toml"
//! seed = 3                                 # the plan's seed, default 1
//! ```
//!
//! Unknown keys are refused, and every error names `file:line:col` and the
//! offending text, as scenario errors do ([`ScenarioError`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::plan::Plan;
use crate::scenario::{is_name, Scenario, ScenarioError, Sp, MAX_NAME_CHARS};

/// The only suite format version this lab reads.
const VERSION: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    version: Sp<i64>,
    name: Sp<String>,
    #[serde(default)]
    about: String,
    member: Option<Sp<Vec<RawMember>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    name: Option<Sp<String>>,
    scenario: Sp<String>,
    seed: Option<Sp<i64>>,
}

/// One member of a suite: a scenario resolved to its plan.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its name in the suite (unique; the scenario's name unless the file
    /// gives one).
    pub name: String,
    /// The scenario as the suite file names it (a path relative to the
    /// suite file, or a built-in name).
    pub scenario: String,
    /// The seed of its plan.
    pub seed: u64,
    /// Its plan.
    pub plan: Plan,
}

/// A validated suite: its members in the order written.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The suite's name (letters, digits, `-` and `_`).
    pub name: String,
    /// One paragraph: what the suite shows.
    pub about: String,
    /// The file as given on the command line.
    pub file: String,
    /// The members, in the order written.
    pub members: Vec<Member>,
}

impl Suite {
    /// Load and validate the suite file at `path`, and every member's
    /// scenario.
    ///
    /// # Errors
    /// An unreadable file, or a [`ScenarioError`] at the offending text:
    /// a format error, an unknown or invalid member scenario, a member name
    /// used twice.
    pub fn load(path: &str) -> Result<Suite, ScenarioError> {
        let text = crate::scenario::read_source(path, path)?;
        Suite::parse(path, &text)
    }

    /// Parse the suite `text`; `file` names it in errors, and member
    /// scenarios given as paths are read relative to its directory.
    ///
    /// # Errors
    /// As [`Suite::load`].
    pub fn parse(file: &str, text: &str) -> Result<Suite, ScenarioError> {
        let err = |span: std::ops::Range<usize>, message: String| {
            ScenarioError::at(file, text, span, message)
        };
        let raw: RawSuite =
            toml::from_str(text).map_err(|e| ScenarioError::from_toml(file, text, e))?;
        if *raw.version.get_ref() != VERSION {
            return Err(err(
                raw.version.span(),
                format!("unsupported version; this lab reads suites of version = {VERSION}"),
            ));
        }
        if !is_name(raw.name.get_ref()) {
            return Err(err(
                raw.name.span(),
                format!("a name is letters, digits, '-' and '_', at most {MAX_NAME_CHARS} of them"),
            ));
        }
        let Some(raw_members) = raw.member else {
            return Err(err(
                0..0,
                "a suite lists its members: [[member]] with scenario = \"PATH.toml\"".into(),
            ));
        };
        if raw_members.get_ref().is_empty() {
            return Err(err(
                raw_members.span(),
                "a suite has at least one member".into(),
            ));
        }
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        let mut members: Vec<Member> = Vec::new();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        for m in raw_members.get_ref() {
            let reference = m.scenario.get_ref();
            let loaded = if reference.contains('/') || reference.ends_with(".toml") {
                Scenario::load(&dir.join(reference).display().to_string())
            } else {
                Scenario::load(reference)
            };
            let scenario = loaded.map_err(|inner| {
                let mut e = err(
                    m.scenario.span(),
                    format!("the scenario {reference:?} does not load:\n{inner}"),
                );
                e.text.clear();
                e
            })?;
            let seed = match &m.seed {
                Some(s) if *s.get_ref() < 0 => {
                    return Err(err(s.span(), "a seed is 0 or more".into()));
                }
                Some(s) => *s.get_ref() as u64,
                None => 1,
            };
            let (name, span) = match &m.name {
                Some(n) if !is_name(n.get_ref()) => {
                    return Err(err(
                        n.span(),
                        format!("a member name is letters, digits, '-' and '_', at most {MAX_NAME_CHARS} of them"),
                    ));
                }
                Some(n) => (n.get_ref().clone(), n.span()),
                None => (scenario.name.clone(), m.scenario.span()),
            };
            let line = ScenarioError::at(file, text, span.clone(), String::new()).line;
            if let Some(first) = first_line.get(&name) {
                return Err(err(
                    span,
                    format!(
                        "member name `{name}` is used twice (first on line {first}); give one of them a `name`"
                    ),
                ));
            }
            first_line.insert(name.clone(), line);
            members.push(Member {
                name,
                scenario: reference.clone(),
                seed,
                plan: Plan::new(&scenario, seed),
            });
        }
        Ok(Suite {
            name: raw.name.get_ref().clone(),
            about: raw.about.trim().to_string(),
            file: file.to_string(),
            members,
        })
    }

    /// The index of the member named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// The members' names, comma-separated, for messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_file_over_the_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.toml");
        std::fs::write(&path, vec![b'#'; 2 << 20]).unwrap();
        let e = Suite::load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("limit of 1048576 bytes (1 MiB)"), "{e}");
        assert!(e.len() < 400, "{e}");
    }

    /// A suite file in a fresh directory with two member scenarios beside it.
    fn dir_with_members(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-suite-file-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("m")).unwrap();
        for name in ["a", "b"] {
            std::fs::write(
                dir.join("m").join(format!("{name}.toml")),
                format!("version = 1\nname = \"{name}\"\n[tree]\nbreadth = []\n"),
            )
            .unwrap();
        }
        dir
    }

    fn parse_in(tag: &str, text: &str) -> Result<Suite, ScenarioError> {
        let dir = dir_with_members(tag);
        let file = dir.join("s.toml");
        let r = Suite::parse(file.to_str().unwrap(), text);
        let _ = std::fs::remove_dir_all(dir);
        r
    }

    #[test]
    fn suite_and_member_names_are_bounded() {
        let long = "m".repeat(MAX_NAME_CHARS + 1);
        let member = |name: &str| {
            format!("version = 1\nname = \"s\"\n[[member]]\nname = \"{name}\"\nscenario = \"m/a.toml\"\n")
        };
        let s = parse_in("name-max", &member(&long[1..])).unwrap();
        assert_eq!(s.members[0].name.len(), MAX_NAME_CHARS);
        let e = parse_in("name-long", &member(&long)).unwrap_err();
        assert_eq!((e.line, e.col), (4, 8), "{e}");
        assert!(e.message.contains("a member name is letters"), "{e}");
        let suite =
            format!("version = 1\nname = \"{long}\"\n[[member]]\nscenario = \"m/a.toml\"\n");
        let e = parse_in("suite-long", &suite).unwrap_err();
        assert_eq!((e.line, e.col), (2, 8), "{e}");
        assert!(e.message.contains("at most 64 of them"), "{e}");
    }

    #[test]
    fn members_resolve_relative_to_the_suite_file_and_to_built_in_names() {
        let s = parse_in(
            "ok",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"m/a.toml\"\n\
             [[member]]\nname = \"b2\"\nscenario = \"m/b.toml\"\nseed = 7\n\
             [[member]]\nscenario = \"nested\"\n",
        )
        .unwrap();
        let names: Vec<&str> = s.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b2", "nested"]);
        assert_eq!(s.members[1].seed, 7);
        assert_eq!(s.members[1].plan.seed, 7);
        assert_eq!(s.members[0].seed, 1);
        assert_eq!(s.index("b2"), Some(1));
    }

    #[test]
    fn the_shipped_attendant_suite_loads_with_its_polluter_and_victim() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/suites/attendant.toml"
        );
        let s = Suite::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "attendant");
        assert_eq!(s.members.len(), 7);
        let acts: Vec<&str> = s
            .members
            .iter()
            .filter(|m| m.plan.host.acts())
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(acts, ["warm-cache"]);
        let users: Vec<&str> = s
            .members
            .iter()
            .filter(|m| {
                m.plan
                    .nodes
                    .iter()
                    .any(|n| n.attendant == crate::scenario::AttendantAction::Use)
            })
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(users, ["fork-then-ask"]);
        assert!(s.index("warm-cache") < s.index("fork-then-ask"));
    }

    #[test]
    fn errors_name_the_suite_file_line_and_column() {
        let e = parse_in(
            "dup",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"m/a.toml\"\n\
             [[member]]\nscenario = \"m/a.toml\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (6, 12), "{e}");
        assert!(
            e.message
                .starts_with("member name `a` is used twice (first on line 4)"),
            "{e}"
        );
        let e = parse_in(
            "missing",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"m/nope.toml\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (4, 12), "{e}");
        assert!(e.to_string().contains("does not load:\n"), "{e}");
        assert!(
            e.to_string().contains("nope.toml: cannot read the file"),
            "{e}"
        );
        let e = parse_in(
            "unknown",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"m/a.toml\"\norder = 2\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (5, 1), "{e}");
        assert!(e.message.starts_with("unknown field `order`"), "{e}");
        let e = parse_in("none", "version = 1\nname = \"s\"\n").unwrap_err();
        assert!(e.message.contains("[[member]]"), "{e}");
        let e = parse_in(
            "seed",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"m/a.toml\"\nseed = -1\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.col, e.message.as_str()),
            (5, 8, "a seed is 0 or more")
        );
        let e = parse_in(
            "version",
            "version = 2\nname = \"s\"\n[[member]]\nscenario = \"m/a.toml\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (1, 11), "{e}");
        let e = parse_in(
            "builtin",
            "version = 1\nname = \"s\"\n[[member]]\nscenario = \"nope\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no built-in scenario"), "{e}");
    }
}
