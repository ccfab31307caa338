//! Forensics: the stuck state of a trial, read before any kill, and the
//! signatures of `docs/design.md` (section "diagnosis of a hang") named in it.
//!
//! A hang or an orphan leaves live processes. Before the supervisor ends
//! them, it reads for each one its node path, pid, ppid, command, every
//! thread's state, wchan and blocking syscall, and its fd table (targets,
//! pipe inodes, access mode, close-on-exec), then looks for the signatures:
//! `self-pipe-keeper`, `duplicated-stdio`, `writer-elsewhere`,
//! `lone-futex-waiter` and `full-pipe`, each of the four that say a wait can
//! never end only when every process the wait depends on waits without a
//! timeout (else `may-wake`: slow is not stuck). All of it comes from `/proc`, which is
//! the right tool for a process stuck for a long time (and the wrong one for
//! deciding whether a process has exited: verdicts never use it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::procfs::{self, ProcessState};

/// The stuck state of one trial and the signatures found in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The trial and its verdict.
    #[serde(flatten)]
    pub subject: Subject,
    /// Every live process of the trial, in pid order.
    pub processes: Vec<ProcessState>,
    /// The signatures found, in report order ([`Signature::ALL`]).
    pub signatures: Vec<Sighting>,
    /// What could not be read, and why (no root for kernel stacks, no gdb).
    pub notes: Vec<String>,
}

/// What a diagnosis is about: the trial and its verdict.
#[serde_with::serde_as]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The verdict it was read for (`hang`, `orphan`).
    pub verdict: String,
    /// Scenario name.
    pub scenario: String,
    /// The plan's seed.
    #[serde_as(as = "serde_with::PickFirst<(serde_with::DisplayFromStr, _)>")]
    pub seed: u64,
    /// Strategy name.
    pub strategy: String,
    /// Trial index.
    pub trial: u64,
    /// The deadline of the planned course (ms).
    pub deadline_ms: u64,
}

/// A signature of `docs/design.md` ("diagnosis of a hang"): a known shape of a
/// stuck trial, found by the forensics in a stuck state or by a guard of the
/// canonical path before it deadlocks. Written by its kebab-case name
/// (`self-pipe-keeper`, ...) in the CSV and in the supervisor's JSON; the
/// variants are in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signature {
    /// A process waits to read a pipe whose write end it holds itself: EOF
    /// can never come (a leaked lifeline write end, casebook 2).
    SelfPipeKeeper,
    /// A process waits to read a pipe whose write end another process
    /// holds (a lingering helper with duplicated stdio, casebook 3).
    WriterElsewhere,
    /// A pipe at fd 0, 1 or 2 is also open at a higher fd of the same
    /// process, in the same direction (casebook 3).
    DuplicatedStdio,
    /// A process is blocked writing a full pipe that no reader is reading
    /// (casebook 5).
    FullPipe,
    /// A single-threaded process asleep in a private futex wait: no thread
    /// is left that could wake it (casebook 4).
    LoneFutexWaiter,
    /// A process kept running on a CPU past the deadline without a phase
    /// report, up to the cap of the extensions: a livelock, not a blocked
    /// wait (found by the supervisor from `schedstat`, not in a stuck
    /// state).
    Spinning,
    /// A wait that one of the four signatures above would name (a pipe
    /// read or write, a lone futex wait), but a process it depends on
    /// waits with a timeout, runs, or could not be read: it may still wake
    /// (a slow tree, not a stuck one). The sighting says which signature it
    /// is not ([`Sighting::instead_of`]) and why.
    MayWake,
}

impl Signature {
    /// Every signature, in report order.
    pub const ALL: [Signature; 7] = [
        Signature::SelfPipeKeeper,
        Signature::WriterElsewhere,
        Signature::DuplicatedStdio,
        Signature::FullPipe,
        Signature::LoneFutexWaiter,
        Signature::Spinning,
        Signature::MayWake,
    ];

    /// Its name (`self-pipe-keeper`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signature::SelfPipeKeeper => "self-pipe-keeper",
            Signature::WriterElsewhere => "writer-elsewhere",
            Signature::DuplicatedStdio => "duplicated-stdio",
            Signature::FullPipe => "full-pipe",
            Signature::LoneFutexWaiter => "lone-futex-waiter",
            Signature::Spinning => "spinning",
            Signature::MayWake => "may-wake",
        }
    }

    /// Whether it says that a wait can never end (`self-pipe-keeper`,
    /// `writer-elsewhere`, `full-pipe`, `lone-futex-waiter`): it is named
    /// only when every process the wait depends on waits without a timeout
    /// (else the wait is [`Signature::MayWake`]).
    pub fn says_never(self) -> bool {
        matches!(
            self,
            Signature::SelfPipeKeeper
                | Signature::WriterElsewhere
                | Signature::FullPipe
                | Signature::LoneFutexWaiter
        )
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a signature: {0:?}")]
pub struct UnknownSignature(pub String);

impl FromStr for Signature {
    type Err = UnknownSignature;

    /// A signature from its name.
    ///
    /// # Errors
    /// [`UnknownSignature`] for any other text.
    fn from_str(s: &str) -> Result<Signature, UnknownSignature> {
        Signature::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| UnknownSignature(s.to_string()))
    }
}

/// An fd of some process of the trial, named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdRef {
    /// The process.
    pub pid: i32,
    /// Who it is ([`ProcessState::who`](crate::procfs::ProcessState::who)).
    pub who: String,
    /// The fd.
    pub fd: i32,
}

