//! The lineage as the proc connector reports it: a shell's background child
//! is traced to the shell and to the process that started the shell (this
//! test), with its exec and exit, and each gets a span in the trace.

use lifeline::{ProcEvent, ProcEvents};

use super::PROC_CONNECTOR;

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

tests! {
    a_shells_background_child_is_traced_to_the_shell_and_to_us needs PROC_CONNECTOR;
}
