//! Every verdict rule of the judge, on constructed observations.

use super::*;
use crate::forensics::Signature;
use crate::scenario::{AttendantAction, Scenario, BUILTIN};
use crate::signal::Sig;

pub(super) const MS: u64 = 1_000_000;

/// The plan of a builtin scenario, seed 1.
pub(super) fn plan(name: &str) -> Plan {
    let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
    Plan::new(&Scenario::parse(name, text).unwrap(), 1)
}

pub(super) fn at(plan: &Plan, path: &str) -> usize {
    plan.nodes.iter().position(|n| n.path == path).unwrap()
}

/// Every node of `plan` created (at 1 ms), armed (2 ms), watched and ready.
pub(super) fn ran(plan: &Plan) -> Observation {
    let node = Seen {
        created_ns: Some(MS),
        armed_ns: Some(2 * MS),
        ready: true,
        watched: true,
        ..Seen::default()
    };
    Observation {
        nodes: vec![node; plan.nodes.len()],
        cgroup: true,
        ..Observation::default()
    }
}

pub(super) fn ending(verdict: Verdict) -> Ending {
    Ending::new(
        verdict,
        Some(format!("the course said {verdict}")),
        Rung::Root(Sig::Kill),
    )
}

pub(super) fn alive(paths: &[&str], count: u32) -> Alive {
    Alive {
        paths: paths.iter().map(|p| p.to_string()).collect(),
        count,
        outside: Vec::new(),
        outside_commands: Vec::new(),
    }
}

fn guard() -> GuardPanic {
    GuardPanic {
        reason: "a guard stopped it".into(),
        site: "lab/src/node/audit.rs:96".into(),
        signature: Some(Signature::DuplicatedStdio),
    }
}

/// An observation with every harm at once: a guard's panic, an innocent
/// kill, an early death and a leak.
fn harmed(plan: &Plan) -> Observation {
    let mut obs = ran(plan);
    obs.panic = Some(guard());
    obs.findings = vec![Finding::InnocentKill];
    obs.early = Some("node 0 died early".into());
    obs.leaks = vec!["leak one".into(), "leak two".into()];
    obs
}

#[test]
fn a_cascade_that_left_nothing_passes() {
    let p = plan("nested");
    let mut obs = ran(&p);
    obs.nodes[0].rung = Some(Rung::Root(Sig::Kill));
    obs.nodes[at(&p, "0.1")].rung = Some(Rung::Pidfds(Sig::Kill));
    let end = Ending {
        window_us: 12_000,
        ..Ending::new(Verdict::Pass, None, Rung::Root(Sig::Kill))
    };
    let o = outcome(&p, &obs, end, 42);
    assert_eq!((o.verdict, o.reason.as_deref()), (Verdict::Pass, None));
    assert_eq!(o.kill_rung.to_string(), "teardown-KILL");
    assert_eq!(
        crate::verdict::words(&o.node_rungs),
        "root=teardown-KILL 0.1=pidfds-KILL"
    );
    assert_eq!(
        (o.window_us, o.time_to_verdict_us, o.slow_cascade_us),
        (12_000, 42, None)
    );
    assert_eq!(o.nodes_spawned, 15);
    assert!(o.cgroup && o.panic_site.is_none() && o.signatures.is_empty());
}

#[test]
fn a_node_that_could_not_spawn_is_an_error_before_everything() {
    let p = plan("nested");
    let mut obs = harmed(&p);
    obs.nodes[at(&p, "0")].failed = Some(libc::EAGAIN as i64);
    for v in [Verdict::Pass, Verdict::Hang, Verdict::Orphan] {
        let o = outcome(&p, &obs, ending(v), 0);
        assert_eq!(o.verdict, Verdict::Error);
        let r = o.reason.unwrap();
        assert!(r.starts_with("node 0 could not spawn a child: "), "{r}");
        // The panic did not make the verdict: no site, no signature.
        assert!(o.panic_site.is_none() && o.signatures.is_empty());
    }
}

#[test]
fn a_pid_reuse_experiment_that_proves_nothing_is_an_error() {
    let p = plan("pid-reuse");
    let mut obs = ran(&p);
    obs.findings = vec![Finding::NoPrivilege];
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(o.verdict, Verdict::Error);
    assert!(o
        .reason
        .unwrap()
        .starts_with("pid-reuse: no private PID namespace"));
    obs.findings = vec![Finding::NoReuse, Finding::InnocentKill];
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(
        (o.verdict, o.reason.as_deref()),
        (
            Verdict::Error,
            Some("pid-reuse: the victim's PID was not handed out again")
        )
    );
}

