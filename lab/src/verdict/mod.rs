//! Verdicts: the outcome of one trial as the supervisor reports it to the
//! lab ([`Outcome`]), its verdict, and a guard's panic. The rules that turn
//! what the kernel reported into one are the trial engine's judge
//! (`trial/judge`).

use std::fmt;

use serde::{Deserialize, Serialize};

mod rung;

use crate::forensics::{Diagnosis, Signature};
pub use rung::{BadRung, NodeRung, Rung};

/// The outcome class of one trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The planned course finished and the cascade left nothing alive.
    Pass,
    /// Some process was alive after the teardown once the trial was
    /// quiescent (or kept running on a CPU; or, where `/proc` cannot be
    /// read, outlived both cascade windows).
    Orphan,
    /// The planned course did not finish before the deadline, and a live
    /// process was blocked (or one kept spinning up to the deadline's cap).
    Hang,
    /// A guard of the canonical path stopped a deadlock and said why.
    Panic,
    /// An fd leak was found: a reaped child's stdout still had a writer.
    Leak,
    /// A program under test (a `command` node) ended with another exit
    /// status or signal than expected (`expect_exit`, 0 by default).
    Fail,
    /// A node died during the course while its parent was alive and nothing
    /// of the plan signalled it (PDEATHSIG following a thread, say).
    EarlyDeath,
    /// A signal sent to a stale PID killed an innocent process that had
    /// been handed the same PID.
    InnocentKill,
    /// The lab itself failed in this trial (a spawn failed, say).
    Error,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 9] = [
        Verdict::Pass,
        Verdict::Orphan,
        Verdict::Hang,
        Verdict::Panic,
        Verdict::Leak,
        Verdict::Fail,
        Verdict::EarlyDeath,
        Verdict::InnocentKill,
        Verdict::Error,
    ];

    /// The verdict's name (`pass`, `orphan`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Orphan => "orphan",
            Verdict::Hang => "hang",
            Verdict::Panic => "panic",
            Verdict::Leak => "leak",
            Verdict::Fail => "fail",
            Verdict::EarlyDeath => "early-death",
            Verdict::InnocentKill => "innocent-kill",
            Verdict::Error => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one trial came to, as the supervisor reports it to the lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Processes alive after the teardown once the trial was quiescent
    /// (orphan verdicts).
    pub orphans: u32,
    /// Processes alive when the deadline passed (hang verdicts).
    pub hung: u32,
    /// From the start of the trial to the moment its verdict was known (µs).
    pub time_to_verdict_us: u64,
    /// From the start of the trial to the end of its cleanup (µs).
    pub duration_us: u64,
    /// A pass whose cascade took longer than the window floor (10 ms) from
    /// the teardown (or, judged by windows, needed the confirmation
    /// window): that latency (µs).
    pub slow_cascade_us: Option<u64>,
    /// The length of each cascade window used (µs), from measured latency;
    /// 0 when the verdict came from evidence (quiescence), as it does
    /// wherever `/proc` can be read.
    pub window_us: u64,
    /// What ended the tree: a rung of the teardown ladder (`teardown-KILL`,
    /// `group-TERM`, `pidfds-KILL`, `cgroup.kill`), `none` (it ended by
    /// itself), or `cleanup` (the supervisor's final kill).
    pub kill_rung: Rung,
    /// Nodes that reported `created`.
    pub nodes_spawned: u32,
    /// Whether the trial ran in a cgroup of its own.
    pub cgroup: bool,
    /// The supervisor's PID namespace: `pid`, `pid+user` or `none` (set by
    /// the lab, which started the supervisor; empty before that).
    #[serde(default)]
    pub pid_namespace: String,
    /// Node paths of the survivors (orphan) or of the blocked (hang).
    pub survivors: Vec<String>,
    /// Why, for every verdict but `pass`.
    pub reason: Option<String>,
    /// The rung of the teardown ladder in effect when each node died
    /// (written `path=RUNG`: `root=teardown-TERM`), for the nodes that died
    /// after the teardown.
    pub node_rungs: Vec<NodeRung>,
    /// Legacy oracle: kill targets that `/proc/PID/stat` read as alive right
    /// after their kill although their pidfd reported the exit within the
    /// trial (false orphans the `/proc` oracle would have counted).
    pub false_orphans: u32,
    /// Where the guard that made a `panic` verdict stopped the trial
    /// (`file:line` of the lab's source).
    pub panic_site: Option<String>,
    /// The signatures named in this trial (`writer-elsewhere`, ...), each
    /// once, from the forensics of a hang or orphan or from the guard that
    /// panicked.
    pub signatures: Vec<Signature>,
    /// The stuck state, read before any kill (hang and orphan verdicts).
    pub diagnosis: Option<Diagnosis>,
    /// The hung tree was left alive for the user (`--keep-hung`) until the
    /// lab released it.
    pub kept: bool,
    /// Where the trial's time went, stretch by stretch (µs); its JSON key
    /// is `phases`, as before the type was named [`Timings`].
    #[serde(default, rename = "phases")]
    pub timings: Timings,
    /// What a program run as the root (`lab exec`) wrote, for a trial that
    /// did not pass; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ProgramOutput>,
    /// The timeline of a trial whose root is a program (`lab exec`) that
    /// did not pass, as Chrome trace-event JSON text (Perfetto opens it):
    /// a row per process, its life a span, its execs and the signals sent
    /// as instants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// With a program at the root (`lab exec`), where the lineage has exit
    /// statuses (the process events): each descendant of the program that
    /// exited with a status other than 0, or died by a signal, before the
    /// lab sent one or reached the verdict, in words without its PID
    /// (``sh -c exit 2` exited with status 2`), so that equal failures
    /// group across trials; in any verdict, a `pass` included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descendant_failures: Vec<String>,
    /// When the plan's first kill was due, µs after its target's spawn
    /// (its `created` report; a program's spawn returning): the moment
    /// drawn for this trial, or the plan's. `None` for a plan without a
    /// kill, a kill that is not timed (`ready`, a gate), or one whose
    /// moment never came to be known (its target never born).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_planned_us: Option<u64>,
    /// When the first signal of the plan's first kill was sent, µs after
    /// its target's spawn; `None` when it was never sent (the target ended
    /// first, or the trial ended before the moment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_sent_us: Option<u64>,
    /// How a program run as the root ended, when it was reaped: its exit
    /// status (0..=255), or 256 + the signal that ended it
    /// ([`crate::phase::exit_value`]); `None` for a plan's own root, or a
    /// program not reaped. `lab wrap` exits with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_exit: Option<i64>,
    /// Under a program run as the root, the live processes outside the
    /// plan of a hang, or alive after the program exited (whatever verdict
    /// outranked the orphan: a `fail` too), one by one: each one's command
    /// line and its description with its lineage (`pid N (`sleep 30`),
    /// started by ...`), in the order of the reason. `lab wrap` names and
    /// allows survivors from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named: Vec<NamedProcess>,
}

