//! Strategies: one choice on each of three axes (create, parent death,
//! observe-and-signal), so an A/B result can say which axis causes a failure.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a process is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Create {
    /// `clone3(CLONE_PIDFD | CLONE_CLEAR_SIGHAND)`, lifeline installed,
    /// `close_range` of every fd the child was not meant to keep.
    Clone3,
    /// `fork()`: every fd inherited (nothing closes them), no pidfd; a node
    /// marked `exec` is exec'd after the fork.
    Fork,
    /// `fork()` and never exec, even where the node is marked `exec`: the
    /// child is a copy of whatever the parent is, threads' locks included.
    ForkNoexec,
    /// `std::process::Command`: fork/exec by the standard library (every
    /// node is exec'd; std's fds are close-on-exec), no pidfd in the API.
    StdCommand,
}

/// How a child learns that its parent died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParentDeath {
    /// The lifeline pipe: POLLHUP when the parent's write end closes.
    Lifeline,
    /// `PR_SET_PDEATHSIG(SIGKILL)` in the child, no check after it.
    Pdeathsig,
    /// `PR_SET_PDEATHSIG(SIGKILL)`, then `getppid()` compared with the parent.
    PdeathsigChecked,
    /// Nothing.
    None,
}

/// How a process is observed and signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observe {
    /// `poll`/`waitid(P_PIDFD)` and `pidfd_send_signal`; captured stdout read
    /// while waiting for the exit, EOF wait bounded once the child is reaped.
    Pidfd,
    #[serde(alias = "proc")]
    /// `waitpid(pid)`, `kill(pid)`, liveness from `/proc/PID/stat`; captured
    /// stdout read the way the scenario says (`read`). Written `proc` (or `pid`).
    Pid,
}

/// A strategy: a name, one choice on each axis, and the guards switch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Preset name, or the axes as written (`create=fork,death=pdeathsig,observe=pid`).
    pub name: String,
    /// Creation axis.
    pub create: Create,
    /// Parent-death axis.
    pub death: ParentDeath,
    /// Observe-and-signal axis.
    pub observe: Observe,
    /// Whether the guards of the canonical path are on: checks in the node
    /// processes that turn a deadlock (an attendant without its worker,
    /// duplicated stdio, a lifeline write end in the child) into a `panic`
    /// verdict with its reason and site, instead of a hang at the deadline.
    /// On for `canonical`, off for the presets that reproduce the legacy
    /// bugs; `guards=on|off` in the axis syntax. Absent in a serialized
    /// strategy: off.
    #[serde(default)]
    pub guards: bool,
}

/// The optional preset that uses `CLONE_PIDFD_AUTOKILL` where the kernel has it.
pub const AUTOKILL: &str = "autokill";
/// What `lab strategies` says about [`AUTOKILL`].
pub const AUTOKILL_ABOUT: &str =
    "clone3 with CLONE_PIDFD_AUTOKILL: the child dies when its pidfd closes (Linux 7.1+; refused, exit 2, where the kernel lacks it)";

/// The named presets: `(name, create, death, observe, one line)`.
pub const PRESETS: &[(&str, Create, ParentDeath, Observe, &str)] = &[
    (
        "canonical",
        Create::Clone3,
        ParentDeath::Lifeline,
        Observe::Pidfd,
        "clone3 + pidfd + lifeline pipe + close_range; waitid(P_PIDFD), pidfd_send_signal",
    ),
    (
        "legacy",
        Create::Fork,
        ParentDeath::Pdeathsig,
        Observe::Pid,
        "fork + PR_SET_PDEATHSIG without a getppid check; kill(pid), waitpid, /proc liveness",
    ),
    (
        "pdeathsig-checked",
        Create::Fork,
        ParentDeath::PdeathsigChecked,
        Observe::Pid,
        "legacy, with the getppid() check after PR_SET_PDEATHSIG",
    ),
    (
        "lifeline-leaky",
        Create::Fork,
        ParentDeath::Lifeline,
        Observe::Pidfd,
        "canonical, but created by fork: lifeline write ends are inherited (no close-on-exec, no close_range)",
    ),
    (
        "fork-noexec",
        Create::ForkNoexec,
        ParentDeath::Pdeathsig,
        Observe::Pid,
        "legacy, and never exec: every child is a copy of its parent, threads' locks included",
    ),
    (
        "std-command",
        Create::StdCommand,
        ParentDeath::None,
        Observe::Pid,
        "std::process::Command spawn, wait and kill, nothing for parent death: what users pick today",
    ),
];

