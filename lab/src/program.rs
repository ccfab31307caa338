//! Your own program as a trial's root: the library of `lab exec` (the
//! command is `cli/exec.rs`). A program and the options of `lab exec`
//! become a scenario of one node, the root, whose `command` is the program
//! (a root command starts the canonical way whatever the strategy: in the
//! trial's cgroup, or under the supervisor's subreaper, with the read end
//! of the supervisor's lifeline at fd 3; stdin `/dev/null`, stdout and
//! stderr read by the supervisor). The scenario is written to
//! `OUT/exec/NAME.toml` (a directory of the caller's, opened without
//! following another user's symlink) and run like any other from its text
//! in memory, so its results, replay commands, `lab report` and `lab plot`
//! are those of every run, and `lab soak --scenario OUT/exec/NAME.toml`
//! soaks it.
//!
//! The verdicts ([`crate::verdict::Verdict`]): `pass` (the expected exit
//! status, nothing of it alive once it exited, its stdio closed), `fail`
//! (another exit status, or a signal the lab did not send), `orphan`
//! (descendants alive once it exited and the trial was quiescent, each
//! named), `leak` (with [`ExecSpec::capture`]: its stdout or stderr still
//! held open after it exited, the holder named), `hang` (the deadline, with
//! the forensics of any hang).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::LabError;
use crate::record::trust::{Missing, OwnDir};
use crate::scenario::Scenario;
use crate::signal::Sig;

/// The deadline of an exec trial when `--deadline` is not given: 10 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// What `lab exec` runs: the program, when and how to kill it, what it is
/// expected to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The program and its arguments (argv; the program is looked up in
    /// `PATH` when it has no `/`).
    pub command: Vec<String>,
    /// Kill it this long after its spawn: each trial draws its own moment
    /// from `lo..=hi` with the seed and its index (the kill's `per_trial =
    /// true`); `None`: let it end by itself.
    pub kill_after: Option<(Duration, Duration)>,
    /// The signals of the kill, sent in turn while it lives (a ladder);
    /// empty means `TERM`.
    pub signals: Vec<Sig>,
    /// The wait between the signals of a ladder.
    pub grace: Duration,
    /// Read its stdout and stderr to EOF as a test runner does: a process
    /// still holding either once it exited is a `leak`.
    pub capture: bool,
    /// The exit status it is expected to end with (0..=255).
    pub expect_exit: u8,
    /// `NAME=VALUE` set in its environment, over the lab's own.
    pub env: Vec<String>,
    /// Its working directory.
    pub cwd: Option<String>,
    /// The deadline of each trial.
    pub deadline: Duration,
    /// The scenario's name (letters, digits, `-`, `_`), which names the
    /// results; `None`: `exec-` and the program's file name.
    pub name: Option<String>,
}