/// One live process outside the plan, named ([`Outcome::named`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedProcess {
    /// Its command line (arguments joined by spaces).
    pub command: String,
    /// Who it is: `pid N (`cmd`)` and who started it.
    pub description: String,
}

/// The stdout and stderr of a program run as a trial's root: the last
/// 1 MiB of each (invalid UTF-8 replaced) and the count of every byte
/// written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramOutput {
    /// The tail of its stdout.
    pub stdout: String,
    /// The tail of its stderr.
    pub stderr: String,
    /// Bytes it wrote to stdout.
    pub stdout_bytes: u64,
    /// Bytes it wrote to stderr.
    pub stderr_bytes: u64,
}

impl ProgramOutput {
    /// The last `lines` lines of its stderr (or, when that is empty, of its
    /// stdout), for a summary: `(stream name, text)`; `None` when both are
    /// empty.
    pub fn tail_lines(&self, lines: usize) -> Option<(&'static str, String)> {
        let (name, text) = if self.stderr.trim().is_empty() {
            ("stdout", &self.stdout)
        } else {
            ("stderr", &self.stderr)
        };
        if text.trim().is_empty() {
            return None;
        }
        let all: Vec<&str> = text.trim_end().lines().collect();
        let from = all.len().saturating_sub(lines);
        Some((name, all[from..].join("\n")))
    }
}

