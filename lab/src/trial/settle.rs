//! The cascade after the teardown, judged from evidence: one step of the
//! course in [`Stage::Settle`](super::judge::Stage), from what the pidfds,
//! the cgroup and the trial's processes show to the judge's
//! [`settle`](super::judge::settle), and what the course does with it.

use super::judge::ACTING_BOUND_US;
use super::judge::{self, Clock, Ending, Look, OrphanBy, Quiet, Stage, Stall, Step};
use super::Course;
use crate::verdict::{Outcome, Rung, Verdict};

/// The shortest and longest time between two looks at a busy trial's
/// processes after the teardown (µs): nothing reports when a runnable
/// process falls asleep, so the course looks again, more often at first.
const LOOK_MIN_US: u64 = 250;
const LOOK_MAX_US: u64 = 10_000;
/// How long after the last death the course waits before it looks (µs):
/// while deaths still arrive through the pidfds the cascade is visibly
/// under way, and a look would only find it busy. This spaces the looks; it
/// decides nothing.
const LOOK_QUIET_US: u64 = 500;

/// The times the cascade is judged by (ns), its largest gap (µs), and when
/// the trial's processes are next looked at (ns). The course fills it as
/// deaths arrive; a settle step reads it and sets the next look.
#[derive(Default)]
pub(super) struct Deaths {
    /// When the teardown began (ns; 0 before it).
    pub teardown_at: u64,
    /// When the last death was seen (ns).
    pub last: u64,
    /// The largest gap between two deaths of the cascade (µs).
    pub max_gap_us: u64,
    /// When the trial's processes are next looked at (ns), before
    /// [`Deaths::next_look_at`] spaces it from the last death.
    pub next_look: u64,
}

impl Deaths {
    /// When the trial's processes are next looked at (ns): at the look
    /// interval's end, and no sooner than [`LOOK_QUIET_US`] after the last
    /// death.
    pub(super) fn next_look_at(&self) -> u64 {
        self.next_look.max(self.last + LOOK_QUIET_US * 1000)
    }
}

/// What one settle step came to.
pub(super) enum Settled {
    /// Nothing yet: wait for an event or [`Deaths::next_look`].
    Wait,
    /// Step again at once (a survivor exited before its re-check).
    Again,
    /// Go on to this stage (windows, where `/proc` cannot be read).
    Next(Stage),
    /// The verdict (boxed: an outcome is large, the other steps small).
    Done(Box<Outcome>),
}

impl Course<'_> {
    /// One step of the cascade from evidence, in the stage begun at `since`
    /// (ns), under `rung`. Emptiness (pidfds, the cgroup) is read at every
    /// wake; the processes, which say nothing when they fall asleep, at
    /// most every look interval, and not within [`LOOK_QUIET_US`] of the
    /// last death ([`Deaths::next_look_at`]).
    pub(super) fn settle(
        &mut self,
        since: u64,
        now: u64,
        deaths: &mut Deaths,
        rung: Rung,
    ) -> Settled {
        let look = if now >= deaths.next_look_at() {
            deaths.next_look = now + look_interval_ns(since, now);
            let look = self.look();
            self.looked();
            look
        } else if self.empty() {
            Look::Empty
        } else {
            return Settled::Wait;
        };
        let (alive, acting) = match &look {
            Look::Seen(Quiet::Quiescent { alive }) => (alive.clone(), Vec::new()),
            Look::Seen(Quiet::Busy { acting, .. }) => (Vec::new(), acting.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        if !acting.is_empty() && now - since > ACTING_BOUND_US * 100 {
            // A tenth of the bound: from here the CPU time tells spinning
            // from starved.
            self.snapshot_cpu();
        }
        let clock = Clock {
            now,
            teardown_at: deaths.teardown_at,
            last_death: deaths.last,
            window_us: 0,
        };
        let end = |verdict, reason| Ending::new(verdict, reason, rung);
        match judge::settle(since, clock, look) {
            Step::Wait => Settled::Wait,
            Step::Next(next) => Settled::Next(next),
            Step::Pass { slow_us } => Settled::Done(Box::new(self.finish(Ending {
                slow_us,
                ..end(Verdict::Pass, None)
            }))),
            Step::Orphan if self.survivors_still_alive(&alive) => {
                Settled::Done(Box::new(self.finish_orphans(rung, OrphanBy::Quiescence, 0)))
            }
            // A survivor exited between the look and its re-check.
            Step::Orphan => {
                deaths.next_look = now;
                Settled::Again
            }
            Step::Undying { since_teardown_ms } => {
                Settled::Done(Box::new(self.finish_undying(rung, since_teardown_ms)))
            }
            Step::Stalled => Settled::Done(Box::new(match self.stall(&acting) {
                Stall::Spinning { .. } => self.finish_orphans(rung, OrphanBy::Running, 0),
                Stall::Starved { ran_ms, of_ms } => {
                    let reason = format!(
                        "starved: after the teardown the trial's processes stayed runnable and ran \
                         {ran_ms} ms on a CPU in {of_ms} ms (the machine is oversubscribed; not a \
                         verdict about the strategy)"
                    );
                    self.finish(end(Verdict::Error, Some(reason)))
                }
            })),
        }
    }
}

/// How long after a look at a busy trial the next one is due (ns): a
/// quarter of the time since the cascade began, within [`LOOK_MIN_US`] and
/// [`LOOK_MAX_US`].
fn look_interval_ns(since: u64, now: u64) -> u64 {
    (now.saturating_sub(since) / 4).clamp(LOOK_MIN_US * 1000, LOOK_MAX_US * 1000)
}
