//! Tests of the primitive that need something of the machine: a PID
//! namespace, a writable cgroup v2, the proc connector. They run through the
//! workspace's `testkit` harness: where a capability is missing, each test
//! that needs it is reported as skipped (ignored), never as passed, and under
//! `LAB_TESTS_REQUIRE` (which CI sets) it fails instead. Only the crate's
//! public API is used.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lifeline::{
    vfork_spawns, Command, ExitStatus, PidNamespace, ProcEvent, ProcEvents, Signal, Stdio,
};
use rustix::net::sockopt;
use rustix::pipe::{pipe_with, PipeFlags};
use testkit::{test, Capability};

/// A child in a PID namespace of its own can be made here: root's plain
/// one, or one inside a user namespace for an unprivileged caller.
const PIDNS: Capability = Capability::new("pidns", || {
    let child = Command::new("/bin/true")
        .pid_namespace(own_form())
        .spawn()
        .map_err(|e| format!("no PID namespace can be made here: {e}"))?;
    match child.wait() {
        Ok(ExitStatus::Exited(0)) => Ok(()),
        Ok(s) => Err(format!("/bin/true in a PID namespace ended with {s:?}")),
        Err(e) => Err(format!("wait for /bin/true in a PID namespace: {e}")),
    }
});

/// This process's cgroup v2 directory exists and a child cgroup can be
/// created in it (and removed).
const CGROUP: Capability = Capability::new("cgroup", || {
    let cg = own_cgroup().ok_or("no cgroup v2 here")?;
    let dir = cg.join(format!("lifeline-probe-{}", std::process::id()));
    std::fs::create_dir(&dir)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", cg.display()))?;
    std::fs::remove_dir(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
});

/// The proc connector can be listened to from this process (it must work
/// as root in the initial namespaces). An error other than the three known
/// refusals counts as present, so that the test fails on it.
const PROC_CONNECTOR: Capability = Capability::new("proc-connector", || match ProcEvents::open() {
    Ok(_) => Ok(()),
    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
        Err("the proc connector needs CAP_NET_ADMIN in the initial user namespace".to_string())
    }
    Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
        Err("no proc connector in this network namespace (only in the initial one)".to_string())
    }
    Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(
        "the proc connector ignores listeners outside the initial user and PID namespaces"
            .to_string(),
    ),
    Err(_) => Ok(()),
});

fn main() -> ExitCode {
    testkit::main(vec![
        test(
            "a_child_in_a_pid_namespace_is_its_init_with_its_own_proc",
            a_child_in_a_pid_namespace_is_its_init_with_its_own_proc,
        )
        .needs(PIDNS),
        test(
            "the_death_of_a_namespace_init_ends_every_process_in_it",
            the_death_of_a_namespace_init_ends_every_process_in_it,
        )
        .needs(PIDNS),
        test(
            "a_program_starts_in_the_given_cgroup",
            a_program_starts_in_the_given_cgroup,
        )
        .needs(CGROUP),
        test(
            "the_cgroup_probe_removes_its_cgroup",
            the_cgroup_probe_removes_its_cgroup,
        )
        .needs(CGROUP),
        test(
            "an_overflowing_queue_is_reported_and_reading_goes_on",
            an_overflowing_queue_is_reported_and_reading_goes_on,
        )
        .needs(PROC_CONNECTOR),
        test(
            "exit_codes_are_raw_wait_statuses",
            exit_codes_are_raw_wait_statuses,
        )
        .needs(PROC_CONNECTOR),
        test(
            "a_child_fork_exec_and_exit_are_reported",
            a_child_fork_exec_and_exit_are_reported,
        )
        .needs(PROC_CONNECTOR),
    ])
}

/// The form of [`PidNamespace`] this process can make: root's, or a user
/// namespace's.
fn own_form() -> PidNamespace {
    if rustix::process::geteuid().is_root() {
        PidNamespace::Plain
    } else {
        PidNamespace::WithUser
    }
}

fn a_child_in_a_pid_namespace_is_its_init_with_its_own_proc() {
    // PID 1 as its own /proc shows it is the shell itself, whose $$ is 1,
    // and the caller's uid is 0 inside a user namespace (or stays 0).
    let script =
        r#"test $$ = 1 && test "$(cat /proc/1/comm)" = sh && test "$(id -u)" = 0 && exit 9"#;
    let child = Command::new("/bin/sh")
        .args(["-c", script])
        .pid_namespace(own_form())
        .spawn()
        .expect("spawn in a PID namespace");
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(9));
}