#[test]
fn the_courses_own_error_outranks_a_panic() {
    let p = plan("nested");
    let o = outcome(&p, &harmed(&p), ending(Verdict::Error), 0);
    assert_eq!(o.verdict, Verdict::Error);
    assert_eq!(o.reason.as_deref(), Some("the course said error"));
}

#[test]
fn a_panic_outranks_a_hang_and_names_its_site_and_signature() {
    let p = plan("nested");
    let obs = harmed(&p);
    let o = hang(&p, &obs, alive(&["0"], 1), None, 300, None, Rung::None, 7);
    assert_eq!(o.verdict, Verdict::Panic);
    assert_eq!(o.reason.as_deref(), Some("a guard stopped it"));
    assert_eq!(o.panic_site.as_deref(), Some("lab/src/node/audit.rs:96"));
    assert_eq!(o.signatures, [Signature::DuplicatedStdio]);
    // Not a hang: no count, no survivors, and no cleanup rung.
    assert_eq!((o.hung, o.survivors.len(), o.kill_rung), (0, 0, Rung::None));
}

#[test]
fn a_hang_outranks_the_harms() {
    let p = plan("nested");
    let mut obs = harmed(&p);
    obs.panic = None;
    let o = hang(
        &p,
        &obs,
        alive(&["0", "0.1"], 3),
        None,
        300,
        None,
        Rung::None,
        0,
    );
    assert_eq!(o.verdict, Verdict::Hang);
    assert_eq!(
        (o.hung, o.survivors.clone()),
        (3, vec!["0".into(), "0.1".into()])
    );
    assert_eq!(o.kill_rung, Rung::Cleanup);
}

#[test]
fn an_innocent_kill_outranks_an_early_death_a_leak_and_the_cascade() {
    let p = plan("nested");
    let mut obs = harmed(&p);
    obs.panic = None;
    let o = orphans(
        &p,
        &obs,
        alive(&["0"], 1),
        Rung::Root(Sig::Kill),
        OrphanBy::Quiescence,
        0,
        0,
    );
    assert_eq!(o.verdict, Verdict::InnocentKill);
    assert!(o
        .reason
        .unwrap()
        .contains("killed the bystander that was given its PID"));
    assert_eq!((o.orphans, o.survivors.len()), (0, 0));
}

/// A kill by PID that reached a process outside the trial (the fallback
/// without a PID namespace) is an innocent kill too, ranked alike, with
/// the course's words as its reason.
#[test]
fn a_stray_kill_by_pid_is_an_innocent_kill() {
    let p = plan("nested");
    let mut obs = harmed(&p);
    obs.panic = None;
    obs.findings.clear();
    obs.stray_kills = vec!["a signal sent by PID (KILL) to node 0.1 reached pid 7".into()];
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(
        (o.verdict, o.reason.as_deref()),
        (
            Verdict::InnocentKill,
            Some("a signal sent by PID (KILL) to node 0.1 reached pid 7")
        )
    );
    obs.stray_kills.clear();
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(o.verdict, Verdict::EarlyDeath);
}

#[test]
fn an_early_death_outranks_a_leak() {
    let p = plan("nested");
    let mut obs = harmed(&p);
    obs.panic = None;
    obs.findings = vec![Finding::Unharmed];
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(
        (o.verdict, o.reason.as_deref()),
        (Verdict::EarlyDeath, Some("node 0 died early"))
    );
}

