//! The lineage as the proc connector reports it: a shell's background child
//! is traced to the shell and to the process that started the shell (this
//! test), with its exec and exit, and each gets a span in the trace.

use lifeline::{ProcEvent, ProcEvents};

use super::{lab, out_dir, PROC_CONNECTOR};

/// `sh -c 'sleep 0 & wait'`, watched through the proc connector: the
/// `sleep` has the shell, then this process, as its ancestors; one exec and
/// exit status 0; the shell's exit status 0; and the trace of the lineage
/// has a span for each of the three. Needs the proc connector (root, in the
/// initial user, PID and network namespaces).
fn a_shells_background_child_is_traced_to_the_shell_and_to_us() {
    let mut events = ProcEvents::open().expect("open the proc connector");
    let me = std::process::id() as i32;
    // An overrun (a burst of the machine's other processes, or of the other
    // tests) may lose events: then try again, a bounded number of times.
    for _attempt in 0..5 {
        let overruns = events.overruns();
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 0 & wait"])
            .spawn()
            .expect("spawn sh");
        let sh = child.id() as i32;
        // sh reaps its sleep before it exits, and every exit event is
        // queued before the exit can be waited for.
        assert!(child.wait().expect("wait for sh").success());
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            events.read(&mut seen).expect("read the proc connector");
            let done = seen
                .iter()
                .any(|e| matches!(e, ProcEvent::Exit { pid, .. } if *pid == sh));
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if done || left.is_zero() || !events.wait_readable(left).expect("poll") {
                break;
            }
        }
        let mut l = lab::lineage::Lineage::rooted(&[me]);
        for e in &seen {
            l.apply(e, &|_| None);
        }
        let sleeps: Vec<i32> = l
            .pids()
            .filter(|&p| l.ancestors(p).first() == Some(&sh))
            .collect();
        if events.overruns() > overruns && sleeps.len() != 1 {
            eprintln!("the proc connector overran; trying again");
            continue;
        }
        assert_eq!(sleeps.len(), 1, "{seen:?}");
        assert!(
            l.ancestors(sleeps[0]).starts_with(&[sh, me]),
            "{:?}",
            l.ancestors(sleeps[0])
        );
        let sleep = l.get(sleeps[0]).cloned().unwrap_or_default();
        assert_eq!(sleep.execs.len(), 1);
        assert_eq!(sleep.exit.map(|x| x.status), Some(0));
        assert_eq!(l.get(sh).and_then(|e| e.exit).map(|x| x.status), Some(0));
        assert!(l
            .describe(sleeps[0], &|_| None, 0)
            .contains(&format!("(pid {sh})")));
        let trace = lab::trace::Trace::from_lineage(&l, 0).to_json();
        for pid in [me, sh, sleeps[0]] {
            assert!(
                trace["traceEvents"]
                    .as_array()
                    .is_some_and(|ev| ev.iter().any(|e| e["pid"] == pid && e["ph"] == "X")),
                "no span for {pid}"
            );
        }
        return;
    }
    panic!("the proc connector overran on every attempt");
}

/// The trace of a hung `lab exec` trial (`sh -c 'sleep 30 & wait'`, a
/// 300 ms deadline): the program's row has one `exec` instant (its own,
/// from the process events) and the `verdict hang` instant, and the span
/// of each process alive at the verdict runs to the verdict, not to the
/// last event the lineage saw.
fn a_hung_trials_trace_runs_its_live_processes_to_the_verdict() {
    let dir = out_dir("hung-trace");
    let out = lab(
        &[
            "exec",
            "--trials",
            "1",
            "--deadline",
            "300ms",
            "--out",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "sleep 30 & wait",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "a hang: {out:?}");
    let run = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|d| d.path().join("trace").is_dir());
    let trace = run
        .expect("a run directory with a trace")
        .path()
        .join("trace/canonical.0.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert_eq!(v["otherData"]["lineage_source"], "proc-connector", "{v}");
    let events = v["traceEvents"].as_array().unwrap();
    let verdict = events
        .iter()
        .find(|e| e["name"] == "verdict hang")
        .unwrap_or_else(|| panic!("no verdict instant: {v}"));
    let root = verdict["pid"].clone();
    let execs = events
        .iter()
        .filter(|e| e["pid"] == root && e["ph"] == "i")
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("exec ")))
        .count();
    assert_eq!(execs, 1, "the program execs once: {v}");
    let at = verdict["ts"].as_f64().unwrap();
    let spans: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(spans.len(), 2, "the shell and the sleep: {v}");
    for s in spans {
        assert_eq!(s["args"]["exited"], false, "alive at the verdict: {s}");
        let end = s["ts"].as_f64().unwrap() + s["dur"].as_f64().unwrap();
        assert!(
            (end - at).abs() < 0.01,
            "{s} ends at {end}, the verdict at {at}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_shells_background_child_is_traced_to_the_shell_and_to_us needs PROC_CONNECTOR;
    a_hung_trials_trace_runs_its_live_processes_to_the_verdict needs PROC_CONNECTOR;
}