impl ExecSpec {
    /// The scenario's name: [`ExecSpec::name`](field@ExecSpec::name) when
    /// given, else `exec-` and the program's file name (letters, digits,
    /// `-` and `_` kept, the rest `_`), bounded to 40 characters.
    pub fn name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let program = self.command.first().map_or("", |p| p.as_str());
        let base = Path::new(program)
            .file_name()
            .map_or(program.into(), |b| b.to_string_lossy());
        let clean: String = base
            .chars()
            .take(32)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("exec-{clean}")
    }

    /// The scenario, as TOML text (written with the `toml` crate, so any
    /// argument is quoted right).
    pub fn scenario_text(&self) -> String {
        use toml::{Table, Value};
        let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        let mut root = Table::new();
        root.insert("command".into(), strings(&self.command));
        if self.expect_exit != 0 {
            root.insert(
                "expect_exit".into(),
                Value::Integer(self.expect_exit.into()),
            );
        }
        if self.capture {
            root.insert("capture".into(), Value::Boolean(true));
        }
        if !self.env.is_empty() {
            root.insert("env".into(), strings(&self.env));
        }
        if let Some(dir) = &self.cwd {
            root.insert("cwd".into(), Value::String(dir.clone()));
        }
        let mut nodes = Table::new();
        nodes.insert("root".into(), Value::Table(root));
        let mut tree = Table::new();
        tree.insert("breadth".into(), Value::Integer(1));
        tree.insert("depth".into(), Value::Integer(0));
        let mut limits = Table::new();
        limits.insert("deadline".into(), Value::String(micros(self.deadline)));
        let mut doc = Table::new();
        doc.insert("version".into(), Value::Integer(1));
        doc.insert("name".into(), Value::String(self.name()));
        doc.insert(
            "about".into(),
            Value::String(format!(
                "`{}` run by `lab exec` as the root of each trial.",
                self.command.join(" ")
            )),
        );
        doc.insert("tree".into(), Value::Table(tree));
        doc.insert("nodes".into(), Value::Table(nodes));
        if let Some((lo, hi)) = self.kill_after {
            let mut kill = Table::new();
            kill.insert("target".into(), Value::String("root".into()));
            let (first, then) = match self.signals.split_first() {
                Some((f, rest)) => (*f, rest.to_vec()),
                None => (Sig::Term, Vec::new()),
            };
            kill.insert("signal".into(), Value::String(first.name().into()));
            kill.insert(
                "at".into(),
                Value::String(format!("spawn+{}..{}", micros(lo), micros(hi))),
            );
            if lo < hi {
                kill.insert("per_trial".into(), Value::Boolean(true));
            }
            if !then.is_empty() {
                let names: Vec<String> = then.iter().map(|s| s.name().to_string()).collect();
                kill.insert("then".into(), strings(&names));
                kill.insert("grace".into(), Value::String(micros(self.grace)));
            }
            doc.insert("kill".into(), Value::Array(vec![Value::Table(kill)]));
        }
        doc.insert("limits".into(), Value::Table(limits));
        format!(
            "# Written by `lab exec`; run it again with `lab run FILE`, soak it with\n\
             # `lab soak --scenario FILE`.\n{doc}"
        )
    }

    /// Check the scenario and write it to `out/exec/NAME-HASH.toml` (HASH:
    /// the first 8 hex digits of its text's SHA-256, so equal requests
    /// share a file): the path `lab run` and `lab soak` take, and the text
    /// written (what the trials run: the file is not read back). The
    /// directory is opened as the caller's ([`OwnDir`]) and the file
    /// written whole under its handle.
    ///
    /// # Errors
    /// [`LabError::Input`] when the scenario is refused (an empty command,
    /// an argument with NUL, a bad `env`) or `out/exec` is not the caller's
    /// (a symlink of another user's, say); [`LabError::Lab`] when the file
    /// cannot be written.
    pub fn write_scenario(&self, out: &Path) -> Result<(PathBuf, String), LabError> {
        let text = self.scenario_text();
        let hash = Sha256::digest(text.as_bytes());
        let name = format!(
            "{}-{:02x}{:02x}{:02x}{:02x}.toml",
            self.name(),
            hash[0],
            hash[1],
            hash[2],
            hash[3]
        );
        let dir = out.join("exec");
        let path = dir.join(&name);
        Scenario::parse(&path.display().to_string(), &text).map_err(LabError::from)?;
        OwnDir::open(&dir, Missing::Create)?
            .replace(&name, text.as_bytes())
            .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?;
        Ok((path, text))
    }
}

/// A duration in whole microseconds as the scenario format reads it (`1500us`).
fn micros(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// `--kill-after`: `50ms` or a seeded window `5ms..200ms`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_window(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let parse = |t: &str| {
        humantime::parse_duration(t.trim())
            .map_err(|e| format!("{e}; write a delay like 50ms or a window like 5ms..200ms"))
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if lo > hi {
        return Err("a window is low..high with low <= high".into());
    }
    if hi > Duration::from_secs(3600) {
        return Err("a kill comes at most 1h after the spawn".into());
    }
    Ok((lo, hi))
}

