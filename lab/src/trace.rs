//! A trial as a Chrome trace: the Trace Event Format's JSON object form,
//! which Perfetto (<https://ui.perfetto.dev>) and `chrome://tracing` open.
//! Every process is a row (its PID), its life a span, each exec an instant.
//!
//! # References
//! - [Trace Event Format](https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU)
//!   (`ph` `X`: complete event, `i`: instant event, `M`: metadata)

use std::io;

use serde_json::{json, Value};

use crate::lineage::Lineage;

/// Trace events in the order added, for [`Trace::to_json`]. Times are
/// microseconds (µs, fractional allowed) from the start of the trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    events: Vec<Value>,
}

impl Trace {
    /// An instant event (`"ph": "i"`, thread scope) named `name` on the row
    /// of `pid`, at `ts_us` (µs).
    pub fn phase(&mut self, name: &str, pid: i32, ts_us: f64) {
        self.events.push(json!({
            "name": name, "ph": "i", "s": "t", "pid": pid, "tid": pid, "ts": ts_us,
        }));
    }

    /// A complete event (`"ph": "X"`) named `name` on the row of `pid`,
    /// from `start_us` (µs) for `dur_us` (µs).
    pub fn span(&mut self, name: &str, pid: i32, start_us: f64, dur_us: f64) {
        self.span_with(name, pid, start_us, dur_us, Value::Null);
    }

