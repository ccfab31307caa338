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
    /// `fork()`: every fd inherited, no pidfd.
    Fork,
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
    /// `poll`/`waitid(P_PIDFD)` and `pidfd_send_signal`.
    Pidfd,
    /// `waitpid(pid)`, `kill(pid)`, liveness from `/proc/PID/stat`.
    Pid,
}

/// A strategy: a name and one choice on each axis.
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
}

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
];

impl Strategy {
    /// Parse a preset name or `create=..,death=..,observe=..` (all three axes).
    ///
    /// # Errors
    /// A message naming the presets and axis values, or the unsupported
    /// combination and what to pick instead.
    pub fn parse(s: &str) -> Result<Strategy, String> {
        if let Some(&(name, create, death, observe, _)) = PRESETS.iter().find(|p| p.0 == s) {
            return Ok(Strategy {
                name: name.into(),
                create,
                death,
                observe,
            });
        }
        if !s.contains('=') {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
            return Err(format!(
                "unknown strategy `{s}`: use a preset ({}) or create=clone3|fork,death=lifeline|pdeathsig|pdeathsig-checked|none,observe=pidfd|pid",
                names.join(", ")
            ));
        }
        let (mut create, mut death, mut observe) = (None, None, None);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not axis=value"))?;
            let bad = || format!("`{v}` is not a value of axis `{k}`");
            match k.trim() {
                "create" => create = Some(serde_plain(v).ok_or_else(bad)?),
                "death" => death = Some(serde_plain(v).ok_or_else(bad)?),
                "observe" => observe = Some(serde_plain(v).ok_or_else(bad)?),
                _ => {
                    return Err(format!(
                        "unknown axis `{k}`: the axes are create, death, observe"
                    ))
                }
            }
        }
        let (Some(create), Some(death), Some(observe)) = (create, death, observe) else {
            return Err(format!(
                "`{s}` must set all three axes: create, death, observe"
            ));
        };
        let st = Strategy {
            name: s.into(),
            create,
            death,
            observe,
        };
        st.check()?;
        Ok(st)
    }

    fn check(&self) -> Result<(), String> {
        if self.create == Create::Fork && self.death == ParentDeath::Lifeline {
            return Err(
                "a lifeline with fork (the leaky lifeline) is not supported yet: use create=clone3"
                    .into(),
            );
        }
        if self.create == Create::Fork && self.observe == Observe::Pidfd {
            return Err("fork gives no pidfd: use observe=pid with create=fork".into());
        }
        Ok(())
    }
}

impl Create {
    /// The axis value as written (`clone3`, `fork`).
    pub fn name(self) -> &'static str {
        match self {
            Create::Clone3 => "clone3",
            Create::Fork => "fork",
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
            Observe::Pid => "pid",
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
        assert!(Strategy::parse("nope").unwrap_err().contains("canonical"));
        assert!(Strategy::parse("create=fork,death=lifeline,observe=pid")
            .unwrap_err()
            .contains("clone3"));
        assert!(Strategy::parse("create=fork")
            .unwrap_err()
            .contains("all three"));
    }
}
