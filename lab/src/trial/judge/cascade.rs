//! The cascade after the teardown ladder, as a state machine of pure
//! steps: the grace window, the confirmation window, and the wait for
//! processes the supervisor SIGKILLed (only dying, never orphans).

/// How long processes the supervisor SIGKILLed may take to die before the
/// trial is a `hang` (µs): a SIGKILLed process that outlives the cascade
/// windows is slow (a starved CPU), not an orphan; one that outlives this
/// sleeps uninterruptibly.
pub(in crate::trial) const DYING_BOUND_US: u64 = 2_000_000;

/// Where a trial is: following the plan, climbing the teardown ladder, or
/// judging the cascade. Times are `CLOCK_MONOTONIC` ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Stage {
    /// The planned course: phase reports, gates, kills.
    Course,
    /// On rung `rung` of the teardown ladder, sent at `since`.
    Ladder { rung: usize, since: u64 },
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
        Stage::Course | Stage::Ladder { .. } => Step::Wait,
    }
}
