//! The rules that read evidence: quiescence, the cascade from it, and a
//! trial busy past its bound (spinning, starved, extended, blocked).

use super::super::*;
use super::MS;
use crate::trial::activity::{Activity, CpuTime, Task};

fn task(tid: i32, state: char) -> Task {
    Task {
        tid,
        state,
        ..Task::default()
    }
}

fn process(pid: i32, states: &[char]) -> Activity {
    Activity {
        pid,
        ppid: 1,
        tasks: states
            .iter()
            .enumerate()
            .map(|(k, &s)| task(pid + k as i32 * 1000, s))
            .collect(),
        model: false,
        timed_wait: false,
    }
}

fn clock(now_ms: u64) -> Clock {
    Clock {
        now: now_ms * MS,
        teardown_at: 100 * MS,
        last_death: 100 * MS,
        window_us: 0,
    }
}

fn quiescent(alive: &[i32]) -> Look {
    Look::Seen(Quiet::Quiescent {
        alive: alive.to_vec(),
    })
}

#[test]
fn asleep_with_nothing_pending_is_quiescent_and_zombies_are_not_alive() {
    let seen = [
        process(2, &['S']),
        process(3, &['Z']),
        process(4, &['S', 'T']),
    ];
    assert_eq!(
        quiescence(&seen, &[], &[]),
        Quiet::Quiescent { alive: vec![2, 4] }
    );
    // A zombie leader with a live thread is alive.
    assert_eq!(
        quiescence(&[process(5, &['Z', 'S'])], &[], &[]),
        Quiet::Quiescent { alive: vec![5] }
    );
    assert_eq!(
        quiescence(&[], &[], &[]),
        Quiet::Quiescent { alive: vec![] }
    );
}

#[test]
fn whatever_can_still_act_or_die_keeps_the_trial_busy() {
    // Runnable, or uninterruptible: acting.
    let q = quiescence(&[process(2, &['S', 'R']), process(3, &['D'])], &[], &[]);
    assert_eq!(
        q,
        Quiet::Busy {
            dying: vec![],
            acting: vec![2, 3]
        }
    );
    assert!(q.acting());
    // Asleep, but a signal it does not block is pending: it will wake.
    let mut woken = process(2, &['S']);
    woken.tasks[0].deliverable = true;
    // Asleep in a timed wait the plan gave it: it wakes by itself.
    let mut timed = process(3, &['S']);
    timed.timed_wait = true;
    // SIGKILL pending: dying, not acting.
    let mut dying = process(4, &['S']);
    dying.tasks[0].sigkill = true;
    dying.tasks[0].deliverable = true;
    let q = quiescence(&[woken, timed, dying, process(5, &['S'])], &[], &[]);
    assert_eq!(
        q,
        Quiet::Busy {
            dying: vec![4],
            acting: vec![2, 3]
        }
    );
    // A node the supervisor SIGKILLed whose exit no pidfd reported yet:
    // its death is awaited even if /proc shows it asleep (or not at all).
    let q = quiescence(&[process(6, &['S'])], &[6, 7], &[]);
    assert_eq!(
        q,
        Quiet::Busy {
            dying: vec![6, 7],
            acting: vec![]
        }
    );
    assert!(!q.acting());
    // A node whose gate the supervisor just opened acts, even when /proc
    // still shows it asleep at the gate (the wake-up has not reached it):
    // it owes its next report. The others are judged as usual.
    let q = quiescence(&[process(10, &['S']), process(11, &['S'])], &[], &[10]);
    assert_eq!(
        q,
        Quiet::Busy {
            dying: vec![],
            acting: vec![10]
        }
    );
    assert!(q.acting());
    // A model node's background threads (hazard, attendant) do not count;
    // a process outside the plan's every thread does.
    let mut node = process(8, &['S', 'R']);
    node.model = true;
    assert_eq!(
        quiescence(&[node, process(9, &['S', 'R'])], &[], &[]),
        Quiet::Busy {
            dying: vec![],
            acting: vec![9]
        }
    );
}

