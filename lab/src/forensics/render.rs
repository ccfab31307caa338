//! The diagnosis as readable text: a short form that `lab run` prints and a
//! full form (fd tables, threads, kernel stacks, backtraces) written beside
//! the trial's CSV row.

use std::fmt::Write as _;

use super::Diagnosis;
use crate::procfs::{ProcessState, ThreadState, Waiting};

impl Diagnosis {
    /// The header, one line per process (its first blocked thread, and
    /// whether it waits with a timeout or without one) and one per
    /// signature.
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
            // Running and exited are said by what it is doing already.
            let wait = match p.waiting() {
                Waiting::Running | Waiting::Exited => String::new(),
                _ => format!("; {}", how_it_waits(p, t.map(|t| t.tid))),
            };
            let _ = writeln!(
                s,
                "  {:<width$}  pid {:<7} {}  {:<16} {}{wait}{threads}",
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
                "\npid {} ({}), ppid {}, {} thread(s), {}: {}",
                p.pid,
                p.who,
                p.ppid,
                p.threads.len(),
                how_it_waits(p, None),
                if p.cmdline.is_empty() {
                    &p.comm
                } else {
                    &p.cmdline
                }
            );
            for t in &p.threads {
                let _ = writeln!(
                    s,
                    "  thread {:<7} {}  {:<16} {}{}",
                    t.tid,
                    t.state,
                    t.wchan,
                    doing(p, t),
                    if t.timed_wait {
                        " (with a timeout)"
                    } else {
                        ""
                    }
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

/// How `p` waits, in words ([`Waiting::words`]), with the thread and call
/// of a timed wait unless that thread is `shown` already: `waits with a
/// timeout (thread 12 in poll)`, `waits with a timeout (in clock_nanosleep)`
/// for a single thread, `waits without a timeout`, `is running`.
pub(super) fn how_it_waits(p: &ProcessState, shown: Option<i32>) -> String {
    let w = p.waiting();
    match (w, p.timed_thread()) {
        (Waiting::WithTimeout, Some(t)) if Some(t.tid) != shown => {
            let call = t.syscall.as_deref().unwrap_or("the kernel");
            if p.threads.len() > 1 {
                format!("{} (thread {} in {call})", w.words(), t.tid)
            } else {
                format!("{} (in {call})", w.words())
            }
        }
        _ => w.words().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{FdEntry, FdWait};

    fn thread(tid: i32, syscall: &str, timed_wait: bool) -> ThreadState {
        ThreadState {
            tid,
            state: "S".into(),
            syscall: Some(syscall.into()),
            timed_wait,
            ..ThreadState::default()
        }
    }

    #[test]
    fn every_process_line_says_whether_it_waits_with_a_timeout() {
        let mut reader = thread(10, "read", false);
        reader.waits_on = vec![FdWait {
            fd: 0,
            write: false,
        }];
        let procs = vec![
            ProcessState {
                pid: 10,
                who: "node root".into(),
                fds: vec![FdEntry {
                    fd: 0,
                    target: "pipe:[7]".into(),
                    pipe: Some(7),
                    mode: "r".into(),
                    cloexec: false,
                }],
                threads: vec![reader],
                ..ProcessState::default()
            },
            ProcessState {
                pid: 11,
                who: "node 0".into(),
                threads: vec![thread(11, "clock_nanosleep", true)],
                ..ProcessState::default()
            },
            ProcessState {
                pid: 12,
                who: "node 1".into(),
                threads: vec![thread(12, "futex", false), thread(13, "poll", true)],
                ..ProcessState::default()
            },
        ];
        let d = Diagnosis {
            processes: procs,
            ..Diagnosis::default()
        };
        let text = d.summary();
        let line = |pid: &str| {
            text.lines()
                .find(|l| l.contains(&format!("pid {pid} ")))
                .unwrap()
                .to_string()
        };
        assert!(
            line("10").ends_with("reads pipe:[7] (fd 0); waits without a timeout"),
            "{text}"
        );
        assert!(
            line("11").ends_with("in clock_nanosleep; waits with a timeout"),
            "{text}"
        );
        assert!(
            line("12").ends_with("waits with a timeout (thread 13 in poll)  (2 threads)"),
            "{text}"
        );
        let full = d.render();
        assert!(
            full.contains(
                "pid 11 (node 0), ppid 0, 1 thread(s), waits with a timeout (in clock_nanosleep): "
            ) && full.contains("in poll (with a timeout)"),
            "{full}"
        );
    }
}
