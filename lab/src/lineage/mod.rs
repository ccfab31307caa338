//! Lineage: who started each process of a trial, and when, so that a
//! leaked process is traced to the node or program that made it.
//!
//! This module is lineage as a model: the forest of processes, what feeds
//! it and how a process is described from it. Lineage as watched during a
//! trial (listening, scanning while the course runs) is
//! [`crate::trial`]'s `lineage_watch` module; the `/proc` readers are in
//! [`crate::procfs`].
//!
//! Two sources fill a [`Lineage`]:
//! - [`LineageSource::ProcConnector`]: the kernel's fork, exec and exit
//!   events ([`lifeline::ProcEvents`], root only), fed with
//!   [`Lineage::apply`] or the `record_*` calls: exact, with times, and it
//!   sees processes that lived for a microsecond;
//! - [`LineageSource::ProcScan`]: `/proc` read while the processes live
//!   ([`crate::procfs::scan_tree`], [`Lineage::from_scan`]): parents only as they are at
//!   the scan (an orphan already shows its subreaper), and no times.
//!
//! A PID reused within a lineage starts a new [`Entry`]; the older one stays
//! (in [`Lineage::entries`]) and keeps its own place in the tree.
//!
//! # References
//! - [proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html),
//!   [proc_pid_cmdline(5)](https://man7.org/linux/man-pages/man5/proc_pid_cmdline.5.html),
//!   [proc_pid_comm(5)](https://man7.org/linux/man-pages/man5/proc_pid_comm.5.html)
//! - Linux `drivers/connector/cn_proc.c`

use std::collections::HashMap;
use std::fmt;

use lifeline::ProcEvent;

use crate::procfs::Scanned;

mod describe;

pub use describe::{
    command_of, describe_process, in_backticks, Known, COMMAND_MAX, FORK_OF_A_NODE,
};

/// Where a [`Lineage`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineageSource {
    /// The kernel's process events connector: fork, exec, exit, with the
    /// kernel's `CLOCK_MONOTONIC` times (a listener in the initial PID and
    /// user namespaces; before Linux 6.6, with `CAP_NET_ADMIN`).
    ProcConnector,
    /// Scans of `/proc` while the processes lived: parents as at the scan,
    /// times when first seen (the fallback).
    ProcScan,
}

impl LineageSource {
    /// Its name in output and CSV: `proc-connector` or `proc-scan`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineageSource::ProcConnector => "proc-connector",
            LineageSource::ProcScan => "proc-scan",
        }
    }
}

impl fmt::Display for LineageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `execve` of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    /// When (ns, `CLOCK_MONOTONIC`); `None` from a scan.
    pub at_ns: Option<u64>,
    /// What it ran: its command line or name as read then; empty when it
    /// could not be read (the process was already gone).
    pub command: String,
}

/// The end of a process as the lineage saw it (named apart from
/// `error::Exit`, the lab's own exit status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessExit {
    /// The raw wait status (`code << 8`, or the signal number).
    pub status: i32,
    /// When (ns, `CLOCK_MONOTONIC`).
    pub at_ns: u64,
}

impl ProcessExit {
    /// The signal that ended the process (the low 7 bits of the raw wait
    /// status: `WTERMSIG`), or `None` when it exited (or its status is not
    /// known: a scan records -1).
    ///
    /// # References
    /// - [wait(2)](https://man7.org/linux/man-pages/man2/wait.2.html)
    ///   (`WIFSIGNALED`, `WTERMSIG`)
    pub fn signal(&self) -> Option<i32> {
        let sig = self.status & 0x7f;
        (self.status >= 0 && sig != 0 && sig != 0x7f).then_some(sig)
    }
}