#[test]
fn a_command_that_ended_otherwise_is_a_fail_below_a_leak() {
    let mut p = plan("nested");
    let leaf = at(&p, "0.0.0");
    p.nodes[leaf].command = Some(vec!["prog".into(), "-x".into()]);
    let mut obs = ran(&p);
    // Exit 0 as expected: what the cascade came to.
    obs.nodes[leaf].exit = Some(0);
    assert_eq!(
        outcome(&p, &obs, ending(Verdict::Orphan), 0).verdict,
        Verdict::Orphan
    );
    // Ended by SIGSEGV (256 + 11): a fail, over the cascade, whose reason
    // says what the cascade left too.
    obs.nodes[leaf].exit = Some(256 + 11);
    let o = outcome(&p, &obs, ending(Verdict::Orphan), 0);
    assert_eq!(
        (o.verdict, o.reason.as_deref()),
        (
            Verdict::Fail,
            Some(
                "command node 0.0.0 (`prog -x`) was ended by SIGSEGV; expected exit status 0; \
                 besides, the course said orphan"
            )
        )
    );
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(
        o.reason.as_deref(),
        Some("command node 0.0.0 (`prog -x`) was ended by SIGSEGV; expected exit status 0")
    );
    // Its status expected: a pass; a signal of the plan's: not its fault.
    p.nodes[leaf].expect_exit = 3;
    obs.nodes[leaf].exit = Some(3);
    assert_eq!(
        outcome(&p, &obs, ending(Verdict::Pass), 0).verdict,
        Verdict::Pass
    );
    obs.nodes[leaf].exit = Some(256 + 9);
    obs.nodes[leaf].signalled = true;
    assert_eq!(
        outcome(&p, &obs, ending(Verdict::Pass), 0).verdict,
        Verdict::Pass
    );
    // A leak outranks it.
    obs.nodes[leaf].signalled = false;
    obs.leaks = vec!["leak".into()];
    assert_eq!(
        outcome(&p, &obs, ending(Verdict::Pass), 0).verdict,
        Verdict::Leak
    );
}

#[test]
fn a_leak_outranks_what_the_cascade_came_to() {
    let p = plan("nested");
    let mut obs = ran(&p);
    obs.leaks = vec!["leak one".into(), "leak two".into()];
    for v in [Verdict::Pass, Verdict::Orphan] {
        let o = outcome(&p, &obs, ending(v), 0);
        assert_eq!(
            (o.verdict, o.reason.as_deref()),
            (Verdict::Leak, Some("leak one\nleak two"))
        );
    }
}

#[test]
fn a_hang_names_what_never_got_ready() {
    let p = plan("nested");
    let mut obs = ran(&p);
    let (a, b) = (at(&p, "0.1"), at(&p, "1.0.1"));
    obs.nodes[a].ready = false;
    obs.nodes[b].ready = false;
    obs.nodes[b].armed_ns = None;
    // A dead node is not stuck.
    obs.nodes[at(&p, "1")].ready = false;
    obs.nodes[at(&p, "1")].dead_ns = Some(3 * MS);
    let o = hang(
        &p,
        &obs,
        alive(&["0.1", "1.0.1"], 4),
        Some(&alive(&["0.1"], 2)),
        300,
        None,
        Rung::None,
        0,
    );
    assert_eq!(
        o.reason.as_deref(),
        Some(
            "the course did not finish within the deadline (300 ms); asleep with no phase report \
             since the deadline: nodes 0.1 and 1 process outside the plan; not ready: \
             0.1 (last phase armed), 1.0.1 (last phase created); 4 processes alive"
        )
    );
    // Every live node ready: a parent blocked on its children.
    let o = hang(
        &p,
        &ran(&p),
        alive(&["root"], 1),
        None,
        300,
        None,
        Rung::None,
        0,
    );
    assert!(o.reason.unwrap().contains(
        "every live node had reported ready (a parent blocked waiting for its children); 1 process alive"
    ));
}

#[test]
fn a_hang_of_a_copy_of_the_host_names_the_attendant_worker() {
    let mut p = plan("mt-fork-attendant");
    let worker = (4711, "an earlier trial".to_string());
    let o = hang(
        &p,
        &ran(&p),
        alive(&[], 0),
        None,
        300,
        Some(&worker),
        Rung::None,
        0,
    );
    // No node uses the attendant: the worker is beside the point.
    assert!(!o.reason.unwrap().contains("attendant"));
    p.nodes[1].attendant = AttendantAction::Use;
    let o = hang(
        &p,
        &ran(&p),
        alive(&[], 0),
        None,
        300,
        Some(&worker),
        Rung::None,
        0,
    );
    assert!(o.reason.unwrap().ends_with(
        "; the host (pid 4711) runs an attendant worker started by an earlier trial, and the \
         root is a copy of the host (no exec): it inherited the attendant initialised but not \
         its worker"
    ));
}

