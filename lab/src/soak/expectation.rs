//! `--gate STRATEGY[:VERDICT,...]`: what a nightly soak expects of a
//! strategy (every trial has one of the verdicts, `pass` by default), and
//! whether the soak met it. (The design's *gate* is something else: a point
//! where a node waits for the supervisor; the flag keeps its name.)

use serde::Serialize;

use crate::error::LabError;
use crate::record::GroupSummary;
use crate::strategy::Strategy;
use crate::verdict::Verdict;

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
    /// Check the expectations `written` against the soak's strategies
    /// (`named` as the user wrote them) and the verdicts.
    ///
    /// # Errors
    /// [`LabError::Input`] naming the expectation, for a strategy the soak
    /// does not run or a name that is no verdict.
    pub fn validate(
        written: &[String],
        strategies: &[Strategy],
        named: &[String],
    ) -> Result<(), LabError> {
        for g in written {
            let (name, allowed) = parts(g);
            if !strategies.iter().any(|s| s.name == name) {
                return Err(LabError::Input(format!(
                    "--gate {g}: `{name}` is not one of the soak's strategies ({})",
                    named.join(", ")
                )));
            }
            if let Some(bad) = allowed
                .iter()
                .find(|v| !Verdict::ALL.iter().any(|x| x.name() == **v))
            {
                return Err(LabError::Input(format!(
                    "--gate {g}: `{bad}` is not a verdict ({})",
                    Verdict::ALL.map(|v| v.name()).join(", ")
                )));
            }
        }
        Ok(())
    }

    /// How many trials of the expecting strategies in `groups` had a
    /// verdict their expectation (`written`) does not allow, and the replay
    /// commands of the first of them.
    pub fn of(written: &[String], groups: &[GroupSummary]) -> Expectation {
        let mut failures = 0;
        let mut replay = Vec::new();
        for gate in written {
            let (name, allowed) = parts(gate);
            for g in groups.iter().filter(|g| g.strategy == name) {
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

/// `STRATEGY[:VERDICT,...]`: the strategy and the verdicts its trials may
/// have (default `pass`).
fn parts(written: &str) -> (&str, Vec<&str>) {
    match written.split_once(':') {
        Some((name, verdicts)) => (name, verdicts.split(',').map(str::trim).collect()),
        None => (written, vec![Verdict::Pass.name()]),
    }
}