/// The signals of a kill: one, or a ladder sent in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder(pub Vec<Sig>);

/// `--signal`: one signal or a ladder, `INT,TERM,KILL`.
///
/// # Errors
/// A message naming the signal not known.
pub fn parse_ladder(s: &str) -> Result<Ladder, String> {
    parse_signals(s).map(Ladder)
}

/// One signal or a ladder, `INT,TERM,KILL`, as a list.
///
/// # Errors
/// A message naming the signal not known.
pub fn parse_signals(s: &str) -> Result<Vec<Sig>, String> {
    let sigs = s
        .split(',')
        .map(|t| {
            Sig::parse(t.trim()).ok_or_else(|| {
                format!(
                    "unknown signal `{}`; use KILL, TERM, INT, HUP, QUIT, USR1, USR2",
                    t.trim()
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if sigs.len() > 4 {
        return Err("a ladder has at most 4 signals".into());
    }
    Ok(sigs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &[&str]) -> ExecSpec {
        ExecSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            deadline: DEFAULT_DEADLINE,
            grace: Duration::from_millis(100),
            ..ExecSpec::default()
        }
    }

    #[test]
    fn a_program_becomes_a_scenario_of_one_command_root() {
        let mut s = spec(&["/bin/sh", "-c", "echo \"a b\" 'c' && exit 3"]);
        s.expect_exit = 3;
        s.capture = true;
        s.env = vec!["A=1".into()];
        s.kill_after = Some((Duration::from_millis(5), Duration::from_millis(200)));
        s.signals = vec![Sig::Int, Sig::Term, Sig::Kill];
        let sc = Scenario::parse("x.toml", &s.scenario_text()).unwrap();
        assert_eq!(sc.name, "exec-sh");
        let plan = crate::plan::Plan::new(&sc, 1);
        assert_eq!(plan.nodes.len(), 1);
        let root = &plan.nodes[0];
        assert_eq!(root.command.as_ref().unwrap(), &s.command);
        assert_eq!((root.expect_exit, root.capture), (3, true));
        assert_eq!(root.env, vec!["A=1".to_string()]);
        let k = &plan.kills[0];
        assert_eq!(
            (k.signal, k.then.clone()),
            (Sig::Int, vec![Sig::Term, Sig::Kill])
        );
        assert_eq!(k.grace_us, 100_000);
        let crate::plan::PlanAt::Birth { after_created_us } = k.at else {
            panic!("{:?}", k.at)
        };
        assert!((5_000..=200_000).contains(&after_created_us));
    }

    #[test]
    fn a_kill_window_is_drawn_per_trial_and_a_delay_is_one_moment() {
        let mut s = spec(&["sleep", "5"]);
        s.kill_after = Some((Duration::from_millis(5), Duration::from_millis(200)));
        let sc = Scenario::parse("x.toml", &s.scenario_text()).unwrap();
        let plan = crate::plan::Plan::new(&sc, 1);
        let moments: std::collections::BTreeSet<u64> = (0..10)
            .filter_map(|t| plan.for_trial(t).kills[0].at.moment_us())
            .collect();
        assert!(moments.len() >= 9, "{moments:?}");
        assert!(moments.iter().all(|m| (5_000..=200_000).contains(m)));
        s.kill_after = Some((Duration::from_millis(50), Duration::from_millis(50)));
        assert!(!s.scenario_text().contains("per_trial"));
    }

    #[test]
    fn bad_options_are_refused_with_the_reason() {
        assert!(parse_window("200ms..5ms")
            .unwrap_err()
            .contains("low <= high"));
        assert!(parse_window("soon").unwrap_err().contains("50ms"));
        assert!(parse_signals("TERM,STOP").unwrap_err().contains("`STOP`"));
        let mut s = spec(&["sh"]);
        s.env = vec!["=x".into()];
        let dir = tempfile::tempdir().unwrap();
        let e = s.write_scenario(dir.path()).unwrap_err().to_string();
        assert!(e.contains("NAME=VALUE"), "{e}");
    }
}
