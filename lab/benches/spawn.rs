//! Spawn-and-reap latency of each creation path, and the lab's per-trial
//! overhead on a one-node plan.
//!
//! `cargo bench -p lab`. The canonical path refuses to copy a multithreaded
//! process, so this harness must stay single-threaded (criterion is built
//! without rayon).
// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::path::Path;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use lab::plan::Plan;
use lab::scenario::Scenario;
use lab::session::Supervisor;
use lab::strategy::Strategy;
use lab::trial::protocol::TrialRequest;
use lifeline::floor;

fn create_and_reap(c: &mut Criterion) {
    // Copies: a child that `_exit`s at once, no exec.
    let mut g = c.benchmark_group("create, _exit, reap");
    g.bench_function("clone3 + pidfd + lifeline, waitid(P_PIDFD)", |b| {
        b.iter(|| {
            let child = lifeline::spawn(|_| 0).expect("clone3");
            child.pidfd().wait().expect("waitid")
        })
    });
    g.bench_function("fork, waitpid", |b| {
        b.iter(|| floor::fork_exit_reap().expect("fork"))
    });
    g.finish();
    // Execs: a child that execs /bin/true with the caller's environment.
    let mut g = c.benchmark_group("create, exec /bin/true, reap");
    let prog = c"/bin/true";
    g.bench_function(
        "clone3(VM|VFORK) + pidfd + lifeline (Spawn::exec), waitid(P_PIDFD)",
        |b| {
            b.iter(|| {
                let child = lifeline::Spawn::default()
                    .exec(prog, &[c"true"], &[], 3)
                    .expect("clone3 + exec");
                child.pidfd().wait().expect("waitid")
            })
        },
    );
    g.bench_function("posix_spawn, waitpid", |b| {
        b.iter(|| floor::posix_spawn_reap("/bin/true").expect("posix_spawn"))
    });
    g.bench_function("std::process::Command::status", |b| {
        b.iter(|| Command::new("/bin/true").status().expect("spawn"))
    });
    g.finish();
}

fn per_trial_overhead(c: &mut Criterion) {
    let exe = Path::new(env!("CARGO_BIN_EXE_lab"));
    let text = "version = 1\nname = \"one-node\"\n[tree]\nbreadth = []\n";
    let scenario = Scenario::parse("one-node.toml", text).expect("a one-node scenario");
    let plan = Plan::new(&scenario, 1);
    let mut g = c.benchmark_group("one trial of a one-node plan, in a running supervisor");
    for name in ["canonical", "legacy"] {
        let req = TrialRequest {
            deadline_us: plan.deadline_us,
            plan: plan.clone(),
            strategy: Strategy::parse(name).expect("a preset"),
            trial: 0,
            cgroup_parent: None,
            gdb: false,
            keep_hung: false,
        };
        let mut sup = Supervisor::start(exe, None).expect("a supervisor");
        g.bench_function(name, |b| {
            b.iter(|| {
                let o = sup.run(&req, &|_| {}).expect("a trial");
                assert_eq!(o.verdict.name(), "pass", "{o:?}");
            })
        });
    }
    g.finish();
}

criterion_group!(benches, create_and_reap, per_trial_overhead);
criterion_main!(benches);
