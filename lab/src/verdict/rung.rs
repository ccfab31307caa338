//! [`Rung`]: a rung of the teardown ladder (or what else ended a tree), and
//! [`NodeRung`], the rung in effect when a node died, as values of an
//! [`Outcome`](super::Outcome). The supervisor climbs the ladder in
//! `trial/ladder.rs`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::signal::Sig;

/// A rung of the teardown ladder, or what else ended a tree. Written as
/// its name (`teardown-KILL`, `group-TERM`, `pidfds-KILL`, `cgroup.kill`,
/// `none`, `cleanup`) in the CSV and in the supervisor's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Rung {
    /// Nothing was sent: the tree ended by itself.
    None,
    /// The signal to the root alone (`teardown-SIG`).
    Root(Sig),
    /// The signal to the root's process group, by PID (`group-SIG`; legacy
    /// observe axis).
    Group(Sig),
    /// The signal through every pidfd the supervisor holds, nodes and
    /// adopted orphans (`pidfds-SIG`).
    Pidfds(Sig),
    /// SIGKILL to every process of the trial's cgroup (`cgroup.kill`).
    CgroupKill,
    /// The supervisor's final kill after a hang (`cleanup`).
    Cleanup,
}

impl fmt::Display for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rung::None => f.write_str("none"),
            Rung::Root(s) => write!(f, "teardown-{}", s.name()),
            Rung::Group(s) => write!(f, "group-{}", s.name()),
            Rung::Pidfds(s) => write!(f, "pidfds-{}", s.name()),
            Rung::CgroupKill => f.write_str("cgroup.kill"),
            Rung::Cleanup => f.write_str("cleanup"),
        }
    }
}

/// A name that is no rung of the ladder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a teardown rung: {0:?} (teardown-SIG, group-SIG, pidfds-SIG, cgroup.kill, none, cleanup)"
)]
pub struct BadRung(pub String);

impl FromStr for Rung {
    type Err = BadRung;

    /// Parse a rung's name, as [`Display`](fmt::Display) writes it.
    ///
    /// # Errors
    /// [`BadRung`] for any other text.
    fn from_str(s: &str) -> Result<Rung, BadRung> {
        let sig = |rest: &str| Sig::parse(rest).ok_or_else(|| BadRung(s.to_string()));
        match s {
            "none" => Ok(Rung::None),
            "cgroup.kill" => Ok(Rung::CgroupKill),
            "cleanup" => Ok(Rung::Cleanup),
            _ => match s.split_once('-') {
                Some(("teardown", r)) => Ok(Rung::Root(sig(r)?)),
                Some(("group", r)) => Ok(Rung::Group(sig(r)?)),
                Some(("pidfds", r)) => Ok(Rung::Pidfds(sig(r)?)),
                _ => Err(BadRung(s.to_string())),
            },
        }
    }
}

impl From<Rung> for String {
    fn from(r: Rung) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Rung {
    type Error = BadRung;

    fn try_from(s: String) -> Result<Rung, BadRung> {
        s.parse()
    }
}

/// The rung in effect when a node died, written `path=RUNG`
/// (`root=teardown-TERM`) in the CSV and the supervisor's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct NodeRung {
    /// The node's path.
    pub path: String,
    /// The rung.
    pub rung: Rung,
}

impl fmt::Display for NodeRung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.path, self.rung)
    }
}

impl From<NodeRung> for String {
    fn from(r: NodeRung) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for NodeRung {
    type Error = BadRung;

    /// Parse `path=RUNG`.
    fn try_from(s: String) -> Result<NodeRung, BadRung> {
        let (path, rung) = s.split_once('=').ok_or_else(|| BadRung(s.clone()))?;
        Ok(NodeRung {
            path: path.to_string(),
            rung: rung.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_keep_their_names() {
        let all = [
            (Rung::Root(Sig::Kill), "teardown-KILL"),
            (Rung::Root(Sig::Term), "teardown-TERM"),
            (Rung::Group(Sig::Term), "group-TERM"),
            (Rung::Pidfds(Sig::Kill), "pidfds-KILL"),
            (Rung::CgroupKill, "cgroup.kill"),
            (Rung::None, "none"),
            (Rung::Cleanup, "cleanup"),
        ];
        for (rung, name) in all {
            assert_eq!(rung.to_string(), name);
            assert_eq!(name.parse::<Rung>(), Ok(rung));
            let json = serde_json::to_string(&rung).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Rung>(&json).unwrap(), rung);
        }
        let n = NodeRung {
            path: "0.1".into(),
            rung: Rung::Group(Sig::Term),
        };
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"0.1=group-TERM\"");
        assert_eq!(serde_json::from_str::<NodeRung>(&json).unwrap(), n);
        assert!("teardown-FOO".parse::<Rung>().is_err());
        assert!("ladder".parse::<Rung>().is_err());
    }
}
