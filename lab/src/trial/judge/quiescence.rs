//! The quiescence rule (`docs/design.md`, section "One trial"): whether
//! anything of the trial can still happen by itself, from what `/proc`
//! showed of its live processes ([`Activity`]) and what the course observed
//! through pidfds.
//!
//! It rests on the order of `do_exit` (kernel/exit.c): a dying process
//! closes its files first (`exit_files`, then the deferred final `fput`s in
//! `exit_task_work`: the last write end of a lifeline closes and its reader
//! is woken), then `exit_notify` calls `forget_original_parent`, which
//! re-parents its children and sends each child's `pdeath_signal`
//! (`group_send_sig_info`), and only then sets `exit_state` and calls
//! `do_notify_pidfd`; a pidfd reads as exited once `thread_group_exited`
//! (kernel/pid.c, kernel/exit.c) sees that `exit_state`. So once a process's
//! exit has been observed through its pidfd, every consequence of that death
//! for its children is already in flight: a pending signal or a wake-up that
//! made the child runnable. A child that is asleep with no signal pending
//! that it does not block will not be woken by that death. The same holds
//! for a death observed as a zombie (`Z`, `exit_state` set), and a process
//! still inside `do_exit` shows as running (`R` or `D`), which keeps the
//! trial busy until it is a zombie.

use super::super::activity::Activity;

/// What the live processes of a trial can still do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::trial) enum Quiet {
    /// Nothing of the trial can act by itself: every live process is
    /// asleep (or stopped) with no signal pending that it does not block,
    /// no model node sits in a timed wait, and every death the supervisor
    /// caused was observed. `alive` are the PIDs still alive (zombies left
    /// out: an exited process is never an orphan).
    Quiescent { alive: Vec<i32> },
    /// Something can: `dying` have SIGKILL pending, or are nodes the
    /// supervisor SIGKILLed whose exit was not observed yet; `acting` are
    /// runnable, in an uninterruptible sleep, have a signal to take, or are
    /// model nodes in a timed wait their plan gave them. Of a model node
    /// only the main thread counts: its other threads are the plan's
    /// background (hazard threads cycling on a mutex, an attendant's
    /// worker), which neither ends it nor moves its course.
    Busy { dying: Vec<i32>, acting: Vec<i32> },
}

impl Quiet {
    /// Whether some process can still act (not only die).
    pub fn acting(&self) -> bool {
        matches!(self, Quiet::Busy { acting, .. } if !acting.is_empty())
    }
}

/// Judge `seen` (every process of the trial `/proc` listed, zombies
/// included), given `unobserved_kills`: PIDs of the nodes the supervisor
/// SIGKILLed whose exit no pidfd has reported yet; and `released`: PIDs of
/// the nodes whose gate the supervisor opened since its previous look. A
/// released node was woken by the supervisor itself and owes its next
/// report: it counts as acting whatever `/proc` shows of it (a wake-up
/// that has not reached its task state yet, or a run queue it waits on),
/// until the next look.
pub(in crate::trial) fn quiescence(
    seen: &[Activity],
    unobserved_kills: &[i32],
    released: &[i32],
) -> Quiet {
    let mut alive = Vec::new();
    let mut dying: Vec<i32> = unobserved_kills.to_vec();
    let mut acting: Vec<i32> = released
        .iter()
        .copied()
        .filter(|pid| !dying.contains(pid))
        .collect();
    for a in seen {
        if acting.contains(&a.pid) {
            continue;
        }
        let live: Vec<_> = a
            .tasks
            .iter()
            .filter(|t| !matches!(t.state, 'Z' | 'X'))
            .collect();
        if live.is_empty() {
            continue; // a zombie: it exited
        }
        if live.iter().any(|t| t.sigkill) || a.tasks[0].state == 'X' {
            if !dying.contains(&a.pid) {
                dying.push(a.pid);
            }
            continue;
        }
        let asleep = |s: char| matches!(s, 'S' | 'T' | 't' | 'I');
        let main_alive = live[0].tid == a.pid;
        let counted = if a.model && main_alive {
            &live[..1]
        } else {
            &live[..]
        };
        if counted.iter().any(|t| !asleep(t.state) || t.deliverable) || a.timed_wait {
            acting.push(a.pid);
            continue;
        }
        if !dying.contains(&a.pid) {
            alive.push(a.pid);
        }
    }
    if dying.is_empty() && acting.is_empty() {
        Quiet::Quiescent { alive }
    } else {
        Quiet::Busy { dying, acting }
    }
}