    /// The name shown for the row of `pid` (metadata `"ph": "M"`,
    /// `"name": "process_name"`).
    pub fn process_name(&mut self, pid: i32, name: &str) {
        self.events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": pid,
            "args": { "name": name },
        }));
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The trace as JSON: `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
    pub fn to_json(&self) -> Value {
        json!({ "traceEvents": self.events, "displayTimeUnit": "ms" })
    }

    /// Write [`to_json`](Trace::to_json) to `out` (compact JSON).
    ///
    /// # Errors
    /// The errors of writing to `out`.
    pub fn write_to(&self, out: impl io::Write) -> io::Result<()> {
        serde_json::to_writer(out, &self.to_json()).map_err(io::Error::other)
    }

    /// The trace of a lineage, times relative to `t0_ns` (ns,
    /// `CLOCK_MONOTONIC`; earlier times are clamped to 0): per process, its
    /// name (`command (pid N)`), a span from its fork to its exit (from the
    /// lineage's first time when its fork was not seen, to its last when
    /// its exit was not: it outlived the record), with `ppid` and the wait
    /// `status` in its args, and an instant per exec. A lineage without
    /// times (a `/proc` scan) gives names and zero-length spans at 0.
    pub fn from_lineage(lineage: &Lineage, t0_ns: u64) -> Trace {
        Trace::from_lineage_until(lineage, t0_ns, None)
    }

    /// [`from_lineage`](Trace::from_lineage), the record ending at
    /// `until_ns` (ns, `CLOCK_MONOTONIC`: the verdict) when given: the span
    /// of a process whose exit was not seen runs to it (it was alive at
    /// the verdict: a hung trial's processes), or to the lineage's last
    /// time when that is later.
    pub fn from_lineage_until(lineage: &Lineage, t0_ns: u64, until_ns: Option<u64>) -> Trace {
        let times = lineage.entries().flat_map(|e| {
            e.forked_ns
                .into_iter()
                .chain(e.execs.iter().filter_map(|x| x.at_ns))
                .chain(e.setsid_ns)
                .chain(e.exit.map(|x| x.at_ns))
        });
        let (first, last) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let first = if first == u64::MAX { t0_ns } else { first };
        let last = last.max(first).max(until_ns.unwrap_or(0));
        let us = |ns: u64| ns.saturating_sub(t0_ns) as f64 / 1000.0;
        let mut trace = Trace::default();
        let mut named = std::collections::HashSet::new();
        for e in lineage.entries() {
            let command = e.command.clone().unwrap_or_else(|| "?".to_string());
            if named.insert(e.pid) {
                trace.process_name(e.pid, &format!("{command} (pid {})", e.pid));
            }
            let start = e.forked_ns.unwrap_or(first);
            let end = e.exit.map_or(last, |x| x.at_ns).max(start);
            let args = json!({
                "ppid": e.ppid,
                "status": e.exit.map(|x| x.status),
                "exited": e.exit.is_some(),
            });
            trace.span_with(&command, e.pid, us(start), us(end) - us(start), args);
            for x in &e.execs {
                if let Some(at) = x.at_ns {
                    trace.phase(&format!("exec {}", x.command), e.pid, us(at));
                }
            }
            if let Some(at) = e.setsid_ns {
                trace.phase("setsid", e.pid, us(at));
            }
        }
        trace
    }

    fn span_with(&mut self, name: &str, pid: i32, start_us: f64, dur_us: f64, args: Value) {
        let mut event = json!({
            "name": name, "ph": "X", "pid": pid, "tid": pid, "ts": start_us, "dur": dur_us,
        });
        if let (Value::Object(map), false) = (&mut event, args.is_null()) {
            map.insert("args".to_string(), args);
        }
        self.events.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(trace: &Trace) -> Vec<Value> {
        // Through text, as a viewer reads it.
        let mut text = Vec::new();
        trace.write_to(&mut text).expect("write the trace");
        let v: Value = serde_json::from_slice(&text).expect("the trace is JSON");
        assert_eq!(v["displayTimeUnit"], "ms");
        v["traceEvents"].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn events_have_the_trace_event_fields() {
        let mut t = Trace::default();
        assert!(t.is_empty());
        t.process_name(7, "node root");
        t.span("life", 7, 0.0, 1500.5);
        t.phase("armed", 7, 12.25);
        assert_eq!(t.len(), 3);
        let ev = events(&t);
        assert_eq!(ev[0]["ph"], "M");
        assert_eq!(ev[0]["name"], "process_name");
        assert_eq!(ev[0]["args"]["name"], "node root");
        assert_eq!(ev[1]["ph"], "X");
        assert_eq!(ev[1]["dur"], 1500.5);
        assert_eq!(ev[2]["ph"], "i");
        assert_eq!(ev[2]["ts"], 12.25);
        assert!(ev.iter().all(|e| e["pid"] == 7 && e["tid"] == 7));
    }

    #[test]
    fn a_lineage_gives_a_row_per_process() {
        let t0 = 5_000_000;
        let mut l = Lineage::rooted(&[800]);
        l.record_exec(800, "lab __node".into(), t0);
        l.record_fork(800, 812, t0 + 1_000_000);
        l.record_exec(812, "sh -c sleep 30 & exit 0".into(), t0 + 1_100_000);
        l.record_fork(812, 813, t0 + 3_200_000);
        l.record_exit(812, 0, t0 + 3_400_000);
        let ev = events(&Trace::from_lineage(&l, t0));
        for pid in [800, 812, 813] {
            assert!(
                ev.iter().any(|e| e["pid"] == pid && e["ph"] == "M"),
                "no name for {pid}"
            );
            assert!(
                ev.iter().any(|e| e["pid"] == pid && e["ph"] == "X"),
                "no span for {pid}"
            );
        }
        let span = |pid: i32| {
            ev.iter()
                .find(|e| e["pid"] == pid && e["ph"] == "X")
                .cloned()
        };
        let sh = span(812).unwrap_or_default();
        assert_eq!(sh["ts"], 1000.0);
        assert_eq!(sh["dur"], 2400.0);
        assert_eq!(sh["args"]["status"], 0);
        assert_eq!(sh["args"]["ppid"], 800);
        // 813 outlives the record: its span runs to the last time seen.
        let leaked = span(813).unwrap_or_default();
        assert_eq!(leaked["args"]["exited"], false);
        assert_eq!(leaked["dur"], 200.0);
        assert!(ev
            .iter()
            .any(|e| e["pid"] == 812 && e["ph"] == "i" && e["ts"] == 1100.0));
    }

    #[test]
    fn a_hung_trials_live_processes_run_to_the_verdict_and_the_root_execs_once() {
        let t0 = 5_000_000;
        let mut l = Lineage::rooted(&[800]);
        // The lab spawned the program (the time taken once the spawn
        // returned, after the exec); the process events give its exec.
        l.record_spawn(800, "sh -c sleep 30 & wait".into(), t0 + 300_000);
        l.apply(
            &lifeline::ProcEvent::Exec {
                tgid: 800,
                ts_ns: t0 + 200_000,
            },
            &|_| Some("sh -c sleep 30 & wait".into()),
        );
        l.record_fork(800, 813, t0 + 1_000_000);
        l.record_exec(813, "sleep 30".into(), t0 + 1_100_000);
        // Nothing happens after; the verdict (a hang) comes at 300 ms.
        let verdict = t0 + 300_000_000;
        let ev = events(&Trace::from_lineage_until(&l, t0, Some(verdict)));
        let span = |pid: i32| {
            ev.iter()
                .find(|e| e["pid"] == pid && e["ph"] == "X")
                .cloned()
                .unwrap_or_default()
        };
        for pid in [800, 813] {
            let s = span(pid);
            assert_eq!(s["args"]["exited"], false, "{s}");
            let end = s["ts"].as_f64().unwrap() + s["dur"].as_f64().unwrap();
            assert_eq!(end, 300_000.0, "pid {pid} runs to the verdict: {s}");
        }
        let execs: Vec<&Value> = ev
            .iter()
            .filter(|e| e["pid"] == 800 && e["ph"] == "i")
            .collect();
        assert_eq!(execs.len(), 1, "{execs:?}");
        assert_eq!(execs[0]["ts"], 200.0);
        // Its span starts by its exec, not at the later spawn time.
        assert_eq!(span(800)["ts"], 200.0);
    }
}
