//! Lineage as watched during a trial: the course's side of [`crate::lineage`]
//! (which is the model: a forest of processes fed by events or scans, and
//! its descriptions). This module watches, while the course runs, who
//! started whom in a trial whose root is a program (`lab exec`): the
//! program and every descendant, with its parent, its commands and the
//! times of its fork, execs and exit. PIDs are the lab's (the host's), as
//! `ps` shows them.
//!
//! Two sources, named in every description:
//! - the kernel's process events connector (`lifeline::ProcEvents`):
//!   exact forks, execs and exits with the kernel's timestamps. The kernel
//!   honours a listen request only from the initial PID and user
//!   namespaces, where the lab runs but its supervisors do not; so `lab
//!   exec` listens ([`keep_events_flowing`]) and each supervisor only
//!   subscribes, and uses the events once it has seen the fork of its own
//!   program among them;
//! - otherwise `/proc` scans while the course runs (every [`SCAN_US`] at
//!   most, and at every event): each process with its parent's PID and its
//!   command line when a scan first finds it (`first seen 3.2 ms after the
//!   trial began`), its new command line when it execs. A process born and
//!   gone between two scans is missed, and one whose parent exited first
//!   is found without its parent.
//!
//! An exec event carries no command line: it is read at once through the
//! lab's `/proc` (the supervisor's own is that of its namespace), and by
//! the scans for a process gone by then.

use std::sync::{Mutex, OnceLock};

use super::census::COMMAND_MAX;
use super::judge::signal_name;
use super::Course;

use crate::lineage::Lineage;
use crate::pidns::host_pid;
use crate::procfs::{self, scan_process};
use crate::text::bounded;
use crate::trace::Trace;
use crate::verdict::{Outcome, Verdict};
use lifeline::{monotonic_ns, ProcEvent, ProcEvents};

/// Listen to the kernel's process events for as long as the returned
/// value lives, from the lab's own process (in the initial namespaces), so
/// that the supervisors' subscriptions receive them; `None` where the
/// kernel does not honour it (a PID or user namespace of its own, a
/// kernel without the connector, before Linux 6.6 without
/// `CAP_NET_ADMIN`). The socket is never read: once its queue is full the
/// kernel drops what it would add.
pub fn keep_events_flowing() -> Option<ProcEvents> {
    ProcEvents::open().ok()
}

/// This supervisor's subscription to the process events, made on first
/// use; `None` inside when it could not be made.
fn subscription() -> &'static Mutex<Option<ProcEvents>> {
    static EVENTS: OnceLock<Mutex<Option<ProcEvents>>> = OnceLock::new();
    EVENTS.get_or_init(|| Mutex::new(ProcEvents::subscribe().ok()))
}

/// Read every queued event (of any process of the machine) into `out`.
fn read_events(out: &mut Vec<ProcEvent>) {
    if let Ok(mut guard) = subscription().lock() {
        if let Some(events) = guard.as_mut() {
            let _ = events.read(out);
        }
    }
}

/// A descendant that failed, as [`Outcome::descendant_failures`] names it:
/// its command in backticks; or, when it exec'd a program whose command
/// line was gone before it could be read (it ran for a moment), the
/// command of its parent: ``a program exec'd by a child of `sh -c ...```.
fn failed_descendant(lineage: &Lineage, e: &crate::lineage::Entry) -> String {
    let cmd = |c: Option<&str>| bounded(c.unwrap_or("?"), COMMAND_MAX);
    if e.execs.last().is_some_and(|x| x.command.is_empty()) {
        let parent = e
            .ppid
            .and_then(|p| lineage.get(p))
            .and_then(|p| p.command.as_deref());
        return format!(
            "a program exec'd by a child of `{}` (gone before its command line was read)",
            cmd(parent)
        );
    }
    format!("`{}`", cmd(e.command.as_deref()))
}

/// The longest wait between two scans while the trial runs (µs).
pub(super) const SCAN_US: u64 = 2_000;