/// One process of a lineage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Its PID (initial PID namespace for the connector, the scanner's for a scan).
    pub pid: i32,
    /// The PID of the process that started it (for a scan: its parent at
    /// the scan); `None` when unknown.
    pub ppid: Option<i32>,
    /// When it was forked (ns, `CLOCK_MONOTONIC`); `None` when not seen.
    pub forked_ns: Option<u64>,
    /// What it runs: its last exec's command, else the command of the
    /// process it is a copy of (a fork without exec runs its parent's
    /// program); `None` when unknown.
    pub command: Option<String>,
    /// Its execs, in order.
    pub execs: Vec<Exec>,
    /// When it called `setsid` (ns): it left its session and process group.
    pub setsid_ns: Option<u64>,
    /// How it ended; `None` while it lives (or its exit was not seen).
    pub exit: Option<ProcessExit>,
    /// Its parent's index in `Lineage::entries`.
    parent: Option<usize>,
}

/// The lineage of the processes of a trial: a forest of [`Entry`]s, by PID.
#[derive(Clone, Debug)]
pub struct Lineage {
    source: LineageSource,
    entries: Vec<Entry>,
    /// The entry that holds each PID now.
    current: HashMap<i32, usize>,
    /// With roots, [`Lineage::apply`] keeps only them and their descendants.
    roots: Vec<i32>,
    overruns: u64,
}

impl Default for Lineage {
    /// An empty lineage from [`LineageSource::ProcConnector`] that keeps
    /// every process it is given.
    fn default() -> Self {
        Lineage {
            source: LineageSource::ProcConnector,
            entries: Vec::new(),
            current: HashMap::new(),
            roots: Vec::new(),
            overruns: 0,
        }
    }
}

impl Lineage {
    /// An empty connector lineage that [`apply`](Lineage::apply) restricts
    /// to `roots` and their descendants (the connector reports the whole
    /// machine). The roots get entries without a fork.
    pub fn rooted(roots: &[i32]) -> Self {
        let mut lineage = Lineage {
            roots: roots.to_vec(),
            ..Lineage::default()
        };
        for &r in roots {
            lineage.index_of(r);
        }
        lineage
    }

    /// An empty lineage of `roots` and their descendants built by repeated
    /// `/proc` scans ([`LineageSource::ProcScan`]): the caller records
    /// each process the first time a scan finds it, with the scan's time
    /// (so a fork time is when it was first seen, an upper bound).
    pub fn rooted_scan(roots: &[i32]) -> Self {
        Lineage {
            source: LineageSource::ProcScan,
            ..Lineage::rooted(roots)
        }
    }

    /// Take its facts from the process events connector from now on (a
    /// scanned lineage whose events turned out to flow).
    pub fn use_connector(&mut self) {
        self.source = LineageSource::ProcConnector;
    }

    /// Name `pid` (its command line, read by a scan): its command, and its
    /// last exec's when the event gave none.
    pub fn set_command(&mut self, pid: i32, command: String) {
        let Some(&i) = self.current.get(&pid) else {
            return;
        };
        let e = &mut self.entries[i];
        if let Some(x) = e.execs.last_mut().filter(|x| x.command.is_empty()) {
            x.command.clone_from(&command);
        }
        e.command = Some(command);
    }

    /// Whether `pid` is one of the processes this lineage keeps: a root
    /// or a descendant recorded so far (every process when it has no
    /// roots).
    pub fn keeps(&self, pid: i32) -> bool {
        self.tracks(pid)
    }

    /// A lineage from a `/proc` scan ([`crate::procfs::scan_tree`]): each process's
    /// parent is its `PPid` at the scan, its command its command line (else
    /// its name). Entries whose parent is not in the scan are roots.
    pub fn from_scan(scanned: impl IntoIterator<Item = Scanned>) -> Self {
        let mut lineage = Lineage {
            source: LineageSource::ProcScan,
            ..Lineage::default()
        };
        for s in scanned {
            let i = lineage.push(s.pid);
            let e = &mut lineage.entries[i];
            e.ppid = (s.ppid > 0).then_some(s.ppid);
            e.command = s.cmdline.or((!s.comm.is_empty()).then_some(s.comm));
        }
        for i in 0..lineage.entries.len() {
            let e = &lineage.entries[i];
            let parent = e
                .ppid
                .filter(|&p| p != e.pid)
                .and_then(|p| lineage.current.get(&p).copied());
            lineage.entries[i].parent = parent;
        }
        lineage
    }

