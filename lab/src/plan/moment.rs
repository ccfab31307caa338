//! The moment of a timed kill drawn per trial (`per_trial = true`, what
//! `lab exec --kill-after A..B` writes): the one place a trial's kill
//! moments are drawn, from the plan's seed and the trial's index.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{draw, Plan, PlanAt};

impl PlanAt {
    /// The moment of a timed kill (µs after its reference point: the tree
    /// ready, the target's or its child's creation); `None` for `ready` and
    /// gate kills.
    pub fn moment_us(&self) -> Option<u64> {
        match *self {
            PlanAt::Delay { after_ready_us } => Some(after_ready_us),
            PlanAt::Birth { after_created_us }
            | PlanAt::ChildBirth {
                after_created_us, ..
            } => Some(after_created_us),
            PlanAt::Ready | PlanAt::Gate { .. } => None,
        }
    }

    /// The same kill at moment `us` (a kill that is not timed is unchanged).
    pub(super) fn at_moment(self, us: u64) -> PlanAt {
        match self {
            PlanAt::Delay { .. } => PlanAt::Delay { after_ready_us: us },
            PlanAt::Birth { .. } => PlanAt::Birth {
                after_created_us: us,
            },
            PlanAt::ChildBirth { child, .. } => PlanAt::ChildBirth {
                child,
                after_created_us: us,
            },
            other => other,
        }
    }
}

/// The moment (µs, in `lo..=hi`) of kill `kill` in trial `trial` of a plan
/// with seed `seed`, for a kill drawn per trial: a ChaCha8 draw keyed by
/// all four (seed, trial, kill index, and a tag that sets it apart from
/// the host's draw), so a trial replayed alone (`lab run --trial K`) draws
/// the moment it drew in its run, and the trials of a run spread over the
/// window.
pub fn moment_in_trial(seed: u64, trial: u64, kill: usize, lo: u64, hi: u64) -> u64 {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&trial.to_le_bytes());
    key[16..24].copy_from_slice(&(kill as u64).to_le_bytes());
    key[24..].copy_from_slice(b"killmomt");
    let mut rng = ChaCha8Rng::from_seed(key);
    lo + draw(&mut rng, hi.saturating_sub(lo).saturating_add(1))
}

impl Plan {
    /// Whether a kill of this plan draws its moment per trial
    /// ([`PlanKill::per_trial_us`]).
    pub fn draws_per_trial(&self) -> bool {
        self.kills.iter().any(|k| k.per_trial_us.is_some())
    }

    /// Whether a trial's index draws something of its own with the seed (a
    /// kill moment drawn per trial, a host action's chance between 0 and
    /// 1000‰), so that replaying a trial needs its index (`--trial K`).
    pub fn index_draws(&self) -> bool {
        self.draws_per_trial() || (self.host.acts() && self.host.chance_permille < 1000)
    }

    /// The plan trial `trial` runs: this one, with the moment of every kill
    /// drawn per trial set to that trial's ([`moment_in_trial`]). The one
    /// place a trial's kill moments are drawn (the trial engine calls it
    /// for every trial it runs).
    pub fn for_trial(&self, trial: u64) -> Plan {
        let mut plan = self.clone();
        for (i, k) in plan.kills.iter_mut().enumerate() {
            if let Some((lo, hi)) = k.per_trial_us {
                k.at = k.at.at_moment(moment_in_trial(self.seed, trial, i, lo, hi));
            }
        }
        plan
    }
}