impl Course<'_> {
    /// Before the program's spawn: drop the events queued since the last
    /// trial (other processes', and the last trial's).
    pub(super) fn prepare_lineage(&self) {
        let mut stale = Vec::new();
        read_events(&mut stale);
    }

    /// Start the lineage at the program `pid` (this namespace's PID),
    /// spawned at `at_ns`, running `command`.
    pub(super) fn start_lineage(&mut self, pid: i32, command: &str, at_ns: u64) {
        let root = host_pid(pid);
        let mut lineage = Lineage::rooted_scan(&[root]);
        lineage.record_spawn(root, command.to_string(), at_ns);
        self.lineage = Some(lineage);
    }

    /// One scan: the trial's processes (the cgroup's members, or the
    /// supervisor's descendants), each new one recorded under its parent
    /// when the parent is kept, each kept one whose command line changed
    /// recorded as an exec, and each kept one that is gone as exited.
    pub(super) fn scan_lineage(&mut self) {
        if self.lineage.is_none() {
            return;
        }
        self.take_events();
        let now = monotonic_ns();
        let from_events = self
            .lineage
            .as_ref()
            .is_some_and(|l| l.source() == crate::lineage::LineageSource::ProcConnector);
        let members: Vec<i32> = match &self.cgroup {
            Some(cg) => cg.members().unwrap_or_default(),
            None => procfs::descendants(std::process::id() as i32),
        };
        let Some(lineage) = self.lineage.as_mut() else {
            return;
        };
        let mut live = Vec::with_capacity(members.len());
        for pid in members {
            let host = host_pid(pid);
            live.push(host);
            // The command line only: a process between fork and exec, or
            // exiting, reads empty, and its name would look like an exec.
            let Some(scanned) = scan_process(pid) else {
                continue;
            };
            let command = scanned.cmdline.unwrap_or_default();
            match lineage.get(host) {
                // The events know the tree: the scan only names.
                Some(e) if from_events => {
                    if !command.is_empty() && e.command.as_deref() != Some(command.as_str()) {
                        lineage.set_command(host, command);
                    }
                }
                None if from_events => {}
                Some(e) if e.exit.is_none() => {
                    if !command.is_empty() && e.command.as_deref() != Some(command.as_str()) {
                        lineage.record_exec(host, command, now);
                    }
                }
                _ => {
                    let parent = host_pid(scanned.ppid);
                    if scanned.ppid > 0 && lineage.keeps(parent) {
                        lineage.record_fork(parent, host, now);
                        if !command.is_empty() {
                            lineage.record_exec(host, command, now);
                        }
                    }
                }
            }
        }
        if from_events {
            return;
        }
        let gone: Vec<i32> = lineage
            .entries()
            .filter(|e| e.exit.is_none() && !live.contains(&e.pid))
            .map(|e| e.pid)
            .collect();
        for pid in gone {
            // The status of a process other than the program is not known
            // to a scan: -1.
            lineage.record_exit(pid, -1, now);
        }
    }

    /// Apply the queued process events to the lineage, once they are known
    /// to flow: the fork of the program by this supervisor is among them.
    fn take_events(&mut self) {
        let mut events = Vec::new();
        read_events(&mut events);
        let Some(lineage) = self.lineage.as_mut() else {
            return;
        };
        if events.is_empty() {
            return;
        }
        let root = lineage.entries().next().map_or(0, |e| e.pid);
        if lineage.source() != crate::lineage::LineageSource::ProcConnector {
            let me = crate::pidns::host_self() as i32;
            let ours = events.iter().any(|e| {
                matches!(*e, ProcEvent::Fork { parent_tgid, child_tgid, .. }
                    if parent_tgid == me && child_tgid == root)
            });
            if !ours {
                return;
            }
            lineage.use_connector();
        }
        for e in &events {
            // The root's fork and exec are the supervisor's: the lineage
            // starts at the program.
            if matches!(*e, ProcEvent::Fork { child_tgid, .. } if child_tgid == root) {
                continue;
            }
            lineage.apply(e, &crate::pidns::host_cmdline);
        }
    }

    /// The program exited with `status`: recorded as its exit (a raw wait
    /// status, as the connector would give it).
    pub(super) fn lineage_root_exit(&mut self, status: lifeline::ExitStatus) {
        let Some(lineage) = self.lineage.as_mut() else {
            return;
        };
        let Some(root) = lineage.entries().next().map(|e| e.pid) else {
            return;
        };
        let raw = match status {
            lifeline::ExitStatus::Exited(code) => code << 8,
            lifeline::ExitStatus::Signaled(sig) => sig,
        };
        lineage.record_exit(root, raw, monotonic_ns());
    }

    /// Who started `pid` (this namespace's PID), in words, when the
    /// lineage has it; without the time it was first seen, which differs in
    /// every trial (the trace has it), so that equal reasons group.
    pub(super) fn lineage_of(&self, pid: i32) -> Option<String> {
        let lineage = self.lineage.as_ref()?;
        let host = host_pid(pid);
        let root = lineage.entries().next()?.pid;
        lineage.get(host)?;
        let command = self.plan().nodes[0].command_line()?;
        let names = |p: i32| (p == root).then(|| format!("`{command}`"));
        Some(lineage.describe_chain(host, &names))
    }

    /// Record in `o` (any verdict, a pass included) every descendant of
    /// the program that failed on its own: exited with a status other than
    /// 0, or died by a signal, before the lab sent one or reached the
    /// verdict ([`Outcome::descendant_failures`]). And name in `o`'s
    /// reason, for a trial that did not pass, every
    /// descendant of the program that the lineage saw die by a signal
    /// before the lab sent one (its first kill, its teardown) or reached
    /// the verdict: ``; during the trial, pid N (`python3 worker`) was
    /// killed by SIGKILL`` (no `: `, which would take the place of the
    /// reason's last list in the summary's sentence). Only where the lineage has exit
    /// statuses (the process events connector); the program's own end is
    /// the verdict's business.
    pub(super) fn name_signal_deaths(&self, o: &mut Outcome) {
        let Some(lineage) = self.lineage.as_ref() else {
            return;
        };
        let verdict_at = self.t0 + o.time_to_verdict_us * 1000;
        let until = self
            .signals_sent
            .iter()
            .map(|(at, _)| *at)
            .chain(self.teardown_at)
            .fold(verdict_at, u64::min);
        if lineage.source() == crate::lineage::LineageSource::ProcConnector {
            o.descendant_failures = lineage
                .failed_exits(until)
                .iter()
                .map(|(e, exit)| {
                    let who = failed_descendant(lineage, e);
                    match exit.signal() {
                        Some(sig) => format!("{who} was killed by {}", signal_name(sig)),
                        None => format!("{who} exited with status {}", exit.status >> 8),
                    }
                })
                .collect();
        }
        let Some(reason) = o.reason.as_mut() else {
            return;
        };
        if o.verdict == Verdict::Pass {
            return;
        }
        let deaths: Vec<String> = lineage
            .signal_deaths(until)
            .iter()
            .map(|(e, sig)| {
                format!(
                    "pid {} (`{}`) was killed by {}",
                    e.pid,
                    bounded(e.command.as_deref().unwrap_or("?"), COMMAND_MAX),
                    signal_name(*sig)
                )
            })
            .collect();
        if !deaths.is_empty() {
            reason.push_str(&format!("; during the trial, {}", deaths.join(", ")));
        }
    }

    /// The trial's timeline as Chrome trace-event JSON (text): a row per
    /// process of the lineage (the span of one still alive at the verdict
    /// runs to it: `verdict`, its name and when, ns `CLOCK_MONOTONIC`),
    /// the signals sent and the verdict as instants on the program's row,
    /// and `otherData.lineage_source` (`proc-connector` or `proc-scan`).
    pub(super) fn trace_json(&self, verdict: Option<(&str, u64)>) -> Option<String> {
        let lineage = self.lineage.as_ref()?;
        let us = |at: u64| at.saturating_sub(self.t0) as f64 / 1000.0;
        let mut trace = Trace::from_lineage_until(lineage, self.t0, verdict.map(|(_, at)| at));
        if let Some(root) = lineage.entries().next() {
            for (at, sig) in &self.signals_sent {
                trace.phase(&format!("SIG{}", sig.name()), root.pid, us(*at));
            }
            if let Some((name, at)) = verdict {
                trace.phase(&format!("verdict {name}"), root.pid, us(at));
            }
        }
        let mut json = trace.to_json();
        // The format's free-form metadata: where the lineage came from.
        json["otherData"] = serde_json::json!({ "lineage_source": lineage.source().as_str() });
        serde_json::to_string(&json).ok()
    }
}
