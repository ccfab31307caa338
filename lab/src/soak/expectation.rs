//! `--gate STRATEGY[:VERDICT,...]`: what a nightly soak expects of a
//! strategy (every trial has one of the verdicts, `pass` by default),
//! overriding the scenarios' `[expect]` entries for it, and the trials that
//! missed it with their replay commands. Whether each strategy met its
//! expectation (gate, `[expect]`, or none) is judged by [`crate::expect`].
//! (The design's *gate* is something else: a point where a node waits for
//! the supervisor; the flag keeps its name.)

use serde::Serialize;

use crate::error::LabError;
use crate::expect::Gate;
use crate::record::GroupSummary;
use crate::strategy::Strategy;

/// Replay commands kept for the trials that missed an expectation.
const REPLAYS_KEPT: usize = 20;

/// Whether the strategies' expectations held (`"gate"` in a soak's JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Expectation {
    /// The expectations, as written (`canonical`, `canonical:pass,panic`).
    pub strategies: Vec<String>,
    /// Trials of the expecting strategies with a verdict their expectation
    /// does not allow.
    pub failures: u64,
    /// How to replay the first of them (at most 20), each followed by
    /// `# VERDICT`.
    pub replay: Vec<String>,
}

impl Expectation {
    /// Parse the expectations `written` and check them against the soak's
    /// strategies (`named` as the user wrote them) and the verdicts.
    ///
    /// # Errors
    /// [`LabError::Input`] naming the expectation, for a strategy the soak
    /// does not run or a name that is no verdict.
    pub fn validate(
        written: &[String],
        strategies: &[Strategy],
        named: &[String],
    ) -> Result<Vec<Gate>, LabError> {
        written
            .iter()
            .map(|g| {
                let gate =
                    Gate::parse(g).map_err(|e| LabError::Input(format!("--gate {g}: {e}")))?;
                if !strategies.iter().any(|s| s.name == gate.strategy) {
                    return Err(LabError::Input(format!(
                        "--gate {g}: `{}` is not one of the soak's strategies ({})",
                        gate.strategy,
                        named.join(", ")
                    )));
                }
                Ok(gate)
            })
            .collect()
    }

    /// How many trials of the expecting strategies in `groups` had a
    /// verdict their expectation (`written`) does not allow, and the replay
    /// commands of the first of them.
    pub fn of(written: &[String], gates: &[Gate], groups: &[GroupSummary]) -> Expectation {
        let mut failures = 0;
        let mut replay = Vec::new();
        for gate in gates {
            let allowed: Vec<&str> = gate.verdicts.iter().map(|v| v.name()).collect();
            for g in groups.iter().filter(|g| g.strategy == gate.strategy) {
                let fine: u64 = allowed.iter().map(|v| g.rates[*v].count).sum();
                failures += g.trials - fine;
                replay.extend(
                    g.failing
                        .iter()
                        .filter(|f| !allowed.contains(&f.verdict.as_str()))
                        .map(|f| format!("{}   # {}", f.replay, f.verdict)),
                );
            }
        }
        replay.truncate(REPLAYS_KEPT);
        Expectation {
            strategies: written.to_vec(),
            failures,
            replay,
        }
    }
}
