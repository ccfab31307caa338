//! The diagnosis as readable text: a short form that `lab run` prints and a
//! full form (fd tables, threads, kernel stacks, backtraces) written beside
//! the trial's CSV row.

use std::fmt::Write as _;

use super::Diagnosis;
use crate::procfs::{ProcessState, ThreadState};

impl Diagnosis {
    /// The header, one line per process (its first blocked thread) and one
    /// per signature.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}  {}  seed {}  strategy {}  trial {}  (deadline {} ms)\n",
            self.subject.verdict,
            self.subject.scenario,
            self.subject.seed,
            self.subject.strategy,
            self.subject.trial,
            self.subject.deadline_ms
        );
        let width = self
            .processes
            .iter()
            .map(|p| p.who.len())
            .max()
            .unwrap_or(0);
        for p in &self.processes {
            let t = main_thread(p);
            let threads = if p.threads.len() > 1 {
                format!("  ({} threads)", p.threads.len())
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {:<width$}  pid {:<7} {}  {:<16} {}{threads}",
                p.who,
                p.pid,
                t.map_or("?", |t| t.state.as_str()),
                t.map_or("", |t| t.wchan.as_str()),
                t.map_or_else(String::new, |t| doing(p, t)),
            );
        }
        for sig in &self.signatures {
            let _ = writeln!(s, "  {}: {}", sig.signature, sig.text);
        }
        if self.signatures.is_empty() {
            let _ = writeln!(s, "  no signature found");
        }
        s
    }

    /// The summary, then for every process its command, threads, fd table,
    /// kernel stacks and backtraces, then the notes.
    pub fn render(&self) -> String {
        let mut s = self.summary();
        for p in &self.processes {
            let _ = writeln!(
                s,
                "\npid {} ({}), ppid {}, {} thread(s): {}",
                p.pid,
                p.who,
                p.ppid,
                p.threads.len(),
                if p.cmdline.is_empty() {
                    &p.comm
                } else {
                    &p.cmdline
                }
            );
            for t in &p.threads {
                let _ = writeln!(
                    s,
                    "  thread {:<7} {}  {:<16} {}",
                    t.tid,
                    t.state,
                    t.wchan,
                    doing(p, t)
                );
                for frame in &t.kernel_stack {
                    let _ = writeln!(s, "      {frame}");
                }
            }
            for f in &p.fds {
                let _ = writeln!(
                    s,
                    "  fd {:<4} {:<2} {}{}",
                    f.fd,
                    f.mode,
                    f.target,
                    if f.cloexec { "  (cloexec)" } else { "" }
                );
            }
            if let Some(bt) = &p.backtrace {
                let _ = writeln!(s, "  gdb:");
                for line in bt.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(s, "\nnote: {n}");
        }
        s
    }
}

/// The thread that says most: the first asleep one waiting on an fd, else
/// the first asleep, else the main thread.
fn main_thread(p: &ProcessState) -> Option<&ThreadState> {
    let asleep = |t: &&ThreadState| t.state == "S" || t.state == "D";
    p.threads
        .iter()
        .filter(asleep)
        .find(|t| !t.waits_on.is_empty())
        .or_else(|| p.threads.iter().find(asleep))
        .or(p.threads.first())
}

/// What a thread is doing, in words: `reads pipe:[N] (fd 3)`.
fn doing(p: &ProcessState, t: &ThreadState) -> String {
    match t.state.as_str() {
        "R" => return "running".into(),
        "Z" => return "exited, not reaped (zombie)".into(),
        _ => {}
    }
    let Some(call) = t.syscall.as_deref() else {
        return String::new();
    };
    if !t.waits_on.is_empty() {
        let verb = |write: bool| match (call.contains("poll"), write) {
            (true, false) => "polls",
            (true, true) => "polls to write",
            (false, false) => "reads",
            (false, true) => "writes",
        };
        return t
            .waits_on
            .iter()
            .map(|w| {
                let target = p
                    .fds
                    .iter()
                    .find(|f| f.fd == w.fd)
                    .map_or("?", |f| f.target.as_str());
                format!("{} {target} (fd {})", verb(w.write), w.fd)
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    match t.futex_private {
        Some(true) => "futex wait (private)".into(),
        Some(false) => "futex wait (shared)".into(),
        None => format!("in {call}"),
    }
}