fn the_death_of_a_namespace_init_ends_every_process_in_it() {
    // The init starts a sleep (a process of its namespace) that reports its
    // host-side end through an inherited pipe, then is killed: the kernel
    // kills the sleep with it, and the pipe reports EOF.
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let child = Command::new("/bin/sh")
        .args(["-c", "sleep 1000 & echo started; wait"])
        .stdout(Stdio::Fd(w.as_fd()))
        .pid_namespace(own_form())
        .spawn()
        .expect("spawn in a PID namespace");
    drop(w);
    let mut r = File::from(r);
    let mut started = [0u8; 8];
    r.read_exact(&mut started).unwrap();
    assert_eq!(&started, b"started\n");
    assert!(child.pidfd().send_signal(Signal::KILL).unwrap());
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(9));
    // EOF: the sleep, which held the write end as its stdout, is gone too.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

/// This process's cgroup v2 directory (the cgroup2 mount point of
/// `/proc/self/mountinfo` joined with the `0::` line of
/// `/proc/self/cgroup`), as the lab finds it.
fn own_cgroup() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next() == Some("cgroup2"))
            .then(|| pre.split_whitespace().nth(4))?
    })?;
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new(mount).join(rel.trim_start_matches('/')))
}

/// What `cmd` writes to its stdout, and how it ended.
fn stdout_of(cmd: Command<'_>) -> (ExitStatus, String) {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let child = cmd.stdout(Stdio::from(&w)).spawn().unwrap();
    drop(w);
    let mut out = String::new();
    File::from(r).read_to_string(&mut out).unwrap();
    (child.wait().unwrap(), out)
}

fn a_program_starts_in_the_given_cgroup() {
    let cg = own_cgroup().expect("a cgroup v2 directory");
    let name = format!("lifeline-test-{}", std::process::id());
    let dir = cg.join(&name);
    std::fs::create_dir(&dir)
        .unwrap_or_else(|e| panic!("create a cgroup in {}: {e}", cg.display()));
    let result = File::open(&dir).map(|d| {
        let before = vfork_spawns();
        let (status, out) = stdout_of(
            Command::new("/bin/cat")
                .arg("/proc/self/cgroup")
                .cgroup(d.as_fd()),
        );
        (status, out, vfork_spawns() > before)
    });
    // The child was reaped: the cgroup is empty and can go.
    std::fs::remove_dir(&dir).unwrap();
    let (status, out, vforked) = result.unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    let line = out.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    assert!(line.ends_with(&format!("/{name}")), "{out}");
    assert!(vforked || cfg!(not(target_arch = "x86_64")));
}

fn the_cgroup_probe_removes_its_cgroup() {
    let cg = own_cgroup().expect("a cgroup v2 directory");
    let (f, trace) = lifeline::probe::probe_kernel_traced(Some(&cg));
    if f.root {
        assert!(f.cgroup_writable, "{f:?} in {}", cg.display());
        assert!(f.clone_into_cgroup, "{f:?}");
        assert!(f.cgroup_kill, "{f:?}");
        assert!(f.per_trial_cgroups());
        assert_eq!(trace.made().1, 1);
    }
    let left = trace.leftovers();
    assert!(left.is_empty(), "{left:?}");
}

/// The connector, opened (the capability says it can be).
fn open() -> ProcEvents {
    ProcEvents::open().expect("open the proc connector")
}

/// Read until the exit of `pid` is among `seen` or 10 s pass.
fn read_until_exit(events: &mut ProcEvents, pid: i32, seen: &mut Vec<ProcEvent>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        events.read(seen).expect("read the proc connector");
        if seen
            .iter()
            .any(|e| matches!(e, ProcEvent::Exit { pid: p, .. } if *p == pid))
        {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !events.wait_readable(left).expect("poll") {
            return;
        }
    }
}