    /// Where its facts came from.
    pub fn source(&self) -> LineageSource {
        self.source
    }

    /// How many [`ProcEvent::Overrun`]s [`apply`](Lineage::apply) saw:
    /// when above 0, events were lost and the lineage may miss processes.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Record that `parent` started `child` at `at_ns` (ns,
    /// `CLOCK_MONOTONIC`). The child runs its parent's command until it
    /// execs. A `child` PID already seen forked or exited is a reused PID:
    /// it gets a new entry.
    pub fn record_fork(&mut self, parent: i32, child: i32, at_ns: u64) {
        let p = self.index_of(parent);
        self.born_by(p, at_ns);
        let inherited = self.entries[p].command.clone();
        let c = match self.current.get(&child) {
            Some(&i) if self.entries[i].forked_ns.is_none() && self.entries[i].exit.is_none() => i,
            _ => self.push(child),
        };
        let e = &mut self.entries[c];
        if c != p {
            e.parent = Some(p);
        }
        e.ppid = Some(parent);
        e.forked_ns = Some(at_ns);
        if e.command.is_none() {
            e.command = inherited;
        }
    }

    /// Record that the lab spawned root `pid` to run `command` at `at_ns`
    /// (ns, `CLOCK_MONOTONIC`): its fork time and its command. Its exec is
    /// not recorded here: the process events give it at its own time (a
    /// second exec recorded at the spawn would show it twice).
    pub fn record_spawn(&mut self, pid: i32, command: String, at_ns: u64) {
        let i = self.index_of(pid);
        let e = &mut self.entries[i];
        e.forked_ns = Some(at_ns);
        e.command = Some(command);
    }

    /// Record that `pid` exec'd `argv0_or_comm` (its command line or name;
    /// empty when unknown) at `at_ns` (ns, `CLOCK_MONOTONIC`).
    pub fn record_exec(&mut self, pid: i32, argv0_or_comm: String, at_ns: u64) {
        let i = self.index_of(pid);
        self.born_by(i, at_ns);
        let e = &mut self.entries[i];
        if !argv0_or_comm.is_empty() {
            e.command = Some(argv0_or_comm.clone());
        }
        e.execs.push(Exec {
            at_ns: Some(at_ns),
            command: argv0_or_comm,
        });
    }

    /// Entry `i` acted at `at_ns`, so it was born by then: a fork time
    /// recorded later (a spawn's, taken once the spawn returned, after
    /// the exec) moves back to it.
    fn born_by(&mut self, i: usize, at_ns: u64) {
        let e = &mut self.entries[i];
        if let Some(f) = e.forked_ns.filter(|&f| f > at_ns) {
            e.forked_ns = Some(f.min(at_ns));
        }
    }

    /// Record that `pid` called `setsid` at `at_ns` (ns, `CLOCK_MONOTONIC`).
    pub fn record_setsid(&mut self, pid: i32, at_ns: u64) {
        let i = self.index_of(pid);
        self.entries[i].setsid_ns = Some(at_ns);
    }

    /// Record that `pid` ended with the raw wait status `status` at `at_ns`
    /// (ns, `CLOCK_MONOTONIC`).
    pub fn record_exit(&mut self, pid: i32, status: i32, at_ns: u64) {
        let i = self.index_of(pid);
        self.entries[i].exit = Some(ProcessExit { status, at_ns });
    }

