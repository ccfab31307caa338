//! Forensics: every signature is named, with the right pids and fds, from a
//! real stuck tree of the casebook; `--gdb` and `--keep-hung`; a slow tree
//! (a process it waits for sleeps with a timeout) is told from a stuck one.

use std::io::Write;

use serde_json::Value;

use super::{
    json, json_judged, kept_hang, lab, lab_run, lab_run_env, named, names_of, out_dir, strategy,
    KeptHang, PROC_CONNECTOR,
};

/// `lab run NAME --seed 1 --trials 1 --strategy S --format json` plus
/// `extra`: the strategy's summary, after checking that the CSV row names
/// the diagnosis files and that both exist.
fn diagnosed(name: &str, strat: &str, extra: &[&str]) -> Value {
    diagnosed_env(name, strat, extra, &[])
}

/// [`diagnosed`] with the variables `envs` set for the lab.
fn diagnosed_env(name: &str, strat: &str, extra: &[&str], envs: &[(&str, &str)]) -> Value {
    let (out, dir) = lab_run_env(name, 1, &[strat], extra, envs);
    // A reproduction the scenario expects: exit status 0.
    let v = json_judged(&out);
    assert_eq!(v["as_expected"], true, "{v}");
    let s = strategy(&v, strat).clone();
    let d = &s["diagnosis"];
    let path = d["path"].as_str().expect("a diagnosis path");
    let mut rows = csv::Reader::from_path(v["csv"].as_str().unwrap()).unwrap();
    let headers = rows.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "diagnosis").unwrap();
    let row = rows.records().next().unwrap().unwrap();
    assert_eq!(&row[col], path);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(written["signatures"], d["signatures"]);
    let text = std::fs::read_to_string(std::path::Path::new(path).with_extension("txt")).unwrap();
    assert!(
        text.starts_with(s["diagnosis"]["verdict"].as_str().unwrap()),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
    s
}

/// The process of the diagnosis that is node `path` (`None`: outside the plan).
fn process<'a>(d: &'a Value, node: Option<&str>) -> &'a Value {
    d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"].as_str() == node)
        .unwrap_or_else(|| panic!("no process for node {node:?} in {d:#}"))
}

fn signatures<'a>(d: &'a Value, name: &str) -> Vec<&'a Value> {
    d["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .collect()
}