#[test]
fn an_unplanned_death_while_the_parent_lives_is_an_early_death() {
    let mut p = plan("nested");
    let mut nodes = ran(&p).nodes;
    let (n0, n01) = (at(&p, "0"), at(&p, "0.1"));
    assert_eq!(
        early_death(&p, &nodes, n01).as_deref(),
        Some(
            "node 0.1 died during the course while its parent (node 0) was alive, without \
             exiting by itself and without a signal from the plan"
        )
    );
    assert!(early_death(&p, &nodes, 0)
        .unwrap()
        .contains("its parent (the supervisor) was alive"));
    // Its own death, or the plan's: no early death.
    let mut own = nodes.clone();
    own[n01].ended_itself = true;
    assert_eq!(early_death(&p, &own, n01), None);
    let mut signalled = nodes.clone();
    signalled[n01].signalled = true;
    assert_eq!(early_death(&p, &signalled, n01), None);
    // The parent's death observed (by the poll or on its pidfd), or not
    // watched: no early death.
    for parent in [
        Seen {
            dead_ns: Some(MS),
            ..nodes[n0].clone()
        },
        Seen {
            exited: true,
            ..nodes[n0].clone()
        },
        Seen {
            watched: false,
            ..nodes[n0].clone()
        },
    ] {
        nodes[n0] = parent;
        assert_eq!(early_death(&p, &nodes, n01), None);
    }
    // A command node ends as its program does.
    p.nodes[0].command = Some(vec!["true".into()]);
    assert_eq!(early_death(&p, &ran(&p).nodes, 0), None);
}

#[test]
fn a_root_reaped_with_its_planned_exit_did_not_die_early() {
    // Its `exiting` report lost, the supervisor's reap of the root is the
    // evidence: the exit code its plan gives it is its own end.
    let mut p = plan("nested");
    let mut nodes = ran(&p).nodes;
    nodes[0].exit = Some(0);
    assert_eq!(early_death(&p, &nodes, 0), None);
    p.nodes[0].exit_code = 3;
    nodes[0].exit = Some(3);
    assert_eq!(early_death(&p, &nodes, 0), None);
    // Another exit code, or a signal (256 + SIGKILL), is no such evidence.
    for status in [0, 70, 256 + 9] {
        nodes[0].exit = Some(status);
        assert!(early_death(&p, &nodes, 0)
            .unwrap()
            .contains("its parent (the supervisor) was alive"));
    }
}

#[test]
fn the_window_is_four_times_the_largest_latency_within_floor_and_ceiling() {
    let p = plan("nested");
    let mut nodes = ran(&p).nodes;
    // Hops of 1 ms (root spawned at 0) and none (children created before
    // their parent armed): the floor.
    assert_eq!(window_us(&p, &nodes, 0, 0), WINDOW_FLOOR_US);
    // A spawn hop of 5 ms: 20 ms.
    let n = at(&p, "0.1");
    nodes[n].created_ns = Some(7 * MS);
    assert_eq!(window_us(&p, &nodes, 0, 0), 20_000);
    // A larger gap between deaths wins.
    assert_eq!(window_us(&p, &nodes, 0, 6_000), 24_000);
    // The root's hop counts from its spawn.
    nodes[0].created_ns = Some(10 * MS);
    assert_eq!(window_us(&p, &nodes, 2 * MS, 0), 32_000);
    // Never above the ceiling.
    assert_eq!(window_us(&p, &nodes, 0, 400_000), WINDOW_CEILING_US);
    // A node not created, or under a parent not armed, measures nothing.
    let mut quiet = ran(&p).nodes;
    quiet[n].created_ns = None;
    quiet[at(&p, "1")].armed_ns = None;
    quiet[at(&p, "1.0")].created_ns = Some(900 * MS);
    assert_eq!(window_us(&p, &quiet, MS, 0), WINDOW_FLOOR_US);
}

#[test]
fn the_proc_oracle_false_orphans_are_the_kill_targets_seen_exiting() {
    let p = plan("nested");
    let mut obs = ran(&p);
    obs.proc_alive_after_kill = vec![0, 1, 2];
    obs.nodes[0].dead_ns = Some(MS);
    obs.nodes[1].exited = true;
    assert_eq!(false_orphans(&obs), 2);
    let o = outcome(&p, &obs, ending(Verdict::Pass), 0);
    assert_eq!(o.false_orphans, 2);
}

mod cascade;
mod evidence;

