//! The cascade after the teardown ladder, as a state machine of pure
//! steps. From evidence ([`settle`]): the trial is empty (a pass), or
//! quiescent with something alive (an orphan, at once), or busy (wait, up
//! to a bound). From windows, only where `/proc` cannot be read
//! ([`cascade`]): the grace window, the confirmation window, and the wait
//! for processes the supervisor SIGKILLed (only dying, never orphans).

use super::quiescence::Quiet;
use super::WINDOW_FLOOR_US;

/// How long processes the supervisor SIGKILLed may take to die before the
/// trial is a `hang` (µs): a SIGKILLed process that outlives the cascade
/// windows is slow (a starved CPU), not an orphan; one that outlives this
/// sleeps uninterruptibly.
pub(in crate::trial) const DYING_BOUND_US: u64 = 2_000_000;

/// How long live processes that can still act by themselves (runnable, a
/// signal to take, a timed wait of the plan) are waited for after the
/// teardown before the course tells a spinning process from a starved one
/// (µs).
pub(in crate::trial) const ACTING_BOUND_US: u64 = 1_000_000;

/// Where a trial is: following the plan, climbing the teardown ladder, or
/// judging the cascade. Times are `CLOCK_MONOTONIC` ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Stage {
    /// The planned course: phase reports, gates, kills.
    Course,
    /// On rung `rung` of the teardown ladder, sent at `since`.
    Ladder { rung: usize, since: u64 },
    /// The cascade judged from evidence ([`settle`]), since `since`.
    Settle { since: u64 },
    /// The first cascade window, from the last death.
    Grace,
    /// The second cascade window, begun at `since`: what is alive at its
    /// end is an orphan.
    Confirm { since: u64 },
    /// Only processes the supervisor SIGKILLed are left: wait for them to
    /// die, since `since`.
    Dying { since: u64 },
}

/// The clocks of the cascade (ns) and its window (µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::trial) struct Clock {
    /// Now.
    pub now: u64,
    /// When the teardown began.
    pub teardown_at: u64,
    /// The last death since the teardown (or the teardown).
    pub last_death: u64,
    /// The cascade window (µs), [`window_us`](super::window_us).
    pub window_us: u64,
}

/// What the cascade came to so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Step {
    /// Nothing yet: wait for a death or the next timer.
    Wait,
    /// Go on to this stage at once.
    Next(Stage),
    /// Nothing of the trial is alive: a pass; a slow cascade when the
    /// confirmation window or the dying wait was needed (its latency from
    /// the teardown, µs).
    Pass { slow_us: Option<u64> },
    /// Something outlived both windows and is not only dying: an orphan.
    Orphan,
    /// SIGKILLed processes outlived [`DYING_BOUND_US`]: a hang, with the
    /// time since the teardown (ms).
    Undying { since_teardown_ms: u64 },
    /// Processes that can still act outlived [`ACTING_BOUND_US`]: the
    /// course tells spinning (an orphan that runs) from starved (an
    /// `error`) by the CPU time they got.
    Stalled,
}

/// What the course read of the trial for [`settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Look {
    /// Nothing of the trial is alive (kernel-exact: the cgroup or every
    /// pidfd).
    Empty,
    /// `/proc` does not show the trial's processes: fall back to windows.
    Unreadable,
    /// What the live processes can still do.
    Seen(Quiet),
}

/// The cascade from evidence, in [`Stage::Settle`] since `since` (ns). An
/// empty trial is a pass (a slow cascade when it took longer than
/// [`WINDOW_FLOOR_US`] from the teardown); a quiescent one with something
/// alive holds orphans, decided at once (the course re-checks each survivor's pidfd first); a
/// busy one is waited for, up to [`DYING_BOUND_US`] when only dying
/// processes keep it busy, else [`ACTING_BOUND_US`].
pub(in crate::trial) fn settle(since: u64, c: Clock, look: Look) -> Step {
    let waited = c.now.saturating_sub(since);
    match look {
        Look::Empty => {
            let latency_us = c.now.saturating_sub(c.teardown_at) / 1000;
            Step::Pass {
                slow_us: (latency_us > WINDOW_FLOOR_US).then_some(latency_us),
            }
        }
        Look::Unreadable => Step::Next(Stage::Grace),
        // Nothing alive but zombies, and the pidfds or the cgroup have not
        // said so yet: look again.
        Look::Seen(Quiet::Quiescent { alive }) if alive.is_empty() => Step::Wait,
        Look::Seen(Quiet::Quiescent { .. }) => Step::Orphan,
        Look::Seen(q) if !q.acting() => {
            if waited > DYING_BOUND_US * 1000 {
                Step::Undying {
                    since_teardown_ms: c.now.saturating_sub(c.teardown_at) / 1_000_000,
                }
            } else {
                Step::Wait
            }
        }
        Look::Seen(_) if waited > ACTING_BOUND_US * 1000 => Step::Stalled,
        Look::Seen(_) => Step::Wait,
    }
}

/// The cascade after the ladder, in `stage` (`Grace`, `Confirm` or
/// `Dying`; any other stage waits). `empty`: nothing of the trial is alive
/// (kernel-exact: the cgroup or every pidfd). `dying_only` is asked only
/// when the confirmation window ends with something alive: whether all of
/// it was SIGKILLed by the supervisor.
pub(in crate::trial) fn cascade(
    stage: Stage,
    c: Clock,
    empty: bool,
    dying_only: impl FnOnce() -> bool,
) -> Step {
    let w = c.window_us * 1000;
    match stage {
        Stage::Grace | Stage::Confirm { .. } => {
            if empty {
                let slow_us =
                    matches!(stage, Stage::Confirm { .. }).then(|| (c.now - c.teardown_at) / 1000);
                return Step::Pass { slow_us };
            }
            if c.now.saturating_sub(c.last_death) <= w {
                return Step::Wait;
            }
            match stage {
                Stage::Grace => Step::Next(Stage::Confirm { since: c.now }),
                Stage::Confirm { since } if c.now - since > w => {
                    if dying_only() {
                        Step::Next(Stage::Dying { since: c.now })
                    } else {
                        Step::Orphan
                    }
                }
                _ => Step::Wait,
            }
        }
        Stage::Dying { since } => {
            if empty {
                Step::Pass {
                    slow_us: Some((c.now - c.teardown_at) / 1000),
                }
            } else if c.now - since > DYING_BOUND_US * 1000 {
                Step::Undying {
                    since_teardown_ms: (c.now - c.teardown_at) / 1_000_000,
                }
            } else {
                Step::Wait
            }
        }
        Stage::Course | Stage::Ladder { .. } | Stage::Settle { .. } => Step::Wait,
    }
}