/// Where one trial's time went (µs, from the supervisor's
/// `CLOCK_MONOTONIC`); a stretch the trial never reached is 0. The sum is the
/// trial's duration; what the lab spends around it (the request to the
/// supervisor, the record) is not in it. "Phase" in the lab names a node's
/// lifecycle point (created, armed, ready, exiting) and its reports; these
/// are the trial's own stretches of time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// From the trial's start to its root's spawn: the trial cgroup, the
    /// phase channel, the gates, the host action.
    pub setup_us: u64,
    /// The root's spawn in the supervisor: the `clone3` (or `fork`) of the
    /// supervisor into the trial's cgroup with its lifeline (for an exec'd
    /// root or a command, up to the `exec`), until the call returns.
    pub spawn_us: u64,
    /// From the root's spawn returning to the tree ready (every node ready,
    /// dead or unborn), or to the verdict when it never was.
    pub build_us: u64,
    /// From the tree ready to the teardown: the kill schedule.
    pub course_us: u64,
    /// From the teardown to the verdict: the cascade, judged from evidence.
    pub cascade_us: u64,
    /// From the verdict to the end of the cleanup: `cgroup.kill`, the reap,
    /// the cgroup removed.
    pub cleanup_us: u64,
}

impl Timings {
    /// The timings of a trial from its times (`CLOCK_MONOTONIC` ns): start,
    /// root's spawn called, root's spawn returned, tree ready, teardown,
    /// verdict, end; each later time is clamped to the next, and a stretch
    /// not reached is 0.
    pub fn from_times(
        start: u64,
        root: u64,
        spawned: u64,
        ready: Option<u64>,
        teardown: Option<u64>,
        verdict: u64,
        end: u64,
    ) -> Timings {
        let us = |a: u64, b: u64| b.saturating_sub(a) / 1000;
        let root = root.clamp(start, verdict);
        let spawned = spawned.clamp(root, verdict);
        let teardown = teardown.map(|t| t.clamp(spawned, verdict));
        let ready = ready.map(|r| r.clamp(spawned, teardown.unwrap_or(verdict)));
        let built = ready.or(teardown).unwrap_or(verdict);
        Timings {
            setup_us: us(start, root),
            spawn_us: us(root, spawned),
            build_us: us(spawned, built),
            course_us: ready.map_or(0, |r| us(r, teardown.unwrap_or(r))),
            cascade_us: teardown.map_or(0, |t| us(t, verdict)),
            cleanup_us: us(verdict, end),
        }
    }

    /// Their sum (µs): the trial's duration.
    pub fn total_us(&self) -> u64 {
        self.setup_us
            + self.spawn_us
            + self.build_us
            + self.course_us
            + self.cascade_us
            + self.cleanup_us
    }
}

/// A guard of the canonical path stopped a deadlock: why, where, and the
/// signature it found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardPanic {
    /// The reason, as the guard wrote it.
    pub reason: String,
    /// `file:line` of the guard in the lab's source.
    pub site: String,
    /// The signature the guard found (`duplicated-stdio`, ...), if any.
    pub signature: Option<Signature>,
}

impl GuardPanic {
    /// A guard panic raised at the caller's source location.
    #[track_caller]
    pub fn here(reason: String, signature: Option<Signature>) -> GuardPanic {
        let at = std::panic::Location::caller();
        GuardPanic {
            reason,
            site: format!("{}:{}", at.file(), at.line()),
            signature,
        }
    }
}