    /// Feed one connector event: a new process (not a thread), an exec
    /// (named by `name(pid)`, typically [`crate::procfs::scan_name`], read at once: the
    /// process may be short-lived), a
    /// setsid, a process's exit (its leader thread's), an overrun (counted).
    /// With roots ([`rooted`](Lineage::rooted)), events of processes outside
    /// the roots' descendants are ignored.
    pub fn apply(&mut self, event: &ProcEvent, name: &dyn Fn(i32) -> Option<String>) {
        match *event {
            ProcEvent::Fork {
                parent_tgid,
                child_pid,
                child_tgid,
                ts_ns,
                ..
            } if child_pid == child_tgid && self.tracks(parent_tgid) => {
                self.record_fork(parent_tgid, child_tgid, ts_ns);
            }
            ProcEvent::Exec { tgid, ts_ns } if self.tracks(tgid) => {
                self.record_exec(tgid, name(tgid).unwrap_or_default(), ts_ns);
            }
            ProcEvent::Sid { tgid, ts_ns } if self.tracks(tgid) => self.record_setsid(tgid, ts_ns),
            ProcEvent::Exit {
                pid,
                tgid,
                exit_code,
                ts_ns,
                ..
            } if pid == tgid && self.tracks(tgid) => self.record_exit(tgid, exit_code, ts_ns),
            ProcEvent::Overrun => self.overruns += 1,
            _ => {}
        }
    }

    /// The entry that holds `pid` now (the latest, if the PID was reused).
    pub fn get(&self, pid: i32) -> Option<&Entry> {
        self.current.get(&pid).map(|&i| &self.entries[i])
    }

    /// Every entry in the order first seen, earlier holders of a reused
    /// PID included.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Every PID of the lineage, ascending, once each.
    pub fn pids(&self) -> impl Iterator<Item = i32> {
        let mut pids: Vec<i32> = self.current.keys().copied().collect();
        pids.sort_unstable();
        pids.into_iter()
    }

    /// The processes below the first one (the program: the lineage's first
    /// entry) that ended by a signal before `before_ns` (ns,
    /// `CLOCK_MONOTONIC`), in the order first seen, each with its signal.
    /// Only exits seen with their status count: the process events
    /// connector's ([`LineageSource::ProcConnector`]); a scan knows none.
    pub fn signal_deaths(&self, before_ns: u64) -> Vec<(&Entry, i32)> {
        self.entries
            .iter()
            .skip(1)
            .filter_map(|e| {
                let exit = e.exit.filter(|x| x.at_ns < before_ns)?;
                Some((e, exit.signal()?))
            })
            .collect()
    }

    /// The descendants (every entry but the first, the root) that ended
    /// before `before_ns` (ns, `CLOCK_MONOTONIC`) with a known status
    /// other than a clean exit: an exit status other than 0, or a signal;
    /// each with its [`ProcessExit`]. A scan records no status (-1): none.
    pub fn failed_exits(&self, before_ns: u64) -> Vec<(&Entry, ProcessExit)> {
        self.entries
            .iter()
            .skip(1)
            .filter_map(|e| {
                let exit = e.exit.filter(|x| x.at_ns < before_ns && x.status > 0)?;
                Some((e, exit))
            })
            .collect()
    }

    /// The PIDs of `pid`'s ancestors, its parent first, up to the oldest
    /// one known; empty for an unknown PID or a root.
    pub fn ancestors(&self, pid: i32) -> Vec<i32> {
        let mut out = Vec::new();
        let Some(&start) = self.current.get(&pid) else {
            return out;
        };
        let mut i = start;
        // Bounded: malformed input (a fork seen after its child's own
        // children) cannot loop forever.
        for _ in 0..self.entries.len() {
            let Some(p) = self.entries[i].parent else {
                break;
            };
            out.push(self.entries[p].pid);
            i = p;
        }
        out
    }

    fn tracks(&self, pid: i32) -> bool {
        self.roots.is_empty() || self.current.contains_key(&pid)
    }

    fn index_of(&mut self, pid: i32) -> usize {
        match self.current.get(&pid) {
            Some(&i) => i,
            None => self.push(pid),
        }
    }