impl Strategy {
    /// Whether the three axes are canonical's (clone3, lifeline, pidfd): the
    /// guards' default, for the presets and the axis syntax alike.
    pub fn canonical_axes(create: Create, death: ParentDeath, observe: Observe) -> bool {
        (create, death, observe) == (Create::Clone3, ParentDeath::Lifeline, Observe::Pidfd)
    }

    /// Parse a preset name or `create=..,death=..,observe=..[,guards=on|off]`
    /// (all three axes; without `guards`, the guards are on exactly when the
    /// axes are canonical's).
    ///
    /// # Errors
    /// A [`StrategyError`] naming the presets and axis values, or the
    /// unsupported combination and what to pick instead.
    pub fn parse(s: &str) -> Result<Strategy, StrategyError> {
        if s == AUTOKILL {
            return Err(StrategyError::Autokill {
                kernel: (!lifeline::probe::autokill_supported()).then(|| {
                    rustix::system::uname()
                        .release()
                        .to_string_lossy()
                        .into_owned()
                }),
            });
        }
        if let Some(&(name, create, death, observe, _)) = PRESETS.iter().find(|p| p.0 == s) {
            return Ok(Strategy {
                name: name.into(),
                create,
                death,
                observe,
                guards: Strategy::canonical_axes(create, death, observe),
            });
        }
        if !s.contains('=') {
            return Err(StrategyError::Unknown(s.to_string()));
        }
        let (mut create, mut death, mut observe, mut guards) = (None, None, None, None);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| StrategyError::NotAxisValue(part.to_string()))?;
            let bad = || StrategyError::BadValue {
                axis: k.to_string(),
                value: v.to_string(),
            };
            match k.trim() {
                "create" => create = Some(serde_plain(v).ok_or_else(bad)?),
                "death" => death = Some(serde_plain(v).ok_or_else(bad)?),
                "observe" => observe = Some(serde_plain(v).ok_or_else(bad)?),
                "guards" => {
                    guards = Some(match v.trim() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(StrategyError::BadGuards(v.to_string())),
                    })
                }
                _ => return Err(StrategyError::UnknownAxis(k.to_string())),
            }
        }
        let (Some(create), Some(death), Some(observe)) = (create, death, observe) else {
            return Err(StrategyError::Incomplete(s.to_string()));
        };
        let st = Strategy {
            name: s.into(),
            create,
            death,
            observe,
            guards: guards.unwrap_or(Strategy::canonical_axes(create, death, observe)),
        };
        Ok(st)
    }
}

/// Why a `--strategy` value was refused; each message says what to write
/// instead.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// `autokill` on a kernel without `CLONE_PIDFD_AUTOKILL` (`kernel`: its
    /// release), or (`None`) on one that has it, which this lab does not
    /// drive yet.
    #[error("{}", autokill_message(.kernel.as_deref()))]
    Autokill {
        /// The running kernel's release, when it lacks the flag.
        kernel: Option<String>,
    },
    /// Neither a preset nor axes.
    #[error("unknown strategy `{0}`: use a preset ({presets}) or create=clone3|fork|fork-noexec|std-command,death=lifeline|pdeathsig|pdeathsig-checked|none,observe=pidfd|proc[,guards=on|off]", presets = preset_names())]
    Unknown(String),
    /// A part of the axis syntax without `=`.
    #[error("`{0}` is not axis=value")]
    NotAxisValue(String),
    /// A value the axis does not have.
    #[error("`{value}` is not a value of axis `{axis}`")]
    BadValue {
        /// The axis as written.
        axis: String,
        /// The value as written.
        value: String,
    },
    /// A `guards` value other than on or off.
    #[error("`{0}` is not a value of `guards`: on or off")]
    BadGuards(String),
    /// An axis that does not exist.
    #[error(
        "unknown axis `{0}`: the axes are create, death, observe (and the switch guards=on|off)"
    )]
    UnknownAxis(String),
    /// Axis syntax without all three axes.
    #[error("`{0}` must set all three axes: create, death, observe")]
    Incomplete(String),
}

fn autokill_message(kernel: Option<&str>) -> String {
    match kernel {
        None => "this kernel has CLONE_PIDFD_AUTOKILL, but this version of the lab does not drive it yet; use canonical".into(),
        Some(k) => format!(
            "`autokill` needs clone3's CLONE_PIDFD_AUTOKILL, which this kernel ({k}) does not have (Linux 7.1 and later); use canonical"
        ),
    }
}

