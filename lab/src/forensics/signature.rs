//! The signatures of `docs/design.md` ("diagnosis of a hang"), found in the fd
//! tables and blocking calls of a stuck trial's processes.
//!
//! A signature that says a wait can never end ([`Signature::says_never`]) is
//! named only when every process the wait depends on waits without a
//! timeout; otherwise the wait is `may-wake`, and says which process may
//! still end it and how (slow is not stuck).

use super::render::how_it_waits;
use super::{FdRef, Sighting, Signature};
use crate::procfs::{ProcessState, ThreadState, Waiting};

/// A sighting as found in the fd tables, before the timeouts are weighed.
struct Candidate {
    /// The sighting, its text without its claim.
    sighting: Sighting,
    /// What its signature claims, added to its text when it holds (`: EOF
    /// can never come`; may be empty).
    claim: String,
}

/// Every signature in `procs`, in report order ([`Signature::ALL`]), then
/// by pid.
pub(super) fn find(procs: &[ProcessState]) -> Vec<Sighting> {
    let mut found = Vec::new();
    for p in procs {
        pipe_waits(p, procs, &mut found);
        duplicated_stdio(p, &mut found);
        lone_futex_waiter(p, &mut found);
    }
    let mut out: Vec<Sighting> = found.into_iter().map(|c| settle(c, procs)).collect();
    out.sort_by_key(|s| (s.signature, s.pid, s.pipe, s.instead_of));
    out.dedup_by(|a, b| {
        (a.signature, a.pid, a.pipe, a.instead_of) == (b.signature, b.pid, b.pipe, b.instead_of)
    });
    out
}

/// The sighting of `c`: its signature with its claim when it says no wait
/// can end ([`Signature::says_never`]) and every process of its
/// `depends_on` waits without a timeout (or has exited), else `may-wake`,
/// naming the processes that may still end the wait and how.
fn settle(c: Candidate, procs: &[ProcessState]) -> Sighting {
    let Candidate {
        mut sighting,
        claim,
    } = c;
    let awake: Vec<String> = if sighting.signature.says_never() {
        sighting
            .depends_on
            .iter()
            .filter_map(|pid| procs.iter().find(|q| q.pid == *pid))
            .filter_map(may_wake)
            .collect()
    } else {
        Vec::new()
    };
    if awake.is_empty() {
        sighting.text.push_str(&claim);
        return sighting;
    }
    let was = sighting.signature;
    sighting.signature = Signature::MayWake;
    sighting.instead_of = Some(was);
    sighting.text = format!(
        "{}; but {}, so the wait may still end (not {was})",
        sighting.text,
        awake.join(", and ")
    );
    sighting
}

/// How process `q` may still end a wait that depends on it, in words
/// (`pid 12 waits with a timeout (in clock_nanosleep)`); `None` when it
/// cannot by itself: it waits without a timeout, or has exited.
fn may_wake(q: &ProcessState) -> Option<String> {
    match q.waiting() {
        Waiting::WithoutTimeout | Waiting::Exited => None,
        _ => Some(format!("pid {} {}", q.pid, how_it_waits(q, None))),
    }
}

