//! The cascade rules: orphan, slow cascade, dying only, undying.

use super::super::*;
use super::{alive, plan, ran, MS};
use crate::signal::Sig;

fn clock(now_ms: u64, last_death_ms: u64) -> Clock {
    Clock {
        now: now_ms * MS,
        teardown_at: 100 * MS,
        last_death: last_death_ms * MS,
        window_us: 10_000,
    }
}

fn never() -> bool {
    panic!("dying_only is asked only when the confirmation window ends with something alive")
}

#[test]
fn what_outlives_both_windows_is_an_orphan() {
    // Within the grace window (10 ms from the last death at 105 ms): wait.
    assert_eq!(
        cascade(Stage::Grace, clock(115, 105), false, never),
        Step::Wait
    );
    // The grace window is over: confirm, from now.
    assert_eq!(
        cascade(Stage::Grace, clock(116, 105), false, never),
        Step::Next(Stage::Confirm { since: 116 * MS })
    );
    // Within the confirmation window: wait.
    let confirm = Stage::Confirm { since: 116 * MS };
    assert_eq!(cascade(confirm, clock(126, 105), false, never), Step::Wait);
    // A death during it restarts the count from the death.
    assert_eq!(cascade(confirm, clock(130, 125), false, never), Step::Wait);
    // Over, something alive, and not only SIGKILLed processes: orphan.
    assert_eq!(
        cascade(confirm, clock(127, 105), false, || false),
        Step::Orphan
    );
    let p = plan("nested");
    let o = orphans(
        &p,
        &ran(&p),
        alive(&["0.0", "0.0.1"], 3),
        Rung::Root(Sig::Kill),
        OrphanBy::Windows,
        10_000,
        0,
    );
    assert_eq!(o.verdict, Verdict::Orphan);
    assert_eq!(
        o.reason.as_deref(),
        Some(
            "alive after the teardown (teardown-KILL) and both cascade windows (/proc could not be \
             read): nodes 0.0 0.0.1 and 1 process outside the plan"
        )
    );
    assert_eq!((o.orphans, o.survivors.len(), o.window_us), (3, 2, 10_000));
    let o = orphans(
        &p,
        &ran(&p),
        alive(&[], 2),
        Rung::CgroupKill,
        OrphanBy::Quiescence,
        0,
        0,
    );
    assert_eq!(
        o.reason.as_deref(),
        Some(
            "alive after the teardown (cgroup.kill) once the trial was quiescent (every live \
             process asleep, no signal pending, every caused death observed): 2 processes \
             outside the plan"
        )
    );
}

#[test]
fn an_empty_trial_in_the_confirmation_window_is_a_slow_cascade_pass() {
    let confirm = Stage::Confirm { since: 116 * MS };
    assert_eq!(
        cascade(confirm, clock(120, 105), true, never),
        Step::Pass {
            slow_us: Some(20_000)
        }
    );
    // Empty in the grace window: a pass, not slow.
    assert_eq!(
        cascade(Stage::Grace, clock(108, 105), true, never),
        Step::Pass { slow_us: None }
    );
    let p = plan("nested");
    let end = Ending {
        slow_us: Some(20_000),
        window_us: 10_000,
        ..Ending::new(Verdict::Pass, None, Rung::Root(Sig::Kill))
    };
    let o = outcome(&p, &ran(&p), end, 0);
    assert_eq!(
        (o.verdict, o.slow_cascade_us),
        (Verdict::Pass, Some(20_000))
    );
}

#[test]
fn sigkilled_processes_that_are_only_dying_are_waited_for() {
    let confirm = Stage::Confirm { since: 116 * MS };
    assert_eq!(
        cascade(confirm, clock(127, 105), false, || true),
        Step::Next(Stage::Dying { since: 127 * MS })
    );
    let dying = Stage::Dying { since: 127 * MS };
    assert_eq!(cascade(dying, clock(900, 105), false, never), Step::Wait);
    // They died: a slow cascade, from the teardown.
    assert_eq!(
        cascade(dying, clock(900, 105), true, never),
        Step::Pass {
            slow_us: Some(800_000)
        }
    );
}

#[test]
fn a_sigkilled_process_that_does_not_die_is_a_hang() {
    let dying = Stage::Dying { since: 127 * MS };
    let bound = 127 * MS + DYING_BOUND_US * 1000;
    let c = |now| Clock {
        now,
        ..clock(0, 105)
    };
    assert_eq!(cascade(dying, c(bound), false, never), Step::Wait);
    assert_eq!(
        cascade(dying, c(bound + 1), false, never),
        Step::Undying {
            since_teardown_ms: (bound + 1 - 100 * MS) / 1_000_000
        }
    );
    let p = plan("nested");
    let o = undying(&p, &ran(&p), alive(&["0.1"], 1), Rung::CgroupKill, 2_027, 0);
    assert_eq!(o.verdict, Verdict::Hang);
    assert_eq!(
        o.reason.as_deref(),
        Some(
            "SIGKILLed by the supervisor and still alive 2027 ms after the teardown \
             (cgroup.kill): nodes 0.1; a process that does not die of SIGKILL sleeps \
             uninterruptibly (state D)"
        )
    );
    // The rung that failed stays the kill rung.
    assert_eq!((o.hung, o.kill_rung), (1, Rung::CgroupKill));
    let o = undying(&p, &ran(&p), alive(&[], 1), Rung::CgroupKill, 2_027, 0);
    assert!(o
        .reason
        .unwrap()
        .contains("(cgroup.kill): processes outside the plan;"));
}