    fn push(&mut self, pid: i32) -> usize {
        self.entries.push(Entry {
            pid,
            ..Entry::default()
        });
        let i = self.entries.len() - 1;
        self.current.insert(pid, i);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000_000;

    /// The example of the brief: a node, a shell it started, and the
    /// shell's background child.
    fn trial() -> Lineage {
        let mut l = Lineage::rooted(&[800]);
        l.record_exec(800, "lab __node".into(), T0);
        l.record_fork(800, 812, T0 + 1_000_000);
        l.record_exec(812, "sh -c sleep 30 & exit 0".into(), T0 + 1_100_000);
        l.record_fork(812, 813, T0 + 3_200_000);
        l.record_exec(813, "sleep 30".into(), T0 + 3_300_000);
        l.record_exit(812, 0, T0 + 3_400_000);
        l
    }

    fn nodes(pid: i32) -> Option<String> {
        (pid == 800).then(|| "node root".to_string())
    }

    #[test]
    fn a_leaked_process_is_traced_to_its_node() {
        let l = trial();
        assert_eq!(l.ancestors(813), vec![812, 800]);
        assert_eq!(l.ancestors(800), Vec::<i32>::new());
        assert_eq!(l.pids().collect::<Vec<_>>(), vec![800, 812, 813]);
        assert_eq!(
            l.describe(813, &nodes, T0),
            "started by `sh -c sleep 30 & exit 0` (pid 812), itself started by node root \
             (pid 800), 3.2 ms after the trial began"
        );
        assert_eq!(
            l.get(812).and_then(|e| e.exit),
            Some(ProcessExit {
                status: 0,
                at_ns: T0 + 3_400_000
            })
        );
        assert_eq!(l.get(813).map(|e| e.execs.len()), Some(1));
        assert_eq!(l.source(), LineageSource::ProcConnector);
    }

    #[test]
    fn descendants_that_died_by_a_signal_are_found_with_it() {
        let mut l = trial();
        // 813 is SIGKILLed (raw status 9), 814 dumps core on SIGSEGV
        // (0x80 | 11), 815 exits 2 (2 << 8), 816 is killed later; a scan's
        // unknown status (-1) and the program's own death do not count.
        l.record_fork(812, 814, T0 + 4_000_000);
        l.record_fork(812, 815, T0 + 4_000_000);
        l.record_fork(812, 816, T0 + 4_000_000);
        l.record_fork(812, 817, T0 + 4_000_000);
        l.record_exit(813, 9, T0 + 5_000_000);
        l.record_exit(814, 0x80 | 11, T0 + 5_000_000);
        l.record_exit(815, 2 << 8, T0 + 5_000_000);
        l.record_exit(816, 9, T0 + 9_000_000);
        l.record_exit(817, -1, T0 + 5_000_000);
        l.record_exit(800, 9, T0 + 5_000_000);
        let found: Vec<(i32, i32)> = l
            .signal_deaths(T0 + 8_000_000)
            .iter()
            .map(|(e, sig)| (e.pid, *sig))
            .collect();
        assert_eq!(found, [(813, 9), (814, 11)]);
        assert_eq!(l.get(815).and_then(|e| e.exit?.signal()), None);
    }

    #[test]
    fn a_copy_runs_its_parents_command_and_names_are_optional() {
        let mut l = trial();
        // A subshell: a fork of 812 without exec, which starts 815.
        l.record_fork(812, 814, T0 + 500);
        l.record_fork(814, 815, T0 - 2_000_000);
        assert_eq!(
            l.get(814).and_then(|e| e.command.clone()).as_deref(),
            Some("sh -c sleep 30 & exit 0")
        );
        let text = l.describe(815, &|_| None, T0);
        assert_eq!(
            text,
            "started by `sh -c sleep 30 & exit 0` (pid 814), itself started by `sh -c sleep 30 & \
             exit 0` (pid 812), itself started by `lab __node` (pid 800), 2.0 ms before the trial began"
        );
        assert_eq!(
            l.describe(999, &nodes, T0),
            "no lineage of pid 999 (proc-connector)"
        );
        assert_eq!(
            l.describe(800, &nodes, T0),
            "started by a process outside the lineage"
        );
    }

    #[test]
    fn a_reused_pid_is_a_new_entry_in_its_own_place() {
        let mut l = Lineage::default();
        l.record_fork(10, 11, 1);
        l.record_exec(11, "first".into(), 2);
        l.record_exit(11, 0, 3);
        l.record_fork(20, 11, 4);
        l.record_fork(11, 12, 5);
        assert_eq!(l.ancestors(12), vec![11, 20]);
        assert_eq!(l.entries().filter(|e| e.pid == 11).count(), 2);
        assert_eq!(l.get(11).and_then(|e| e.exit), None);
        assert_eq!(
            l.describe(11, &|_| None, 0),
            "started by an unknown program (pid 20), 0 µs after the trial began"
        );
    }

    #[test]
    fn events_of_threads_and_strangers_are_ignored() {
        let mut l = Lineage::rooted(&[100]);
        let fork = |parent: i32, pid: i32, tgid: i32| ProcEvent::Fork {
            parent_pid: parent,
            parent_tgid: parent,
            child_pid: pid,
            child_tgid: tgid,
            ts_ns: 7,
        };
        l.apply(&fork(100, 101, 101), &|_| None);
        l.apply(&fork(100, 102, 100), &|_| None); // a thread of 100
        l.apply(&fork(5, 6, 6), &|_| None); // not a descendant
        l.apply(
            &ProcEvent::Exec {
                tgid: 101,
                ts_ns: 8,
            },
            &|p| Some(format!("prog {p}")),
        );
        l.apply(
            &ProcEvent::Sid {
                tgid: 101,
                ts_ns: 9,
            },
            &|_| None,
        );
        let exit = |pid: i32, tgid: i32| ProcEvent::Exit {
            pid,
            tgid,
            exit_code: 9,
            parent_tgid: Some(1),
            ts_ns: 10,
        };
        l.apply(&exit(103, 101), &|_| None); // a thread's exit
        assert_eq!(l.get(101).and_then(|e| e.exit), None);
        l.apply(&exit(101, 101), &|_| None);
        l.apply(&ProcEvent::Overrun, &|_| None);
        assert_eq!(l.pids().collect::<Vec<_>>(), vec![100, 101]);
        let e = l.get(101).cloned().unwrap_or_default();
        assert_eq!(e.command.as_deref(), Some("prog 101"));
        assert_eq!(e.setsid_ns, Some(9));
        assert_eq!(
            e.exit,
            Some(ProcessExit {
                status: 9,
                at_ns: 10
            })
        );
        assert_eq!(l.overruns(), 1);
        assert!(l
            .describe(101, &|_| None, 0)
            .ends_with("(lineage incomplete: events were lost)"));
    }

    #[test]
    fn a_scan_gives_parents_without_times() {
        let s = |pid: i32, ppid: i32, comm: &str, cmdline: Option<&str>| Scanned {
            pid,
            ppid,
            comm: comm.into(),
            cmdline: cmdline.map(str::to_string),
        };
        let l = Lineage::from_scan([
            s(800, 1, "lab", Some("lab __node")),
            s(812, 800, "sh", Some("sh -c sleep 30 & exit 0")),
            s(813, 812, "sleep", None),
        ]);
        assert_eq!(l.source(), LineageSource::ProcScan);
        assert_eq!(l.ancestors(813), vec![812, 800]);
        assert_eq!(
            l.get(813).and_then(|e| e.command.clone()).as_deref(),
            Some("sleep")
        );
        assert_eq!(
            l.describe(813, &nodes, T0),
            "started by `sh -c sleep 30 & exit 0` (pid 812), itself started by node root (pid 800)"
        );
        assert_eq!(
            l.describe(800, &nodes, T0),
            "started by pid 1, outside the lineage"
        );
    }
}
