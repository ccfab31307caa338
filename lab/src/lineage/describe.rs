//! How a process is described from a [`Lineage`]: one sentence on who
//! started it, who started them, and when ([`Lineage::describe`],
//! [`Lineage::describe_chain`]).

use super::{Lineage, LineageSource};

/// Most ancestors [`Lineage::describe`] names before it stops.
const DESCRIBE_DEPTH: usize = 4;

impl Lineage {
    /// One sentence on who started `pid` and when, e.g. ``started by `sh
    /// -c sleep 30 & exit 0` (pid 812), itself started by node root (pid
    /// 800), 3.2 ms after the trial began``. Each ancestor is named by
    /// `names(pid)` when it gives a name (a node: `node root`), else by its
    /// command in backticks; the walk stops at the first named one (or
    /// after four). The time is the fork's relative to `t0_ns` (ns,
    /// `CLOCK_MONOTONIC`), left out when unknown (a scan).
    pub fn describe(&self, pid: i32, names: &dyn Fn(i32) -> Option<String>, t0_ns: u64) -> String {
        self.describe_at(pid, names, Some(t0_ns))
    }

    /// [`describe`](Lineage::describe) without the time: who started
    /// `pid`, and who started them.
    pub fn describe_chain(&self, pid: i32, names: &dyn Fn(i32) -> Option<String>) -> String {
        self.describe_at(pid, names, None)
    }

    fn describe_at(
        &self,
        pid: i32,
        names: &dyn Fn(i32) -> Option<String>,
        t0_ns: Option<u64>,
    ) -> String {
        let Some(entry) = self.get(pid) else {
            return format!("no lineage of pid {pid} ({})", self.source);
        };
        let mut parts = Vec::new();
        for (k, &a) in self.ancestors(pid).iter().enumerate() {
            let (label, named) = match names(a) {
                Some(n) => (n, true),
                None => (self.label(a), false),
            };
            let by = if k == 0 {
                "started by"
            } else {
                "itself started by"
            };
            parts.push(format!("{by} {label} (pid {a})"));
            if named || k + 1 >= DESCRIBE_DEPTH {
                break;
            }
        }
        if parts.is_empty() {
            parts.push(match entry.ppid {
                Some(p) => format!("started by pid {p}, outside the lineage"),
                None => "started by a process outside the lineage".to_string(),
            });
        }
        if let (Some(at), Some(t0_ns)) = (entry.forked_ns, t0_ns) {
            let when = match self.source {
                LineageSource::ProcConnector => "",
                LineageSource::ProcScan => "first seen ",
            };
            parts.push(format!("{when}{} the trial began", relative(at, t0_ns)));
        }
        if let Some(at) = entry.setsid_ns {
            parts.push(match t0_ns {
                Some(t0_ns) => format!(
                    "left its session (setsid) {} the trial began",
                    relative(at, t0_ns)
                ),
                None => "left its session (setsid)".to_string(),
            });
        }
        let mut text = parts.join(", ");
        if self.overruns > 0 {
            text.push_str(" (lineage incomplete: events were lost)");
        }
        text
    }

    /// `pid`'s command in backticks, or `an unknown program`.
    fn label(&self, pid: i32) -> String {
        match self.get(pid).and_then(|e| e.command.as_deref()) {
            Some(c) if !c.is_empty() => format!("`{c}`"),
            _ => "an unknown program".to_string(),
        }
    }
}

/// `3.2 ms after` / `850 µs before`: `at_ns` relative to `t0_ns`.
fn relative(at_ns: u64, t0_ns: u64) -> String {
    let (d, word) = if at_ns >= t0_ns {
        (at_ns - t0_ns, "after")
    } else {
        (t0_ns - at_ns, "before")
    };
    let text = if d < 1_000_000 {
        format!("{} µs", d / 1000)
    } else if d < 1_000_000_000 {
        format!("{:.1} ms", d as f64 / 1e6)
    } else {
        format!("{:.2} s", d as f64 / 1e9)
    };
    format!("{text} {word}")
}