fn preset_names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

impl Create {
    /// The axis value as written (`clone3`, `fork`).
    pub fn name(self) -> &'static str {
        match self {
            Create::Clone3 => "clone3",
            Create::Fork => "fork",
            Create::ForkNoexec => "fork-noexec",
            Create::StdCommand => "std-command",
        }
    }

    /// Whether a child created this way runs the lab's node program by exec
    /// (`wanted`: the node is marked `exec`).
    pub fn execs(self, wanted: bool) -> bool {
        match self {
            Create::Clone3 | Create::Fork => wanted,
            Create::ForkNoexec => false,
            Create::StdCommand => true,
        }
    }
}

impl ParentDeath {
    /// The axis value as written (`lifeline`, `pdeathsig`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ParentDeath::Lifeline => "lifeline",
            ParentDeath::Pdeathsig => "pdeathsig",
            ParentDeath::PdeathsigChecked => "pdeathsig-checked",
            ParentDeath::None => "none",
        }
    }
}

impl Observe {
    /// The axis value as written (`pidfd`, `pid`).
    pub fn name(self) -> &'static str {
        match self {
            Observe::Pidfd => "pidfd",
            Observe::Pid => "proc",
        }
    }
}

fn serde_plain<T: for<'de> Deserialize<'de>>(v: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(v.trim().to_string())).ok()
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_axes_parse() {
        let c = Strategy::parse("canonical").unwrap();
        assert_eq!(
            (c.create, c.death, c.observe),
            (Create::Clone3, ParentDeath::Lifeline, Observe::Pidfd)
        );
        let l = Strategy::parse("create=fork,death=pdeathsig,observe=pid").unwrap();
        assert_eq!(
            (l.create, l.death, l.observe),
            (Create::Fork, ParentDeath::Pdeathsig, Observe::Pid)
        );
        assert!(Strategy::parse("nope")
            .unwrap_err()
            .to_string()
            .contains("canonical"));
        let leaky = Strategy::parse("lifeline-leaky").unwrap();
        assert_eq!(
            (leaky.create, leaky.death, leaky.observe),
            (Create::Fork, ParentDeath::Lifeline, Observe::Pidfd)
        );
        let p = Strategy::parse("create=fork-noexec,death=none,observe=proc").unwrap();
        assert_eq!(
            (p.create, p.death, p.observe),
            (Create::ForkNoexec, ParentDeath::None, Observe::Pid)
        );
        assert!(Strategy::parse("create=vfork,death=none,observe=proc")
            .unwrap_err()
            .to_string()
            .contains("vfork"));
        assert!(Strategy::parse("create=fork")
            .unwrap_err()
            .to_string()
            .contains("all three"));
    }

    #[test]
    fn guards_are_on_for_canonical_only_unless_written() {
        for &(name, ..) in PRESETS {
            let st = Strategy::parse(name).unwrap();
            assert_eq!(st.guards, name == "canonical", "{name}");
        }
        let axes = |s: &str| Strategy::parse(s).unwrap().guards;
        assert!(axes("create=clone3,death=lifeline,observe=pidfd"));
        assert!(!axes(
            "create=clone3,death=lifeline,observe=pidfd,guards=off"
        ));
        assert!(!axes("create=fork,death=lifeline,observe=pidfd"));
        assert!(axes("create=fork,death=lifeline,observe=pidfd,guards=on"));
        assert!(axes(
            "guards = on, create=fork-noexec,death=lifeline,observe=pidfd"
        ));
        let name = "create=fork,death=lifeline,observe=pidfd,guards=on";
        assert_eq!(Strategy::parse(name).unwrap().name, name);
        assert!(
            Strategy::parse("create=fork,death=none,observe=proc,guards=yes")
                .unwrap_err()
                .to_string()
                .contains("on or off")
        );
        assert!(Strategy::parse("guards=on")
            .unwrap_err()
            .to_string()
            .contains("all three"));
    }

    #[test]
    fn a_strategy_serialized_without_guards_reads_as_guards_off() {
        let json = r#"{"name":"canonical","create":"clone3","death":"lifeline","observe":"pidfd"}"#;
        let st: Strategy = serde_json::from_str(json).unwrap();
        assert!(!st.guards);
        let back: Strategy = serde_json::from_str(
            &serde_json::to_string(&Strategy::parse("canonical").unwrap()).unwrap(),
        )
        .unwrap();
        assert!(back.guards);
    }
}