/// The fd entry `fd` of a process of the diagnosis.
fn fd_entry(p: &Value, fd: i64) -> &Value {
    p["fds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fd"] == fd)
        .unwrap_or_else(|| panic!("no fd {fd} in {p:#}"))
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn stdio_dup_names_the_writer_elsewhere_and_the_duplicated_stdio() {
    let s = diagnosed("stdio-dup", "legacy", &[]);
    assert_eq!(s["hang"], 1, "{s:#}");
    let d = &s["diagnosis"];
    let root = process(d, Some("root"));
    let helper = process(d, None);
    let writer = signatures(d, "writer-elsewhere");
    assert_eq!(writer.len(), 1, "{d:#}");
    let w = writer[0];
    assert_eq!(w["pid"], root["pid"]);
    // The root reads the pipe the helper holds at fd 1 and fd 10.
    let read_fd = ints(&w["fds"])[0];
    let pipe = &fd_entry(root, read_fd)["pipe"];
    assert_eq!(&w["pipe"], pipe);
    let holders: Vec<(i64, i64)> = w["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["pid"].as_i64().unwrap(), o["fd"].as_i64().unwrap()))
        .collect();
    let hp = helper["pid"].as_i64().unwrap();
    assert_eq!(holders, [(hp, 1), (hp, 10)]);
    let dup = signatures(d, "duplicated-stdio");
    assert_eq!(dup.len(), 1, "{d:#}");
    assert_eq!(
        (dup[0]["pid"].as_i64(), ints(&dup[0]["fds"])),
        (Some(hp), vec![1, 10])
    );
    assert_eq!(&dup[0]["pipe"], pipe);
    assert_eq!(named(&s["signatures"], "writer-elsewhere"), Some(1));
    assert_eq!(named(&s["signatures"], "duplicated-stdio"), Some(1));
}

fn lifeline_leak_names_every_survivor_a_self_pipe_keeper() {
    let s = diagnosed("lifeline-leak", "lifeline-leaky", &[]);
    assert_eq!(s["orphan"], 1, "{s:#}");
    let d = &s["diagnosis"];
    let keepers = signatures(d, "self-pipe-keeper");
    let survivors = d["processes"].as_array().unwrap();
    assert!(!survivors.is_empty());
    assert_eq!(keepers.len(), survivors.len(), "{d:#}");
    for k in keepers {
        let p = survivors.iter().find(|p| p["pid"] == k["pid"]).unwrap();
        let fds = ints(&k["fds"]);
        // It polls the read end of its lifeline and holds a write end of it.
        let read = fd_entry(p, fds[0]);
        assert_eq!(
            (&read["mode"], &read["pipe"]),
            (&Value::from("r"), &k["pipe"])
        );
        for &w in &fds[1..] {
            let e = fd_entry(p, w);
            assert_eq!((&e["mode"], &e["pipe"]), (&Value::from("w"), &k["pipe"]));
        }
        assert!(fds.len() > 1);
    }
    assert_eq!(named(&s["signatures"], "self-pipe-keeper"), Some(1));
}

fn the_attendant_copies_are_lone_futex_waiters() {
    let s = diagnosed("mt-fork-attendant", "legacy", &[]);
    assert_eq!(s["hang"], 1, "{s:#}");
    let d = &s["diagnosis"];
    let lone: Vec<i64> = signatures(d, "lone-futex-waiter")
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect();
    let copies: Vec<i64> = ["0", "1"]
        .iter()
        .map(|n| process(d, Some(n))["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(lone, copies, "{d:#}");
    // The root keeps its worker thread: it is no lone waiter.
    assert!(
        process(d, Some("root"))["threads"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
}

fn pipe_fill_names_the_full_pipe_and_its_reader() {
    let s = diagnosed("pipe-fill", "legacy", &[]);
    assert_eq!(s["hang"], 1, "{s:#}");
    let d = &s["diagnosis"];
    let full = signatures(d, "full-pipe");
    assert_eq!(full.len(), 1, "{d:#}");
    let (child, root) = (process(d, Some("0")), process(d, Some("root")));
    assert_eq!(full[0]["pid"], child["pid"]);
    assert_eq!(ints(&full[0]["fds"]), [1]);
    let reader = &full[0]["others"][0];
    assert_eq!(reader["pid"], root["pid"]);
    assert_eq!(
        fd_entry(root, reader["fd"].as_i64().unwrap())["pipe"],
        full[0]["pipe"]
    );
    assert!(signatures(d, "duplicated-stdio").is_empty(), "{d:#}");
}

fn with_gdb_every_process_has_a_backtrace() {
    let s = diagnosed("pipe-fill", "legacy", &["--gdb"]);
    let d = &s["diagnosis"];
    for p in d["processes"].as_array().unwrap() {
        let bt = p["backtrace"].as_str().unwrap_or_default();
        assert!(bt.contains("#0"), "no backtrace for pid {}: {bt}", p["pid"]);
    }
}

/// Where gdb is not found (here: a `PATH` of an empty directory), `--gdb`
/// says so in a note of the diagnosis, which is written without
/// backtraces.
fn without_gdb_a_note_says_why_not() {
    let empty = tempfile::tempdir().unwrap();
    let s = diagnosed_env(
        "pipe-fill",
        "legacy",
        &["--gdb"],
        &[("PATH", empty.path().to_str().unwrap())],
    );
    let d = &s["diagnosis"];
    let notes = d["notes"].to_string();
    assert!(notes.contains("gdb is not installed"), "{notes}");
    for p in d["processes"].as_array().unwrap() {
        assert!(p["backtrace"].is_null(), "{p}");
    }
}

/// `--keep-hung` leaves the hung tree alive until Enter, then nothing of it
/// remains.
fn keep_hung_holds_the_tree_until_enter() {
    keep_hung_holds_the_tree(&[]);
}

/// The same without a cgroup, where the kept tree's zombie (node 0, never
/// reaped by its hung parent) is read too: it is shown in the diagnosis,
/// and left out of the pids to attach to (it has exited).
fn without_a_cgroup_keep_hung_prints_only_live_pids() {
    keep_hung_holds_the_tree(&["--no-cgroup"]);
}

/// `--keep-hung` (with the options `extra`): every printed pid is alive
/// until Enter, and gone after it.
fn keep_hung_holds_the_tree(extra: &[&str]) {
    let dir = out_dir("keep-hung");
    let KeptHang {
        mut lab,
        mut err,
        said,
        pids,
        marker,
        ..
    } = kept_hang(&dir, "2", extra);
    assert!(said.contains("gdb -p"), "{said}");
    assert!(pids.len() >= 2, "{said}");
    // Every kept process is alive now: a pidfd opens and reports no exit.
    let pidfds: Vec<_> = pids
        .iter()
        .map(|&p| {
            rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(p).unwrap(),
                rustix::process::PidfdFlags::empty(),
            )
            .unwrap_or_else(|e| panic!("kept pid {p} is gone: {e}"))
        })
        .collect();
    for fd in &pidfds {
        let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        assert_eq!(
            rustix::event::poll(&mut p, Some(&rustix::time::Timespec::default())).unwrap(),
            0
        );
    }
    lab.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = lab.wait().unwrap();
    // stdio-dup expects legacy to hang: exit status 0.
    assert_eq!(status.code(), Some(0), "{said}");
    // Only the first hang is kept: one prompt for two hung trials.
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(!rest.contains("press Enter"), "{rest}");
    // And after the release, every kept process has exited.
    for fd in &pidfds {
        let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        assert_eq!(
            rustix::event::poll(&mut p, Some(&rustix::time::Timespec::default())).unwrap(),
            1
        );
    }
    marker.assert_gone("the release of the kept tree");
    let _ = std::fs::remove_dir_all(dir);
}

fn a_diagnosis_past_max_diagnoses_is_brief_and_keeps_its_signatures() {
    // One supervisor: once trial 0's diagnosis is written, trials 1 and 2
    // read only what finds the signatures (their diagnoses are not
    // written), and every row still names both signatures.
    let (out, dir) = lab_run(
        "stdio-dup",
        3,
        &["legacy"],
        &["-j", "1", "--max-diagnoses", "1"],
    );
    let v = json_judged(&out);
    let s = strategy(&v, "legacy");
    assert_eq!(s["hang"], 3, "{s:#}");
    assert_eq!(s["diagnoses_unwritten"], 2, "{s:#}");
    assert_eq!(
        named(&s["signatures"], "writer-elsewhere"),
        Some(3),
        "{s:#}"
    );
    assert_eq!(
        named(&s["signatures"], "duplicated-stdio"),
        Some(3),
        "{s:#}"
    );
    let mut rows = csv::Reader::from_path(v["csv"].as_str().unwrap()).unwrap();
    let headers = rows.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (sig, diag) = (at("signatures"), at("diagnosis"));
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(&r[sig], "writer-elsewhere duplicated-stdio", "{r:?}");
    }
    assert_eq!(rows.iter().filter(|r| !r[diag].is_empty()).count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// `lab exec --trials 1 --deadline DEADLINE -- COMMAND` of a program that
/// hangs: its canonical summary (one hang, its diagnosis) and the text of
/// the full diagnosis.
fn exec_hang(tag: &str, deadline: &str, command: &[&str]) -> (Value, String) {
    let dir = out_dir(tag);
    let mut args = vec![
        "exec",
        "--trials",
        "1",
        "--deadline",
        deadline,
        "--format",
        "json",
        "--out",
        dir.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(command);
    let out = lab(&args, &[]);
    let v = json(&out);
    let s = strategy(&v, "canonical").clone();
    assert_eq!(s["hang"], 1, "{s:#}");
    let path = s["diagnosis"]["path"].as_str().expect("a diagnosis path");
    let text = std::fs::read_to_string(std::path::Path::new(path).with_extension("txt")).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (s, text)
}

/// The signatures that say a wait can never end.
const NEVER: [&str; 4] = [
    "self-pipe-keeper",
    "writer-elsewhere",
    "full-pipe",
    "lone-futex-waiter",
];

/// The process of diagnosis `d` whose command line starts with `command`.
fn running<'a>(d: &'a Value, command: &str) -> &'a Value {
    d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cmdline"].as_str().unwrap_or("").starts_with(command))
        .unwrap_or_else(|| panic!("no process running {command:?} in {d:#}"))
}

/// Issue 27, item 4: a reader whose writer sleeps with a timeout is slow,
/// not stuck: `may-wake` (naming the signature it is not), the sleeper
/// said to wait with a timeout; the same reader whose writer reads its own
/// pipe for ever keeps `self-pipe-keeper` and `writer-elsewhere`.
fn a_sleeping_writer_is_slow_and_a_deadlocked_one_is_stuck() {
    let (s, text) = exec_hang("slow-pipe", "300ms", &["sh", "-c", "sleep 31.401 | cat"]);
    let d = &s["diagnosis"];
    for name in NEVER {
        assert!(signatures(d, name).is_empty(), "{name}: {d:#}");
        assert_eq!(named(&s["signatures"], name), None, "{s:#}");
    }
    let (sleeper, reader) = (running(d, "sleep 31.401"), running(d, "cat"));
    assert_eq!(sleeper["wait"], "with-timeout", "{d:#}");
    assert_eq!(reader["wait"], "without-timeout", "{d:#}");
    let may = signatures(d, "may-wake");
    assert_eq!(may.len(), 1, "{d:#}");
    assert_eq!(
        (&may[0]["pid"], &may[0]["instead_of"]),
        (&reader["pid"], &Value::from("writer-elsewhere"))
    );
    assert_eq!(may[0]["depends_on"], serde_json::json!([sleeper["pid"]]));
    assert_eq!(named(&s["signatures"], "may-wake"), Some(1), "{s:#}");
    assert!(
        text.contains("in clock_nanosleep; waits with a timeout")
            || text.contains("in nanosleep; waits with a timeout"),
        "{text}"
    );
    assert!(!text.contains("can never"), "{text}");

    // The first cat reads its own stdout (the pipe) through /proc: it
    // holds the write end and never writes.
    let (s, text) = exec_hang(
        "stuck-pipe",
        "300ms",
        &["sh", "-c", "cat /proc/self/fd/1 | cat"],
    );
    let d = &s["diagnosis"];
    let keeper = running(d, "cat /proc/self/fd/1");
    let keepers = signatures(d, "self-pipe-keeper");
    assert_eq!(keepers.len(), 1, "{d:#}");
    assert_eq!(keepers[0]["pid"], keeper["pid"]);
    let elsewhere = signatures(d, "writer-elsewhere");
    assert_eq!(elsewhere.len(), 1, "{d:#}");
    assert_eq!(
        elsewhere[0]["depends_on"],
        serde_json::json!([keeper["pid"]])
    );
    assert!(signatures(d, "may-wake").is_empty(), "{d:#}");
    for p in d["processes"].as_array().unwrap() {
        assert_eq!(p["wait"], "without-timeout", "{p:#}");
    }
    assert!(text.contains("EOF can never come"), "{text}");
    assert!(!text.contains("waits with a timeout"), "{text}");
}

/// A `multiprocessing.Pool` whose workers sleep (issue 27's field case) is
/// told from one whose workers read a pipe that no one writes: the first
/// gets no signature that says "can never", and its workers are said to
/// wait with a timeout; the second keeps `self-pipe-keeper` and
/// `writer-elsewhere`.
fn a_pool_of_sleeping_workers_is_told_from_a_deadlocked_pool() {
    const POOL: &str = "import multiprocessing as m, os, time
r, w = os.pipe()
def f(x):
    return {work}
if __name__ == '__main__':
    with m.Pool(2) as p: print(p.map(f, range(2)))";
    let slow = POOL.replace("{work}", "time.sleep(31.402)");
    let (s, text) = exec_hang("slow-pool", "1s", &["python3", "-c", &slow]);
    let d = &s["diagnosis"];
    for name in NEVER {
        assert!(signatures(d, name).is_empty(), "{name}: {d:#}");
    }
    assert!(!signatures(d, "may-wake").is_empty(), "{d:#}");
    let workers: Vec<&Value> = d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["node"].is_null())
        .collect();
    assert_eq!(workers.len(), 2, "{d:#}");
    for w in workers {
        assert_eq!(w["wait"], "with-timeout", "{w:#}");
    }
    assert!(text.contains("waits with a timeout"), "{text}");

    let stuck = POOL.replace("{work}", "os.read(r, 1)");
    let (s, _) = exec_hang("stuck-pool", "1s", &["python3", "-c", &stuck]);
    let d = &s["diagnosis"];
    assert!(!signatures(d, "self-pipe-keeper").is_empty(), "{d:#}");
    assert!(!signatures(d, "writer-elsewhere").is_empty(), "{d:#}");
    assert!(signatures(d, "may-wake").is_empty(), "{d:#}");
    for p in d["processes"].as_array().unwrap() {
        assert_eq!(p["wait"], "without-timeout", "{p:#}");
    }
}

/// Issue 27, item 4: a descendant that died by a signal during the trial
/// is named, with the signal, in the hang's reason (which the summary
/// groups), where the lineage has exit statuses (the process events
/// connector); the processes the teardown killed are not.
fn a_descendant_killed_by_a_signal_is_named_in_the_reason() {
    let (s, _) = exec_hang(
        "signal-death",
        "300ms",
        &["sh", "-c", "sh -c 'kill -KILL $$'; sleep 31.403"],
    );
    let reasons = names_of(&s["reasons"]["hang"]);
    assert_eq!(reasons.len(), 1, "{s:#}");
    // The inner shell's command line may be gone before its exec is read:
    // it is named by the command it runs or the one it was copied from.
    let (_, death) = reasons[0]
        .split_once("; during the trial, ")
        .unwrap_or_else(|| panic!("no death named: {}", reasons[0]));
    assert!(
        death.starts_with("pid N (`sh -c ") && death.ends_with("`) was killed by SIGKILL"),
        "{death}"
    );
    // The sleep, killed by the cleanup after the verdict, is not named.
    assert_eq!(death.matches("was killed by").count(), 1, "{death}");
    assert_eq!(reasons[0].matches("killed by").count(), 1, "{}", reasons[0]);
}

tests! {
    stdio_dup_names_the_writer_elsewhere_and_the_duplicated_stdio;
    lifeline_leak_names_every_survivor_a_self_pipe_keeper;
    the_attendant_copies_are_lone_futex_waiters;
    pipe_fill_names_the_full_pipe_and_its_reader;
    with_gdb_every_process_has_a_backtrace needs testkit::GDB;
    without_gdb_a_note_says_why_not;
    keep_hung_holds_the_tree_until_enter;
    without_a_cgroup_keep_hung_prints_only_live_pids;
    a_diagnosis_past_max_diagnoses_is_brief_and_keeps_its_signatures;
    a_sleeping_writer_is_slow_and_a_deadlocked_one_is_stuck;
    a_pool_of_sleeping_workers_is_told_from_a_deadlocked_pool needs testkit::PYTHON3;
    a_descendant_killed_by_a_signal_is_named_in_the_reason needs PROC_CONNECTOR;
}