impl Outcome {
    /// An `error` outcome: the lab could not run the trial, for `reason`;
    /// `us` is the time spent (µs).
    pub fn error(reason: String, us: u64) -> Outcome {
        Outcome {
            verdict: Verdict::Error,
            orphans: 0,
            hung: 0,
            time_to_verdict_us: us,
            duration_us: us,
            slow_cascade_us: None,
            window_us: 0,
            kill_rung: Rung::Cleanup,
            nodes_spawned: 0,
            cgroup: false,
            pid_namespace: String::new(),
            survivors: Vec::new(),
            reason: Some(reason),
            node_rungs: Vec::new(),
            false_orphans: 0,
            panic_site: None,
            signatures: Vec::new(),
            diagnosis: None,
            kept: false,
            timings: Timings::default(),
            output: None,
            trace: None,
            descendant_failures: Vec::new(),
            kill_planned_us: None,
            kill_sent_us: None,
            root_exit: None,
            named: Vec::new(),
        }
    }
}

/// `items` as the text of one CSV cell: their names, separated by spaces.
pub fn words<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A reason with what differs in every trial (PIDs, pipe inodes) written
/// `N`, so that equal failures group: `pid 4711` -> `pid N`,
/// `pipe:[93211]` -> `pipe:[N]`.
pub(crate) fn reason_class(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(at) = ["pid ", "pipe:["]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
        .min()
    {
        let (i, len) = at;
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{reason_class, Timings};

    #[test]
    fn reasons_group_without_their_pids_and_inodes() {
        assert_eq!(
            reason_class("worker thread belongs to pid 4711, this is pid 4712: copy"),
            "worker thread belongs to pid N, this is pid N: copy"
        );
        assert_eq!(
            reason_class("fd 1 and fd 10 -> pipe:[93211] in node 0 (pid 7)"),
            "fd 1 and fd 10 -> pipe:[N] in node 0 (pid N)"
        );
        // Nothing to replace, and a prefix without digits, stay as they are.
        assert_eq!(reason_class("a pid is a pipe:[x]"), "a pid is a pipe:[x]");
        assert_eq!(
            reason_class("node 0.1 (last phase created)"),
            "node 0.1 (last phase created)"
        );
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn the_timings_split_a_trial_at_its_times_and_sum_to_its_duration() {
        // Start 0, spawn called at 1 ms, returned at 1.2 ms, ready at 3 ms,
        // teardown at 5 ms, verdict at 6 ms, end at 6.5 ms.
        let p = Timings::from_times(
            0,
            MS,
            MS + MS / 5,
            Some(3 * MS),
            Some(5 * MS),
            6 * MS,
            6 * MS + MS / 2,
        );
        assert_eq!(
            p,
            Timings {
                setup_us: 1000,
                spawn_us: 200,
                build_us: 1800,
                course_us: 2000,
                cascade_us: 1000,
                cleanup_us: 500,
            }
        );
        assert_eq!(p.total_us(), 6500);
    }

    #[test]
    fn a_stretch_never_reached_is_zero_and_times_out_of_order_are_clamped() {
        // Never ready, never torn down: the build runs to the verdict.
        let p = Timings::from_times(0, MS, 2 * MS, None, None, 4 * MS, 4 * MS);
        assert_eq!(
            (p.spawn_us, p.build_us, p.course_us, p.cascade_us),
            (1000, 2000, 0, 0)
        );
        // A spawn that returned after the verdict (an error outcome) is cut
        // at the verdict; no stretch is negative.
        let p = Timings::from_times(0, MS, 9 * MS, Some(MS / 2), None, 3 * MS, 3 * MS);
        assert_eq!((p.spawn_us, p.build_us, p.course_us), (2000, 0, 0));
        assert_eq!(p.total_us(), 3000);
    }
}
