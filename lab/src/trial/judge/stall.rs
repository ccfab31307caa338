//! A trial that is still busy past a bound: at its deadline (a hang needs a
//! blocked process, [`overdue`]), or after the teardown (processes that can
//! still act, [`stall`]). Runnable processes mean the trial is starved or
//! spinning, not hung: the CPU time they got tells the two apart.

use super::super::activity::CpuTime;
use super::cascade::Look;
use super::quiescence::Quiet;

/// A process that got this much CPU time (µs) while the trial was busy past
/// its bound, without a phase report, is spinning: a model node needs
/// microseconds of CPU between two reports, and a starved one gets almost
/// none.
pub(in crate::trial) const SPIN_CPU_US: u64 = 50_000;

/// The longest a trial's deadline is extended while it is busy: this many
/// times the deadline, from the trial's start.
pub(in crate::trial) const DEADLINE_CAP: u64 = 10;

/// What a busy trial came to at its bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Stall {
    /// `pid` was on a CPU for `ran_ms` of the `of_ms` since the bound was
    /// first reached: it spins.
    Spinning { pid: i32, ran_ms: u64, of_ms: u64 },
    /// The trial's processes were on a CPU for `ran_ms` of `of_ms`
    /// altogether: the machine starved it; not a verdict about the strategy.
    Starved { ran_ms: u64, of_ms: u64 },
}

/// Tell spinning from starved over `of_ns` ns: `before` and `after` are the
/// CPU times of the trial's processes at its start and end, `acting` the
/// processes that kept it busy. The process of `acting` that got the most
/// CPU time spins if that is at least [`SPIN_CPU_US`]; a process absent from
/// `before` counts from zero.
pub(in crate::trial) fn stall(
    before: &[(i32, CpuTime)],
    after: &[(i32, CpuTime)],
    acting: &[i32],
    of_ns: u64,
) -> Stall {
    let ran = |pid: i32, now: CpuTime| {
        let then = before
            .iter()
            .find(|(p, _)| *p == pid)
            .map_or(0, |(_, t)| t.run_ns);
        now.run_ns.saturating_sub(then)
    };
    let of_ms = of_ns / 1_000_000;
    let top = after
        .iter()
        .filter(|(p, _)| acting.contains(p))
        .map(|&(p, t)| (p, ran(p, t)))
        .max_by_key(|&(_, r)| r);
    match top {
        Some((pid, r)) if r >= SPIN_CPU_US * 1000 => Stall::Spinning {
            pid,
            ran_ms: r / 1_000_000,
            of_ms,
        },
        _ => Stall::Starved {
            ran_ms: after.iter().map(|&(p, t)| ran(p, t)).sum::<u64>() / 1_000_000,
            of_ms,
        },
    }
}

/// What a course that missed its deadline comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Overdue {
    /// It is not blocked (something runs, or a phase report came since the
    /// last look): extend the deadline.
    Extend,
    /// Some live process is blocked, and nothing else moves: a `hang`.
    Hang,
    /// At the cap ([`DEADLINE_CAP`]), still busy: [`stall`] decides.
    Stalled,
    /// At the cap, nothing of the trial is alive although the course never
    /// settled: the lab lost track of it (an `error`).
    Vanished,
}

/// A course at its deadline, from `look` (what the trial's live processes
/// can do), whether a phase report arrived since the last look
/// (`progressed`), and whether the extensions reached the cap.
pub(in crate::trial) fn overdue(look: &Look, progressed: bool, at_cap: bool) -> Overdue {
    match look {
        // Without `/proc`, a trial cannot be told blocked from busy: the
        // deadline is all there is.
        Look::Unreadable => Overdue::Hang,
        _ if progressed && !at_cap => Overdue::Extend,
        Look::Empty | Look::Seen(Quiet::Quiescent { .. }) if look_is_empty(look) => {
            if at_cap {
                Overdue::Vanished
            } else {
                Overdue::Extend
            }
        }
        Look::Seen(Quiet::Quiescent { .. }) => Overdue::Hang,
        _ if at_cap => Overdue::Stalled,
        _ => Overdue::Extend,
    }
}

/// Whether `look` shows nothing alive.
fn look_is_empty(look: &Look) -> bool {
    match look {
        Look::Empty => true,
        Look::Seen(Quiet::Quiescent { alive }) => alive.is_empty(),
        _ => false,
    }
}
