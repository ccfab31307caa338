//! How a process is described from a [`Lineage`]: one sentence on who
//! started it, who started them, and when ([`Lineage::describe`],
//! [`Lineage::describe_chain`]); and how every command names a process of
//! a trial ([`describe_process`]).

use super::{Lineage, LineageSource};
use crate::procfs::{scan_cmdline, scan_process};
use crate::text::bounded;

/// The most characters of a command line in a process's description.
pub const COMMAND_MAX: usize = 200;

/// What a trial knows to name its processes by, for [`describe_process`].
pub struct Known<'a> {
    /// The node a PID (this namespace's) is: its path and, for a `command`
    /// node, its command line.
    pub node: &'a dyn Fn(i32) -> Option<(String, Option<String>)>,
    /// Who started a PID (this namespace's), in words, from the trial's
    /// lineage when it has the process ([`Lineage::describe_chain`]).
    pub started_by: &'a dyn Fn(i32) -> Option<String>,
    /// A PID as the lab shows it (the host's).
    pub shown: &'a dyn Fn(i32) -> i32,
    /// The supervisor's PID: a parent not worth naming.
    pub supervisor: i32,
}

/// What a process outside the plan runs, as a description and a survivor
/// set name it: its command line, or, for a copy of the lab's own process
/// that never exec'd (a node's fork, whose command line is the
/// supervisor's, with a path that differs from run to run), `<fork of a
/// node, no exec>`.
pub fn command_of(pid: i32) -> String {
    static OWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| scan_cmdline(std::process::id() as i32));
    let cmd = scan_cmdline(pid).unwrap_or_default();
    if own.as_deref() == Some(cmd.as_str()) {
        FORK_OF_A_NODE.to_string()
    } else {
        bounded(&cmd, COMMAND_MAX)
    }
}

/// How [`command_of`] names a copy of the lab's process that never exec'd.
pub const FORK_OF_A_NODE: &str = "<fork of a node, no exec>";

/// Process `pid` (this namespace's) of a trial in words, the one way
/// `lab run`, `lab exec` and `lab soak` name it in reasons, summaries and
/// the CSV: a node is ``node 0.1 (pid N)`` (``node root (pid N, `cmd`)``
/// for a command); any other is ``pid N (`cmd`)`` followed by who started
/// it: from the lineage where it has the process (``started by `sh -c
/// ...` (pid N)``), else its parent from `/proc` (``child of node 0``,
/// ``child of pid N (`cmd`)``), nothing when the parent is the supervisor
/// (or unknown).
pub fn describe_process(pid: i32, known: &Known<'_>) -> String {
    if let Some((path, cmd)) = (known.node)(pid).filter(|_| pid > 0) {
        let shown = (known.shown)(pid);
        return match cmd {
            Some(cmd) => format!(
                "node {path} (pid {shown}, `{}`)",
                bounded(&cmd, COMMAND_MAX)
            ),
            None => format!("node {path} (pid {shown})"),
        };
    }
    let mut text = format!(
        "pid {} ({})",
        (known.shown)(pid),
        in_backticks(command_of(pid))
    );
    if let Some(who) = (known.started_by)(pid) {
        text.push_str(&format!(", {who}"));
        return text;
    }
    let ppid = scan_process(pid).map_or(0, |s| s.ppid);
    if ppid > 0 && ppid != known.supervisor {
        let parent = match (known.node)(ppid) {
            Some((path, _)) => format!("node {path}"),
            None => format!(
                "pid {} ({})",
                (known.shown)(ppid),
                in_backticks(command_of(ppid))
            ),
        };
        text.push_str(&format!(", child of {parent}"));
    }
    text
}

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

/// A command line in backticks; [`FORK_OF_A_NODE`] as it is.
pub fn in_backticks(command: String) -> String {
    if command == FORK_OF_A_NODE {
        command
    } else {
        format!("`{command}`")
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
