//! A course past its deadline: a `hang` needs a blocked process
//! ([`judge::overdue`]); a trial still busy has its deadline extended up to
//! [`DEADLINE_CAP`] times, then the CPU time its processes got tells
//! spinning (a `hang`) from starved (an `error`).

use std::ops::ControlFlow;

use super::judge::{self, Ending, Look, Overdue, Quiet, Stall, DEADLINE_CAP};
use super::Course;
use crate::verdict::{Outcome, Rung, Verdict};

impl Course<'_> {
    /// The course is past `deadline`: a `hang` needs a blocked process
    /// ([`judge::overdue`]). `Continue`: the new deadline while the trial is
    /// busy or progressing (up to [`DEADLINE_CAP`] times the deadline), or
    /// `now` when a report came while `/proc` was read; `Break`: the outcome
    /// (a hang, a spinning hang, or an `error` when starved).
    ///
    /// `phases` is the supervisor end of the open phase channel, drained
    /// just before. A node that reports and then sleeps between that drain
    /// and the look (a node that says it is at its gate, then waits there)
    /// looks blocked with no report: a report waiting after the look voids
    /// it, and the course reads it before looking again.
    pub(super) fn overdue(
        &mut self,
        now: u64,
        phases: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> ControlFlow<Outcome, u64> {
        let look = self.look();
        if phases.is_some_and(|fd| crate::phase::pending(fd).unwrap_or(false)) {
            return ControlFlow::Continue(now);
        }
        self.looked();
        // A report since the previous look at the overdue trial; at the
        // first look there is none to compare with, and what the processes
        // are doing decides alone.
        let progressed = self.reports_at_look.is_some_and(|n| n != self.reports);
        self.reports_at_look = Some(self.reports);
        let step = self.req.deadline_us * 1000;
        let cap = self.t0 + DEADLINE_CAP * step;
        let rung = Rung::None;
        match judge::overdue(&look, progressed, now >= cap) {
            Overdue::Extend => {
                self.snapshot_cpu();
                ControlFlow::Continue((now + step).min(cap))
            }
            Overdue::Hang => {
                let blocked = match &look {
                    Look::Seen(Quiet::Quiescent { alive }) => Some(alive.clone()),
                    _ => None,
                };
                ControlFlow::Break(self.finish_hang(rung, blocked.as_deref()))
            }
            Overdue::Stalled => {
                let acting = match &look {
                    Look::Seen(Quiet::Busy { acting, dying }) => {
                        acting.iter().chain(dying).copied().collect()
                    }
                    _ => Vec::new(),
                };
                ControlFlow::Break(match self.stall(&acting) {
                    Stall::Spinning { pid, .. } => self.finish_spinning(rung, pid),
                    Stall::Starved { ran_ms, of_ms } => {
                        let reason = format!(
                            "starved: the course did not finish within {DEADLINE_CAP}x its deadline \
                             ({} ms) while its processes stayed runnable; they ran {ran_ms} ms on a CPU \
                             in the last {of_ms} ms (the machine is oversubscribed; not a verdict about \
                             the strategy)",
                            self.req.deadline_us / 1000
                        );
                        self.finish(Ending::new(Verdict::Error, Some(reason), rung))
                    }
                })
            }
            Overdue::Vanished => {
                let reason = "the course did not settle although nothing of the trial is alive \
                              (a phase report was lost)"
                    .to_string();
                ControlFlow::Break(self.finish(Ending::new(Verdict::Error, Some(reason), rung)))
            }
        }
    }
}