#[test]
fn the_cascade_from_evidence() {
    let since = 100 * MS;
    // Empty: a pass; slow only past the window floor.
    assert_eq!(
        settle(since, clock(105), Look::Empty),
        Step::Pass { slow_us: None }
    );
    assert_eq!(
        settle(since, clock(150), Look::Empty),
        Step::Pass {
            slow_us: Some(50_000)
        }
    );
    // Quiescent with something alive: an orphan at once, whatever the time.
    assert_eq!(settle(since, clock(100), quiescent(&[9])), Step::Orphan);
    // Quiescent with only zombies: the pidfds will say so; look again.
    assert_eq!(settle(since, clock(100), quiescent(&[])), Step::Wait);
    // No /proc: windows.
    assert_eq!(
        settle(since, clock(101), Look::Unreadable),
        Step::Next(Stage::Grace)
    );
    // Busy: wait, up to the bounds.
    let acting = Look::Seen(Quiet::Busy {
        dying: vec![],
        acting: vec![9],
    });
    let dying = Look::Seen(Quiet::Busy {
        dying: vec![9],
        acting: vec![],
    });
    let bound_ms = ACTING_BOUND_US / 1000;
    assert_eq!(
        settle(since, clock(100 + bound_ms), acting.clone()),
        Step::Wait
    );
    assert_eq!(settle(since, clock(101 + bound_ms), acting), Step::Stalled);
    assert_eq!(
        settle(since, clock(101 + bound_ms), dying.clone()),
        Step::Wait
    );
    let dying_ms = DYING_BOUND_US / 1000;
    assert_eq!(
        settle(since, clock(101 + dying_ms), dying),
        Step::Undying {
            since_teardown_ms: 1 + dying_ms
        }
    );
}

fn cpu(run_ms: u64) -> CpuTime {
    CpuTime {
        run_ns: run_ms * MS,
    }
}

#[test]
fn cpu_time_tells_spinning_from_starved() {
    let before = [(2, cpu(1)), (3, cpu(5))];
    // Process 3 ran 60 ms of the 900: spinning.
    let after = [(2, cpu(2)), (3, cpu(65)), (4, cpu(1))];
    assert_eq!(
        stall(&before, &after, &[2, 3], 900 * MS),
        Stall::Spinning {
            pid: 3,
            ran_ms: 60,
            of_ms: 900
        }
    );
    // Only what the acting processes got counts for spinning.
    assert!(matches!(
        stall(&before, &after, &[2], 900 * MS),
        Stall::Starved {
            ran_ms: 62,
            of_ms: 900
        }
    ));
    // A process born after the snapshot counts from zero.
    let after = [(4, cpu(70))];
    assert!(matches!(
        stall(&before, &after, &[4], 900 * MS),
        Stall::Spinning {
            pid: 4,
            ran_ms: 70,
            ..
        }
    ));
}

#[test]
fn a_hang_needs_a_blocked_process() {
    let busy = Look::Seen(Quiet::Busy {
        dying: vec![],
        acting: vec![2],
    });
    // Something blocked and nothing moves: a hang, before or at the cap.
    assert_eq!(overdue(&quiescent(&[2]), false, false), Overdue::Hang);
    assert_eq!(overdue(&quiescent(&[2]), false, true), Overdue::Hang);
    // A report since the last look: extend, even if all sleep now.
    assert_eq!(overdue(&quiescent(&[2]), true, false), Overdue::Extend);
    // Runnable: extend, and at the cap tell spinning from starved.
    assert_eq!(overdue(&busy, false, false), Overdue::Extend);
    assert_eq!(overdue(&busy, false, true), Overdue::Stalled);
    // Nothing alive although the course never settled: wait for the
    // reports in flight, then an error.
    assert_eq!(overdue(&Look::Empty, false, false), Overdue::Extend);
    assert_eq!(overdue(&quiescent(&[]), false, true), Overdue::Vanished);
    // No /proc: the deadline is all there is.
    assert_eq!(overdue(&Look::Unreadable, true, false), Overdue::Hang);
}