/// The distinct pids of `refs`, in order.
fn pids(refs: &[FdRef]) -> Vec<i32> {
    let mut pids: Vec<i32> = refs.iter().map(|r| r.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Whether a thread is asleep (in the kernel, waiting for something).
fn asleep(t: &ThreadState) -> bool {
    matches!(t.state.as_str(), "S" | "D")
}

/// The pipe inode behind `fd` of `p`.
fn pipe_at(p: &ProcessState, fd: i32) -> Option<u64> {
    p.fds.iter().find(|f| f.fd == fd)?.pipe
}

/// The fds of every process that hold `pipe` open for writing (`write`) or
/// reading.
fn holders(procs: &[ProcessState], pipe: u64, write: bool) -> Vec<FdRef> {
    procs
        .iter()
        .flat_map(|p| {
            p.fds
                .iter()
                .filter(move |f| {
                    f.pipe == Some(pipe) && f.mode.contains(if write { 'w' } else { 'r' })
                })
                .map(|f| FdRef {
                    pid: p.pid,
                    who: p.who.clone(),
                    fd: f.fd,
                })
        })
        .collect()
}

/// Whether some thread of `p` waits to read `pipe`.
fn reads_pipe(p: &ProcessState, pipe: u64) -> bool {
    p.threads.iter().filter(|t| asleep(t)).any(|t| {
        t.waits_on
            .iter()
            .any(|w| !w.write && pipe_at(p, w.fd) == Some(pipe))
    })
}

fn list(refs: &[FdRef]) -> String {
    refs.iter()
        .map(|r| format!("pid {} ({}) fd {}", r.pid, r.who, r.fd))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fd_list(fds: &[i32]) -> String {
    fds.iter()
        .map(|f| format!("fd {f}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// `self-pipe-keeper` and `writer-elsewhere` for every pipe a thread of `p`
/// waits to read; `full-pipe` for every pipe it waits to write.
fn pipe_waits(p: &ProcessState, procs: &[ProcessState], out: &mut Vec<Candidate>) {
    for t in p.threads.iter().filter(|t| asleep(t)) {
        let verb = match t.syscall.as_deref() {
            Some(s) if s.contains("poll") => "polls",
            _ => "reads",
        };
        for w in &t.waits_on {
            let Some(pipe) = pipe_at(p, w.fd) else {
                continue;
            };
            if w.write {
                full_pipe(p, t, w.fd, pipe, procs, out);
                continue;
            }
            let writers = holders(procs, pipe, true);
            // Any holder of a write end may write: the reader's own other
            // threads too.
            let depends_on = pids(&writers);
            let (own, others): (Vec<FdRef>, Vec<FdRef>) =
                writers.into_iter().partition(|r| r.pid == p.pid);
            if !own.is_empty() {
                let own_fds: Vec<i32> = own.iter().map(|r| r.fd).collect();
                out.push(Candidate {
                    sighting: Sighting {
                        signature: Signature::SelfPipeKeeper,
                        pid: p.pid,
                        who: p.who.clone(),
                        pipe: Some(pipe),
                        fds: std::iter::once(w.fd).chain(own_fds.iter().copied()).collect(),
                        others: Vec::new(),
                        text: format!(
                            "pid {} ({}) {verb} pipe:[{pipe}] (fd {}) and holds its write end itself ({})",
                            p.pid,
                            p.who,
                            w.fd,
                            fd_list(&own_fds)
                        ),
                        depends_on: depends_on.clone(),
                        instead_of: None,
                    },
                    claim: ": EOF can never come".into(),
                });
            }
            if !others.is_empty() {
                out.push(Candidate {
                    sighting: Sighting {
                        signature: Signature::WriterElsewhere,
                        pid: p.pid,
                        who: p.who.clone(),
                        pipe: Some(pipe),
                        fds: vec![w.fd],
                        text: format!(
                            "pid {} ({}) {verb} pipe:[{pipe}] (fd {}); its write end is held by {}",
                            p.pid,
                            p.who,
                            w.fd,
                            list(&others)
                        ),
                        others,
                        depends_on,
                        instead_of: None,
                    },
                    claim: String::new(),
                });
            }
        }
    }
}

/// `full-pipe`: `p` is blocked writing `pipe`, and no process that holds its
/// read end is reading it: each is blocked on something else.
fn full_pipe(
    p: &ProcessState,
    t: &ThreadState,
    fd: i32,
    pipe: u64,
    procs: &[ProcessState],
    out: &mut Vec<Candidate>,
) {
    let readers: Vec<FdRef> = holders(procs, pipe, false)
        .into_iter()
        .filter(|r| r.pid != p.pid)
        .collect();
    let reader_procs: Vec<&ProcessState> = procs
        .iter()
        .filter(|q| readers.iter().any(|r| r.pid == q.pid))
        .collect();
    let all_elsewhere = reader_procs
        .iter()
        .all(|q| !reads_pipe(q, pipe) && q.threads.iter().all(asleep));
    if readers.is_empty() || !all_elsewhere {
        return;
    }
    let doing: Vec<String> = reader_procs
        .iter()
        .map(|q| {
            let main = &q.threads[0];
            format!(
                "pid {} is blocked in {}{}",
                q.pid,
                main.syscall.as_deref().unwrap_or("the kernel"),
                if main.wchan.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", main.wchan)
                }
            )
        })
        .collect();
    out.push(Candidate {
        sighting: Sighting {
            signature: Signature::FullPipe,
            pid: p.pid,
            who: p.who.clone(),
            pipe: Some(pipe),
            fds: vec![fd],
            text: format!(
                "pid {} ({}) is blocked writing pipe:[{pipe}] (fd {fd}{}), which is full; its reader {} is not reading: {}",
                p.pid,
                p.who,
                if p.threads.len() > 1 {
                    format!(", thread {}", t.tid)
                } else {
                    String::new()
                },
                list(&readers),
                doing.join("; ")
            ),
            depends_on: pids(&readers),
            others: readers,
            instead_of: None,
        },
        claim: String::new(),
    });
}

/// `duplicated-stdio`: a pipe at fd 0, 1 or 2 of `p` that is also open at
/// an fd of 3 or above, in the same direction (another write end of an
/// output, another read end of stdin): a copy that outlives the process
/// keeps the other side from ever seeing EOF.
fn duplicated_stdio(p: &ProcessState, out: &mut Vec<Candidate>) {
    for stdio in p.fds.iter().filter(|f| f.fd <= 2) {
        let Some(pipe) = stdio.pipe else { continue };
        let dir = if stdio.fd == 0 { 'r' } else { 'w' };
        let dups: Vec<i32> = p
            .fds
            .iter()
            .filter(|f| f.fd > 2 && f.pipe == Some(pipe) && f.mode.contains(dir))
            .map(|f| f.fd)
            .collect();
        if dups.is_empty() {
            continue;
        }
        let fds: Vec<i32> = std::iter::once(stdio.fd).chain(dups).collect();
        let named: Vec<String> = fds
            .iter()
            .filter_map(|fd| p.fds.iter().find(|f| f.fd == *fd))
            .map(|f| format!("fd {} ({})", f.fd, f.mode))
            .collect();
        out.push(Candidate {
            sighting: Sighting {
                signature: Signature::DuplicatedStdio,
                pid: p.pid,
                who: p.who.clone(),
                pipe: Some(pipe),
                text: format!(
                    "pid {} ({}) {} -> pipe:[{pipe}]",
                    p.pid,
                    p.who,
                    named.join(" and ")
                ),
                fds,
                others: Vec::new(),
                depends_on: Vec::new(),
                instead_of: None,
            },
            claim: String::new(),
        });
    }
}

/// `lone-futex-waiter`: a single-threaded process asleep in a private futex
/// wait; no other thread exists that could ever wake it (a timeout of its
/// own would: it depends on itself).
fn lone_futex_waiter(p: &ProcessState, out: &mut Vec<Candidate>) {
    let [t] = p.threads.as_slice() else { return };
    let in_futex = match t.futex_private {
        Some(private) => private,
        // The call could not be read: the wait channel still tells.
        None => t.syscall.is_none() && t.wchan.contains("futex"),
    };
    if !asleep(t) || !in_futex {
        return;
    }
    out.push(Candidate {
        sighting: Sighting {
            signature: Signature::LoneFutexWaiter,
            pid: p.pid,
            who: p.who.clone(),
            pipe: None,
            fds: Vec::new(),
            others: Vec::new(),
            text: format!(
                "pid {} ({}) is single-threaded and asleep in a private futex wait ({})",
                p.pid,
                p.who,
                if t.wchan.is_empty() {
                    "futex"
                } else {
                    &t.wchan
                }
            ),
            depends_on: vec![p.pid],
            instead_of: None,
        },
        claim: ": no thread is left that could wake it".into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::{FdEntry, FdWait};

    fn fd(fd: i32, pipe: u64, mode: &str) -> FdEntry {
        FdEntry {
            fd,
            target: format!("pipe:[{pipe}]"),
            pipe: Some(pipe),
            mode: mode.into(),
            cloexec: false,
        }
    }

    fn proc(pid: i32, who: &str, fds: Vec<FdEntry>, threads: Vec<ThreadState>) -> ProcessState {
        ProcessState {
            pid,
            who: who.into(),
            fds,
            threads,
            ..ProcessState::default()
        }
    }

    /// Thread `tid` asleep in a call with a timeout (a sleep, say).
    fn sleeping(tid: i32, syscall: &str) -> ThreadState {
        ThreadState {
            timed_wait: true,
            ..blocked(tid, syscall, &[])
        }
    }

    fn blocked(tid: i32, syscall: &str, waits: &[(i32, bool)]) -> ThreadState {
        ThreadState {
            tid,
            state: "S".into(),
            syscall: Some(syscall.into()),
            waits_on: waits
                .iter()
                .map(|&(fd, write)| FdWait { fd, write })
                .collect(),
            ..ThreadState::default()
        }
    }

    fn names(s: &[Sighting]) -> Vec<(&'static str, i32)> {
        s.iter().map(|s| (s.signature.name(), s.pid)).collect()
    }

    #[test]
    fn every_signature_is_written_by_its_name_in_report_order() {
        let names: Vec<&str> = Signature::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "self-pipe-keeper",
                "writer-elsewhere",
                "duplicated-stdio",
                "full-pipe",
                "lone-futex-waiter",
                "spinning",
                "may-wake"
            ]
        );
        for s in Signature::ALL {
            assert_eq!(s.name().parse::<Signature>(), Ok(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), s);
        }
        assert!(Signature::ALL.windows(2).all(|w| w[0] < w[1]));
        assert!("stuck".parse::<Signature>().is_err());
    }

    #[test]
    fn the_stdio_dup_hang() {
        // The reader reads fd 3 to EOF; the helper holds fd 1 and fd 10.
        let procs = [
            proc(
                10,
                "node root",
                vec![fd(3, 77, "r")],
                vec![blocked(10, "read", &[(3, false)])],
            ),
            proc(
                12,
                "outside the plan",
                vec![fd(1, 77, "w"), fd(10, 77, "w"), fd(11, 77, "r")],
                vec![blocked(12, "pause", &[])],
            ),
        ];
        let s = find(&procs);
        assert_eq!(
            names(&s),
            [("writer-elsewhere", 10), ("duplicated-stdio", 12)]
        );
        assert_eq!(
            s[0].others
                .iter()
                .map(|r| (r.pid, r.fd))
                .collect::<Vec<_>>(),
            [(12, 1), (12, 10)]
        );
        assert_eq!(s[1].fds, [1, 10]);
        assert!(
            s[1].text.contains("fd 1 (w) and fd 10 (w) -> pipe:[77]"),
            "{}",
            s[1].text
        );
    }

    #[test]
    fn a_self_pipe_keeper_and_a_blocked_writer() {
        let keeper = proc(
            20,
            "node 0",
            vec![fd(3, 5, "r"), fd(4, 5, "w")],
            vec![blocked(20, "poll", &[(3, false)])],
        );
        let s = find(std::slice::from_ref(&keeper));
        assert_eq!(names(&s), [("self-pipe-keeper", 20)]);
        assert_eq!(s[0].fds, [3, 4]);
        // The writer is blocked on a full pipe whose reader waits for it.
        let writer = proc(
            31,
            "node 0",
            vec![fd(1, 9, "w")],
            vec![blocked(31, "write", &[(1, true)])],
        );
        let reader = proc(
            30,
            "node root",
            vec![fd(5, 9, "r")],
            vec![blocked(30, "wait4", &[])],
        );
        let s = find(&[reader.clone(), writer.clone()]);
        assert_eq!(names(&s), [("full-pipe", 31)]);
        assert_eq!(s[0].others[0].pid, 30);
        // A reader that is reading the pipe: no full-pipe, just slow.
        let reading = proc(
            30,
            "node root",
            vec![fd(5, 9, "r")],
            vec![blocked(30, "read", &[(5, false)])],
        );
        let s = find(&[reading, writer]);
        assert_eq!(names(&s), [("writer-elsewhere", 30)]);
    }

    #[test]
    fn a_lone_futex_waiter_is_single_threaded() {
        let mut t = blocked(40, "futex", &[]);
        t.futex_private = Some(true);
        let lone = proc(40, "node 0", vec![], vec![t.clone()]);
        assert_eq!(names(&find(&[lone])), [("lone-futex-waiter", 40)]);
        let mut other = t.clone();
        other.tid = 41;
        let crowded = proc(40, "node 0", vec![], vec![t, other]);
        assert!(find(&[crowded]).is_empty());
    }

    #[test]
    fn a_reader_whose_writer_sleeps_with_a_timeout_may_wake() {
        let reader = proc(
            10,
            "node root",
            vec![fd(3, 77, "r")],
            vec![blocked(10, "read", &[(3, false)])],
        );
        let untimed = proc(
            12,
            "outside the plan",
            vec![fd(1, 77, "w")],
            vec![blocked(12, "read", &[])],
        );
        let timed = proc(
            12,
            "outside the plan",
            vec![fd(1, 77, "w")],
            vec![sleeping(12, "clock_nanosleep")],
        );
        // A writer that waits without a timeout: writer-elsewhere.
        let s = find(&[reader.clone(), untimed]);
        assert_eq!(names(&s), [("writer-elsewhere", 10)]);
        assert_eq!(
            (s[0].depends_on.as_slice(), s[0].instead_of),
            (&[12][..], None)
        );
        // A writer asleep with a timeout may still write: may-wake, which
        // says what it is not, and why.
        let s = find(&[reader, timed]);
        assert_eq!(names(&s), [("may-wake", 10)]);
        assert_eq!(s[0].instead_of, Some(Signature::WriterElsewhere));
        assert_eq!((s[0].pipe, s[0].fds.as_slice()), (Some(77), &[3][..]));
        assert!(
            s[0].text.contains(
                "; but pid 12 waits with a timeout (in clock_nanosleep), so the wait may still end (not writer-elsewhere)"
            ),
            "{}",
            s[0].text
        );
        let json = serde_json::to_value(&s[0]).unwrap();
        assert_eq!(json["name"], "may-wake");
        assert_eq!(json["instead_of"], "writer-elsewhere");
        assert_eq!(json["depends_on"], serde_json::json!([12]));
    }

    #[test]
    fn a_keeper_with_a_thread_in_a_timed_wait_may_wake() {
        let keeper = |other: ThreadState| {
            proc(
                20,
                "node 0",
                vec![fd(3, 5, "r"), fd(4, 5, "w")],
                vec![blocked(20, "ppoll", &[(3, false)]), other],
            )
        };
        let s = find(&[keeper(blocked(21, "futex", &[]))]);
        assert_eq!(names(&s), [("self-pipe-keeper", 20)]);
        assert!(s[0].text.ends_with(": EOF can never come"), "{}", s[0].text);
        // Its other thread polls with a timeout: it may write the pipe itself.
        let s = find(&[keeper(sleeping(21, "poll"))]);
        assert_eq!(names(&s), [("may-wake", 20)]);
        assert_eq!(s[0].instead_of, Some(Signature::SelfPipeKeeper));
        assert!(
            !s[0].text.contains("can never") && s[0].text.contains("(thread 21 in poll)"),
            "{}",
            s[0].text
        );
        // A running thread may too.
        let mut running = blocked(21, "futex", &[]);
        running.state = "R".into();
        let s = find(&[keeper(running)]);
        assert_eq!(names(&s), [("may-wake", 20)]);
        assert!(s[0].text.contains("pid 20 is running"), "{}", s[0].text);
    }

    #[test]
    fn a_lone_futex_waiter_with_a_timeout_may_wake() {
        let mut t = blocked(40, "futex", &[]);
        t.futex_private = Some(true);
        let s = find(&[proc(40, "node 0", vec![], vec![t.clone()])]);
        assert_eq!(names(&s), [("lone-futex-waiter", 40)]);
        assert!(s[0].text.ends_with("no thread is left that could wake it"));
        t.timed_wait = true;
        let s = find(&[proc(40, "node 0", vec![], vec![t.clone()])]);
        assert_eq!(names(&s), [("may-wake", 40)]);
        assert_eq!(s[0].instead_of, Some(Signature::LoneFutexWaiter));
        // A call that could not be read (the wait channel named the futex):
        // no claim either.
        let unread = ThreadState {
            syscall: None,
            timed_wait: false,
            wchan: "futex_wait_queue".into(),
            futex_private: None,
            ..t
        };
        let s = find(&[proc(40, "node 0", vec![], vec![unread])]);
        assert_eq!(names(&s), [("may-wake", 40)]);
        assert!(s[0].text.contains("could not be read"), "{}", s[0].text);
    }

    #[test]
    fn a_full_pipe_whose_reader_sleeps_with_a_timeout_may_wake() {
        let writer = proc(
            31,
            "node 0",
            vec![fd(1, 9, "w")],
            vec![blocked(31, "write", &[(1, true)])],
        );
        let reader = proc(
            30,
            "node root",
            vec![fd(5, 9, "r")],
            vec![sleeping(30, "nanosleep")],
        );
        let s = find(&[reader, writer]);
        assert_eq!(names(&s), [("may-wake", 31)]);
        assert_eq!(s[0].instead_of, Some(Signature::FullPipe));
        assert_eq!(s[0].others[0].pid, 30);
    }

    #[test]
    fn duplicated_stdio_is_a_fact_of_the_fd_table_whatever_the_waits() {
        let helper = proc(
            12,
            "outside the plan",
            vec![fd(1, 77, "w"), fd(10, 77, "w")],
            vec![sleeping(12, "clock_nanosleep")],
        );
        let s = find(&[helper]);
        assert_eq!(names(&s), [("duplicated-stdio", 12)]);
        assert!(s[0].depends_on.is_empty());
    }
}
