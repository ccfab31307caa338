//! The signatures of `docs/design.md` ("diagnosis of a hang"), found in the fd
//! tables and blocking calls of a stuck trial's processes.

use super::{FdRef, Sighting, Signature};
use crate::procfs::{ProcessState, ThreadState};

/// Every signature in `procs`, in report order ([`Signature::ALL`]), then
/// by pid.
pub(super) fn find(procs: &[ProcessState]) -> Vec<Sighting> {
    let mut out = Vec::new();
    for p in procs {
        pipe_waits(p, procs, &mut out);
        duplicated_stdio(p, &mut out);
        lone_futex_waiter(p, &mut out);
    }
    out.sort_by_key(|s| (s.signature, s.pid, s.pipe));
    out.dedup_by(|a, b| a.signature == b.signature && a.pid == b.pid && a.pipe == b.pipe);
    out
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
fn pipe_waits(p: &ProcessState, procs: &[ProcessState], out: &mut Vec<Sighting>) {
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
            let (own, others): (Vec<FdRef>, Vec<FdRef>) =
                writers.into_iter().partition(|r| r.pid == p.pid);
            if !own.is_empty() {
                let own_fds: Vec<i32> = own.iter().map(|r| r.fd).collect();
                out.push(Sighting {
                    signature: Signature::SelfPipeKeeper,
                    pid: p.pid,
                    who: p.who.clone(),
                    pipe: Some(pipe),
                    fds: std::iter::once(w.fd).chain(own_fds.iter().copied()).collect(),
                    others: Vec::new(),
                    text: format!(
                        "pid {} ({}) {verb} pipe:[{pipe}] (fd {}) and holds its write end itself ({}): EOF can never come",
                        p.pid,
                        p.who,
                        w.fd,
                        fd_list(&own_fds)
                    ),
                });
            }
            if !others.is_empty() {
                out.push(Sighting {
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
    out: &mut Vec<Sighting>,
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
    out.push(Sighting {
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
        others: readers,
    });
}

/// `duplicated-stdio`: a pipe at fd 0, 1 or 2 of `p` that is also open at
/// an fd of 3 or above, in the same direction (another write end of an
/// output, another read end of stdin): a copy that outlives the process
/// keeps the other side from ever seeing EOF.
fn duplicated_stdio(p: &ProcessState, out: &mut Vec<Sighting>) {
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
        out.push(Sighting {
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
        });
    }
}

/// `lone-futex-waiter`: a single-threaded process asleep in a private futex
/// wait; no other thread exists that could ever wake it.
fn lone_futex_waiter(p: &ProcessState, out: &mut Vec<Sighting>) {
    let [t] = p.threads.as_slice() else { return };
    let in_futex = match t.futex_private {
        Some(private) => private,
        // The call could not be read: the wait channel still tells.
        None => t.syscall.is_none() && t.wchan.contains("futex"),
    };
    if !asleep(t) || !in_futex {
        return;
    }
    out.push(Sighting {
        signature: Signature::LoneFutexWaiter,
        pid: p.pid,
        who: p.who.clone(),
        pipe: None,
        fds: Vec::new(),
        others: Vec::new(),
        text: format!(
            "pid {} ({}) is single-threaded and asleep in a private futex wait ({}): no thread is left that could wake it",
            p.pid,
            p.who,
            if t.wchan.is_empty() { "futex" } else { &t.wchan }
        ),
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
                "spinning"
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
}
