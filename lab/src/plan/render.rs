//! A plan as readable text: what `lab plan` prints.

use std::fmt::Write as _;

use super::{Plan, PlanAt};
use crate::scenario::AttendantAction;

impl Plan {
    /// The plan as readable text, one line a node and a kill (what
    /// `lab plan` prints).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "plan {}  scenario {} ({})  seed {}",
            self.hash(),
            self.scenario,
            self.scenario_hash,
            self.seed
        );
        let mut ladder = vec![format!("SIG{}", self.teardown.name())];
        ladder.extend(self.escalate.iter().map(|s| format!("SIG{}", s.name())));
        let _ = writeln!(
            s,
            "nodes {}  deadline {} ms  teardown {} to {}{}",
            self.nodes.len(),
            self.deadline_us / 1000,
            ladder.join(" > "),
            if self.teardown_group {
                "the tree"
            } else {
                "root"
            },
            if self.escalate.is_empty() {
                String::new()
            } else {
                format!(" ({} us a rung)", self.rung_wait_us)
            }
        );
        for n in &self.nodes {
            let indent = "  ".repeat(n.depth as usize + 1);
            let mut what = if n.linger {
                "linger".to_string()
            } else {
                format!(
                    "exit {} after children + {} us",
                    n.exit_code, n.exit_delay_us
                )
            };
            if let Some(g) = n.gate {
                let _ = write!(what, ", gate at {}", g.name());
            }
            for knob in n.knobs() {
                let _ = write!(what, ", {knob}");
            }
            let _ = writeln!(s, "{indent}{}: {what}", n.path);
        }
        for k in &self.kills {
            let target = &self.nodes[k.target as usize].path;
            let when = match k.at {
                PlanAt::Ready => "when the tree is ready".to_string(),
                PlanAt::Gate { child, phase } => format!(
                    "while its child {} is held at gate {}, then release it",
                    self.nodes[child as usize].path,
                    phase.name()
                ),
                PlanAt::Delay { after_ready_us } => {
                    format!("{after_ready_us} us after the tree is ready")
                }
                PlanAt::Birth { after_created_us } => {
                    format!("{after_created_us} us after it was created")
                }
                PlanAt::ChildBirth {
                    child,
                    after_created_us,
                } => format!(
                    "{after_created_us} us after it forked its child {}",
                    self.nodes[child as usize].path
                ),
            };
            let per_trial = match k.per_trial_us {
                Some((lo, hi)) => {
                    format!(" (trial 0; each trial draws its own moment in {lo}..{hi} us)")
                }
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "kill {target} with SIG{} {when}{per_trial}",
                k.signal.name()
            );
        }
        if self.host.acts() {
            let what = match self.host.attendant {
                AttendantAction::Init => "creates the attendant (no worker yet)",
                AttendantAction::Start => "starts the attendant's worker if the attendant exists",
                _ => "uses the attendant (creating it and starting its worker if needed)",
            };
            let chance = if self.host.chance_permille < 1000 {
                format!(
                    ", in {}.{}% of trials",
                    self.host.chance_permille / 10,
                    self.host.chance_permille % 10
                )
            } else {
                String::new()
            };
            let _ = writeln!(s, "host {what} before it spawns the root{chance}");
        }
        s
    }
}