#[test]
fn the_course_settles_when_every_node_lingers_ready_is_dead_or_unborn() {
    let p = plan("nested");
    assert_eq!(course_state(&p, &ran(&p).nodes), (true, true));
    // A live node not ready yet: neither.
    let mut nodes = ran(&p).nodes;
    nodes[at(&p, "0.1")].ready = false;
    assert_eq!(course_state(&p, &nodes), (false, false));
    // Node 0 died before it was ready, before spawning: its subtree will
    // never be born.
    let mut nodes = ran(&p).nodes;
    let n0 = at(&p, "0");
    nodes[n0].ready = false;
    nodes[n0].dead_ns = Some(3 * MS);
    for path in ["0.0", "0.1", "0.0.0", "0.0.1", "0.1.0", "0.1.1"] {
        nodes[at(&p, path)] = Seen::default();
    }
    assert_eq!(course_state(&p, &nodes), (true, true));
    // Its parent alive and not ready: a child not created yet is awaited.
    nodes[n0].dead_ns = None;
    assert_eq!(course_state(&p, &nodes), (false, false));
}

#[test]
fn a_gate_kill_waits_until_every_fate_the_plan_fixes_is_known() {
    let p = plan("nested");
    let none = vec![false; p.nodes.len()];
    // Every node armed and ready: known.
    assert!(fates_fixed(&p, &ran(&p).nodes, &none));
    // A node created, not armed yet, not held: between fork and arming.
    let mut nodes = ran(&p).nodes;
    let n01 = at(&p, "0.1");
    nodes[n01].armed_ns = None;
    nodes[n01].ready = false;
    assert!(!fates_fixed(&p, &nodes, &none));
    // Held at its gate (gate:created): known; its children, not created
    // yet, are unborn for good.
    for path in ["0.1.0", "0.1.1"] {
        nodes[at(&p, path)] = Seen::default();
    }
    let mut held = none.clone();
    held[n01] = true;
    assert!(fates_fixed(&p, &nodes, &held));
    // Armed but not ready: known; a child not created yet is awaited
    // (its parent may have forked it already).
    nodes[n01].armed_ns = Some(2 * MS);
    assert!(!fates_fixed(&p, &nodes, &none));
    // Created and armed: known.
    for path in ["0.1.0", "0.1.1"] {
        nodes[at(&p, path)].created_ns = Some(3 * MS);
        nodes[at(&p, path)].armed_ns = Some(4 * MS);
    }
    assert!(fates_fixed(&p, &nodes, &none));
    // A grandchild created but not armed yet: awaited.
    nodes[at(&p, "0.1.1")].armed_ns = None;
    assert!(!fates_fixed(&p, &nodes, &none));
    // ... is known once it reported `ready` (a command node), ended itself
    // or died.
    for settle in [
        |s: &mut Seen| s.ready = true,
        |s: &mut Seen| s.ended_itself = true,
        |s: &mut Seen| s.dead_ns = Some(5 * MS),
        |s: &mut Seen| s.failed = Some(11),
    ] {
        let mut nodes = nodes.clone();
        settle(&mut nodes[at(&p, "0.1.1")]);
        assert!(fates_fixed(&p, &nodes, &none));
    }
}

#[test]
fn unborn_nodes_under_a_dead_parent_or_a_held_ancestor_are_unborn_for_good() {
    let p = plan("nested");
    let none = vec![false; p.nodes.len()];
    let mut nodes = ran(&p).nodes;
    let n0 = at(&p, "0");
    nodes[n0].ready = false;
    for path in ["0.0", "0.1", "0.0.0", "0.0.1", "0.1.0", "0.1.1"] {
        nodes[at(&p, path)] = Seen::default();
    }
    // Node 0 armed and spawning: its subtree is awaited.
    assert!(!fates_fixed(&p, &nodes, &none));
    // Node 0 dead: its whole subtree (grandchildren too) is unborn for good.
    nodes[n0].dead_ns = Some(3 * MS);
    assert!(fates_fixed(&p, &nodes, &none));
    // Node 0 held at a gate instead: the same.
    nodes[n0].dead_ns = None;
    let mut held = none.clone();
    held[n0] = true;
    assert!(fates_fixed(&p, &nodes, &held));
    // Node 0.0 created and held, 0.1 not created: 0.1 is awaited (node 0
    // is not held any more).
    nodes[at(&p, "0.0")].created_ns = Some(3 * MS);
    let mut held = none.clone();
    held[at(&p, "0.0")] = true;
    assert!(!fates_fixed(&p, &nodes, &held));
    // The root not created yet: nothing is known.
    let mut nodes = ran(&p).nodes;
    nodes[0] = Seen::default();
    assert!(!fates_fixed(&p, &nodes, &none));
}