fn an_overflowing_queue_is_reported_and_reading_goes_on() {
    let mut events = open();
    // The smallest queue the kernel allows (a few KiB) holds a handful
    // of 76-byte events (each costs far more in the queue): 30
    // children make 90 events of ours alone, unread.
    sockopt::set_socket_recv_buffer_size(&events, 0).expect("shrink the queue");
    for _ in 0..30 {
        let child = Command::new("/bin/true").spawn().expect("spawn /bin/true");
        assert_eq!(child.wait().expect("wait"), ExitStatus::Exited(0));
    }
    let mut seen = Vec::new();
    events.read(&mut seen).expect("read");
    assert!(seen.contains(&ProcEvent::Overrun), "{seen:?}");
    assert!(events.overruns() >= 1);
    // Drained, and the queue large again (4 MiB, as `ProcEvents::open`
    // asks): a later child is reported (unless a burst of the machine
    // overflows it once more).
    if sockopt::set_socket_recv_buffer_size_force(&events, 4 << 20).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(&events, 4 << 20);
    }
    let child = Command::new("/bin/true").spawn().expect("spawn /bin/true");
    let pid = child.pidfd().pid();
    assert_eq!(child.wait().expect("wait"), ExitStatus::Exited(0));
    let overruns = events.overruns();
    let mut later = Vec::new();
    read_until_exit(&mut events, pid, &mut later);
    assert!(
        events.overruns() > overruns
            || later
                .iter()
                .any(|e| matches!(e, ProcEvent::Exit { pid: p, .. } if *p == pid)),
        "{later:?}"
    );
}

fn exit_codes_are_raw_wait_statuses() {
    let mut events = open();
    for _attempt in 0..5 {
        let overruns = events.overruns();
        let three = Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("spawn sh");
        let killed = Command::new("/bin/sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        assert!(killed.pidfd().send_signal(Signal::KILL).expect("kill"));
        assert_eq!(three.wait().expect("wait"), ExitStatus::Exited(3));
        assert_eq!(
            killed.wait().expect("wait"),
            ExitStatus::Signaled(libc::SIGKILL)
        );
        let mut seen = Vec::new();
        read_until_exit(&mut events, three.pidfd().pid(), &mut seen);
        read_until_exit(&mut events, killed.pidfd().pid(), &mut seen);
        let code = |pid: i32| {
            seen.iter().find_map(|e| match e {
                ProcEvent::Exit {
                    pid: p,
                    tgid,
                    exit_code,
                    ..
                } if *p == pid && *tgid == pid => Some(*exit_code),
                _ => None,
            })
        };
        let (c3, c9) = (code(three.pidfd().pid()), code(killed.pidfd().pid()));
        if events.overruns() > overruns && (c3.is_none() || c9.is_none()) {
            eprintln!("the proc connector overran; trying again");
            continue;
        }
        assert_eq!(c3, Some(3 << 8), "{seen:?}");
        assert_eq!(c9, Some(libc::SIGKILL), "{seen:?}");
        return;
    }
    panic!("the proc connector overran on every attempt");
}

fn a_child_fork_exec_and_exit_are_reported() {
    let mut events = open();
    let me = std::process::id() as i32;
    // An overrun (a burst of the machine's other processes) may lose
    // the child's events: then try again, a bounded number of times.
    for _attempt in 0..5 {
        let overruns = events.overruns();
        let before = lifeline::monotonic_ns();
        let child = Command::new("/bin/true").spawn().expect("spawn /bin/true");
        let pid = child.pidfd().pid();
        // The exit event is sent in do_exit before the child can be
        // reaped: after the wait it is queued.
        assert_eq!(child.wait().expect("wait"), ExitStatus::Exited(0));
        let mut seen = Vec::new();
        read_until_exit(&mut events, pid, &mut seen);
        let fork = seen
            .iter()
            .find(|e| matches!(e, ProcEvent::Fork { child_tgid, .. } if *child_tgid == pid));
        let exec = seen
            .iter()
            .any(|e| matches!(e, ProcEvent::Exec { tgid, .. } if *tgid == pid));
        let exit = seen.iter().find(
            |e| matches!(e, ProcEvent::Exit { pid: p, tgid, .. } if *p == pid && *tgid == pid),
        );
        if events.overruns() > overruns && (fork.is_none() || !exec || exit.is_none()) {
            eprintln!("the proc connector overran; trying again");
            continue;
        }
        let fork = fork.expect("a fork event for the child");
        assert!(fork.is_new_process(), "{fork:?}");
        assert!(
            matches!(fork, ProcEvent::Fork { parent_tgid, .. } if *parent_tgid == me),
            "{fork:?}"
        );
        assert!(exec, "an exec event for the child");
        let exit = exit.expect("an exit event for the child");
        assert!(
            matches!(exit, ProcEvent::Exit { exit_code: 0, parent_tgid: Some(p), .. } if *p == me),
            "{exit:?}"
        );
        let (f, x) = (fork.ts_ns().unwrap_or(0), exit.ts_ns().unwrap_or(0));
        // The kernel's clock is CLOCK_MONOTONIC, the lab's.
        assert!(
            before <= f && f <= x && x <= lifeline::monotonic_ns(),
            "{before} {f} {x}"
        );
        return;
    }
    panic!("the proc connector overran on every attempt");
}
