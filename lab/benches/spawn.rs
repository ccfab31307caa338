//! Spawn-and-reap latency of each creation path, and the lab's per-trial
//! overhead on a one-node plan.
//!
//! `cargo bench -p lab`. The canonical path refuses to copy a multithreaded
//! process, so this harness must stay single-threaded (criterion is built
//! without rayon).
//!
//! One group per comparison, each canonical path against its raw
//! counterpart:
//! - `create, _exit, reap`: copies (no exec). The canonical
//!   `lifeline::spawn` (clone3 + pidfd + lifeline, `waitid(P_PIDFD)`)
//!   against `fork` + `waitpid`.
//! - `create, exec /bin/true, reap`: execs, each child with the caller's
//!   environment. The canonical `Spawn::exec` (clone3 with `CLONE_VM |
//!   CLONE_VFORK` on a stack of its own, pidfd, lifeline, error pipe,
//!   `waitid(P_PIDFD)`) against glibc's `posix_spawn` + `waitpid`, and
//!   std's `Command::status` for reference.
//! - `one trial of a one-node plan, in a running supervisor`: the lab's
//!   per-trial overhead, canonical and legacy.
//!
//! # Latest figures
//!
//! `cargo bench -p lab --bench spawn -- --warm-up-time 1 --measurement-time
//! 3`, three runs in a row on 2026-11-30 (late) on the project's machine
//! kind (2 cores, kernel 6.18, a shared host whose speed drifts from minute
//! to minute; release profile with fat LTO). Each cell: criterion's point
//! estimate of the mean per iteration.
//!
//! | path | run 1 | run 2 | run 3 |
//! | --- | --- | --- | --- |
//! | copy: clone3 + pidfd + lifeline, waitid | 314 µs | 290 µs | 388 µs |
//! | copy: fork + waitpid | 289 µs | 273 µs | 277 µs |
//! | ratio canonical / fork | 1.08 | 1.06 | 1.40 |
//! | exec: clone3(VM\|VFORK) + pidfd + lifeline, waitid | 1125 µs | 1138 µs | 1062 µs |
//! | exec: posix_spawn + waitpid | 1132 µs | 1104 µs | 1032 µs |
//! | exec: std `Command::status` | 1029 µs | 1082 µs | 1072 µs |
//! | ratio canonical / posix_spawn | 0.99 | 1.03 | 1.03 |
//! | one-node trial, canonical | 633 µs | 645 µs | 780 µs |
//! | one-node trial, legacy | 574 µs | 585 µs | 1840 µs |
//!
//! Run 3 caught the host in a slow spell (its legacy one-node trial took
//! three times as long as in the runs before): criterion times one path
//! after the other, so load that comes and goes lands on one side of a
//! comparison. The interleaved check
//! `cargo run --release -p lifeline --features legacy --example spawn_ab`
//! times the two sides of each comparison in alternation (2000 ABBA pairs)
//! and takes the median of the per-pair ratios; three runs the same hour:
//! canonical copy / fork 1.074, 1.076, 1.101 (quartiles within 0.82-1.63;
//! medians 543/510, 527/493, 299/259 µs), canonical exec / posix_spawn
//! 1.015, 1.013, 1.016 (quartiles within 0.92-1.12).
//!
//! What the copy path pays over fork: the lifeline (pipe2, a move above the
//! lab's fd floor, the close of the parent's read end), the thread check
//! (`unshare(CLONE_THREAD)`), the pidfd, the child's `close_range` calls,
//! and `waitid(P_PIDFD)` against `waitpid`. The same primitive written in C
//! (3000 interleaved rounds, twice) costs 1.10 to 1.11 times a fork: the
//! pidfd about 7 µs, the pipe 8, the move 2, the check and the closes 8.
//!
//! Where a one-node trial's time goes (`perf record -a` over `lab run` of a
//! one-node plan with its trial cgroup, 3000 trials at -j 1, 775 µs of wall
//! time a trial; CPU time per trial): in the supervisor about 340 µs, of
//! which its `clone3` of itself into the root about 115 µs (a fork on this
//! machine costs 200 to 300 µs, reaped), the write faults on the pages it
//! touches after the clone about 76 µs (22 pages a trial: 13 of its heap, 4
//! of its stack, malloc's arena; the clone write-protects them, and the
//! first write to each faults even once the root is gone), its own code
//! about 45 µs and its `ppoll` about 24 µs; in the root about 280 µs, 134
//! of them its exit. This bench's supervisor has no cgroup.
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
            trace: false,
            brief_verdicts: Vec::new(),
            log_dir: None,
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