/// A signature found in the stuck state, with what it was found in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// Which signature.
    #[serde(rename = "name")]
    pub signature: Signature,
    /// The process it is about.
    pub pid: i32,
    /// Who that is.
    pub who: String,
    /// The pipe involved, if any.
    pub pipe: Option<u64>,
    /// That process's fds involved.
    pub fds: Vec<i32>,
    /// The other fds involved: the write ends elsewhere (`writer-elsewhere`),
    /// the blocked readers (`full-pipe`).
    pub others: Vec<FdRef>,
    /// One readable line.
    pub text: String,
    /// The processes whose action could end the wait, in pid order: the
    /// holders of the pipe's write end (`self-pipe-keeper`,
    /// `writer-elsewhere`; the process itself among them when it holds
    /// one), its readers (`full-pipe`), the process itself
    /// (`lone-futex-waiter`: only a timeout could end its wait). Empty for a
    /// signature that is no wait (`duplicated-stdio`).
    #[serde(default)]
    pub depends_on: Vec<i32>,
    /// For `may-wake`: the signature the wait would have been named had
    /// every process of `depends_on` waited without a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instead_of: Option<Signature>,
}

impl Diagnosis {
    /// The signatures found, each once, in report order.
    pub fn found(&self) -> Vec<Signature> {
        Signature::ALL
            .into_iter()
            .filter(|g| self.signatures.iter().any(|s| s.signature == *g))
            .collect()
    }
}

/// How much of each process a capture reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything a reader of the diagnosis needs: command lines, kernel
    /// stacks (as root), PIDs as the lab sees them, and with `gdb` every
    /// thread's backtrace.
    Full {
        /// Add gdb's all-thread backtraces.
        gdb: bool,
    },
    /// Only what finds the signatures (states, blocking calls, fd tables):
    /// for a trial whose diagnosis will not be written (its cell has had its
    /// `--max-diagnoses`), so that its signatures are still counted.
    Signatures,
}

/// Read every process in `pids` (the trial's live processes, distinct and in
/// the order the diagnosis lists them; those that vanish meanwhile are
/// skipped), name them from `nodes` (`(pid, node path)`
/// of the plan's nodes), and find the signatures. With [`Detail::Full`],
/// kernel stacks are read when the lab runs as root, PIDs read inside a PID
/// namespace are translated to the lab's, and with `gdb` all-thread
/// backtraces are added (or a note saying why there are none);
/// [`Detail::Signatures`] reads none of these, nor command lines, and says
/// so in a note.
pub fn capture(
    subject: Subject,
    pids: &[i32],
    nodes: &[(i32, String)],
    detail: Detail,
) -> Diagnosis {
    let full = matches!(detail, Detail::Full { .. });
    let root = rustix::process::geteuid().is_root();
    let mut processes: Vec<ProcessState> = pids
        .iter()
        .filter_map(|&pid| procfs::read_process(pid, full && root, full))
        .collect();
    let node_of = |pid: i32| {
        nodes
            .iter()
            .find(|(p, _)| *p == pid)
            .map(|(_, path)| path.clone())
    };
    // The diagnosis runs in the supervisor, the subreaper of the trial.
    let supervisor = std::process::id() as i32;
    for p in &mut processes {
        p.node = node_of(p.pid);
        p.who = match (&p.node, node_of(p.ppid)) {
            (Some(path), _) => format!("node {path}"),
            (None, Some(parent)) => format!("outside the plan, child of node {parent}"),
            (None, None) if p.ppid == supervisor => "outside the plan, orphaned".to_string(),
            (None, None) => "outside the plan".to_string(),
        };
    }
    let mut notes = Vec::new();
    if !full {
        notes.push(
            "brief: only what finds the signatures was read (this cell's --max-diagnoses were written); no command lines, kernel stacks or host PIDs"
                .to_string(),
        );
    } else if !root {
        notes.push("kernel stacks (/proc/PID/stack) need root; not read".to_string());
    }
    if detail == (Detail::Full { gdb: true }) {
        match lifeline::resolve_program("gdb").ok() {
            None => {
                notes.push("--gdb: gdb is not installed (not found in PATH); no backtraces".into())
            }
            Some(path) => {
                for p in &mut processes {
                    let bt = gdb::backtrace(&path, p.pid);
                    p.backtrace = Some(bt.unwrap_or_else(|e| e.to_string()));
                }
            }
        }
    }
    // In a PID namespace of its own, PIDs read inside become the lab's
    // (after gdb, which ran inside), so that what is printed names them.
    if full {
        notes.extend(crate::pidns::host_view(&mut processes));
    }
    let signatures = signature::find(&processes);
    Diagnosis {
        subject,
        processes,
        signatures,
        notes,
    }
}

mod gdb;
mod render;
mod signature;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_capture_reads_what_finds_the_signatures_and_says_so() {
        let me = std::process::id() as i32;
        let full = capture(Subject::default(), &[me], &[], Detail::Full { gdb: false });
        let brief = capture(Subject::default(), &[me], &[], Detail::Signatures);
        let (f, b) = (&full.processes[0], &brief.processes[0]);
        assert!(!f.cmdline.is_empty(), "{f:?}");
        assert!(b.cmdline.is_empty(), "{b:?}");
        assert!(b.threads.iter().all(|t| t.kernel_stack.is_empty()));
        // What the signatures read is there: the fd table and the threads
        // with their states (the test harness's other threads make their
        // number vary between two reads).
        assert!(!b.fds.is_empty() && !b.threads.is_empty(), "{b:?}");
        assert!(b.threads.iter().all(|t| !t.state.is_empty()), "{b:?}");
        assert!(
            brief.notes.iter().any(|n| n.starts_with("brief:")),
            "{:?}",
            brief.notes
        );
        assert!(!full.notes.iter().any(|n| n.starts_with("brief:")));
    }
}
