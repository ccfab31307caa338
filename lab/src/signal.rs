//! The signals a scenario, a plan or `lab exec` may name: [`Sig`], the
//! lab's vocabulary for a teardown rung, a kill or an ignored signal.
//!
//! A ground-floor module: it imports nothing from the crate, so the
//! scenario, the plan, the verdict's rungs and the trial engine can all
//! name a signal without depending on one another.

use serde::{Deserialize, Serialize};

/// A signal a scenario may name, by its name without `SIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Sig {
    /// SIGKILL (9)
    Kill,
    /// SIGTERM (15)
    Term,
    /// SIGINT (2)
    Int,
    /// SIGHUP (1)
    Hup,
    /// SIGQUIT (3)
    Quit,
    /// SIGUSR1 (10)
    Usr1,
    /// SIGUSR2 (12)
    Usr2,
}

impl Sig {
    /// Every signal a scenario may name that a process can ignore.
    pub const CATCHABLE: [Sig; 6] = [
        Sig::Term,
        Sig::Int,
        Sig::Hup,
        Sig::Quit,
        Sig::Usr1,
        Sig::Usr2,
    ];

    const ALL: [(&'static str, Sig); 7] = [
        ("KILL", Sig::Kill),
        ("TERM", Sig::Term),
        ("INT", Sig::Int),
        ("HUP", Sig::Hup),
        ("QUIT", Sig::Quit),
        ("USR1", Sig::Usr1),
        ("USR2", Sig::Usr2),
    ];

    /// Parse `KILL`, `SIGKILL`, `kill`, ...
    pub fn parse(s: &str) -> Option<Sig> {
        let up = s.to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        Sig::ALL.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
    }

    /// The name without `SIG`.
    pub fn name(self) -> &'static str {
        Sig::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// As a rustix signal.
    pub fn signal(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Sig::Kill => S::KILL,
            Sig::Term => S::TERM,
            Sig::Int => S::INT,
            Sig::Hup => S::HUP,
            Sig::Quit => S::QUIT,
            Sig::Usr1 => S::USR1,
            Sig::Usr2 => S::USR2,
        }
    }
}
