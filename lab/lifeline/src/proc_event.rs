//! [`ProcEvent`]: one event of the kernel's process events connector
//! (`cn_proc`), parsed from the bytes of its datagram at the offsets of the
//! UAPI headers (native byte order, as netlink uses):
//!
//! | bytes | what | header |
//! | --- | --- | --- |
//! | 0..16 | `struct nlmsghdr`: `len u32`, `type u16` (`NLMSG_DONE`), `flags u16`, `seq u32`, `pid u32` | `include/uapi/linux/netlink.h` |
//! | 16..36 | `struct cn_msg`: `id.idx u32`, `id.val u32`, `seq u32`, `ack u32`, `len u16`, `flags u16` | `include/uapi/linux/connector.h` |
//! | 36..52 | `struct proc_event`: `what u32`, `cpu u32`, `timestamp_ns u64` | `include/uapi/linux/cn_proc.h` |
//! | 52.. | `event_data`: the union, by `what` | `include/uapi/linux/cn_proc.h` |
//!
//! Pure parsing: the socket that reads the datagrams is
//! [`ProcEvents`](crate::ProcEvents).
//!
//! # References
//! - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)
//! - Linux `include/uapi/linux/netlink.h`, `include/uapi/linux/connector.h`,
//!   `include/uapi/linux/cn_proc.h`, `drivers/connector/cn_proc.c`

/// `sizeof(struct nlmsghdr)`.
pub(super) const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct cn_msg)` (checked by a `BUILD_BUG_ON` in `cn_proc.c`).
pub(super) const CN_MSG_LEN: usize = 20;
/// `what`, `cpu` and `timestamp_ns` of `struct proc_event`: the union follows.
const PROC_EVENT_HDR: usize = 16;
/// `NLMSG_DONE`: the type of every connector message.
pub(super) const NLMSG_DONE: u16 = 3;
/// `CN_IDX_PROC` (also the multicast group bound to) and `CN_VAL_PROC`.
pub(super) const CN_IDX_PROC: u32 = 1;
pub(super) const CN_VAL_PROC: u32 = 1;
/// `enum what` of `struct proc_event`.
const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_SID: u32 = 0x80;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One process event, at the thread-group level the lab needs. PIDs are
/// those of the initial PID namespace; `ts_ns` is the kernel's
/// `ktime_get_ns()` at the event: `CLOCK_MONOTONIC` in nanoseconds, the
/// clock of [`monotonic_ns`](crate::monotonic_ns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// A task was created (`fork`, `vfork`, `clone`, `clone3`; a thread too).
    Fork {
        /// The thread that created it (PR_SET_PDEATHSIG follows this thread).
        parent_pid: i32,
        /// The process (thread group) that created it.
        parent_tgid: i32,
        /// The new task's thread id.
        child_pid: i32,
        /// The new task's process id; equal to `child_pid` for a new
        /// process, the creator's own for a thread.
        child_tgid: i32,
        /// Kernel timestamp (ns, `CLOCK_MONOTONIC`).
        ts_ns: u64,
    },
    /// A process completed an `execve` (it is the thread-group leader after it).
    Exec {
        /// The process.
        tgid: i32,
        /// Kernel timestamp (ns, `CLOCK_MONOTONIC`).
        ts_ns: u64,
    },
    /// A process called `setsid`: it left its session and process group
    /// (a group kill no longer reaches it).
    Sid {
        /// The process.
        tgid: i32,
        /// Kernel timestamp (ns, `CLOCK_MONOTONIC`).
        ts_ns: u64,
    },
    /// A thread's name changed (`prctl(PR_SET_NAME)`, a write to
    /// `/proc/PID/comm`); not sent for the name an `execve` sets.
    Comm {
        /// The thread.
        pid: i32,
        /// Its process.
        tgid: i32,
        /// The new name (at most 15 bytes, lossily decoded).
        comm: String,
        /// Kernel timestamp (ns, `CLOCK_MONOTONIC`).
        ts_ns: u64,
    },
    /// A task exited (sent from `do_exit`, before its parent can reap it or
    /// its pidfd reads as exited). For a process, the event with
    /// `pid == tgid`: the leader thread's exit. (A leader that ends with
    /// `pthread_exit` while other threads run, or is replaced by an exec
    /// from another thread, reports it early.)
    Exit {
        /// The thread.
        pid: i32,
        /// Its process.
        tgid: i32,
        /// The raw wait status (`task->exit_code`: `code << 8`, or the
        /// signal number, `| 0x80` with a core dump), as `waitpid` gives it.
        exit_code: i32,
        /// The process it was a child of when it exited (`None` when the
        /// kernel did not say: before Linux 4.18); differs from the parent at
        /// fork when it was reparented (an orphan).
        parent_tgid: Option<i32>,
        /// Kernel timestamp (ns, `CLOCK_MONOTONIC`).
        ts_ns: u64,
    },
    /// The socket's receive queue overflowed (`ENOBUFS`): events were lost
    /// at this point of the stream, and what was read is incomplete.
    Overrun,
}

impl ProcEvent {
    /// Whether this is the creation of a new process (not a thread):
    /// a [`Fork`](ProcEvent::Fork) with `child_pid == child_tgid`.
    pub fn is_new_process(&self) -> bool {
        matches!(self, ProcEvent::Fork { child_pid, child_tgid, .. } if child_pid == child_tgid)
    }

    /// The kernel timestamp (ns, `CLOCK_MONOTONIC`); `None` for an
    /// [`Overrun`](ProcEvent::Overrun).
    pub fn ts_ns(&self) -> Option<u64> {
        match self {
            ProcEvent::Fork { ts_ns, .. }
            | ProcEvent::Exec { ts_ns, .. }
            | ProcEvent::Sid { ts_ns, .. }
            | ProcEvent::Comm { ts_ns, .. }
            | ProcEvent::Exit { ts_ns, .. } => Some(*ts_ns),
            ProcEvent::Overrun => None,
        }
    }
}

/// One netlink message of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Message {
    /// An event of a kind [`ProcEvent`] has.
    Event(ProcEvent),
    /// `PROC_EVENT_NONE`: the acknowledgement of a request whose `cn_msg`
    /// `ack` was `ack - 1`; `err` is a positive errno or 0.
    Ack { ack: u32, err: u32 },
    /// Another connector index or event kind.
    Other,
    /// Too short for what its headers say.
    Malformed,
}

/// Split a datagram into its netlink messages (each `NLMSG_ALIGN`ed to 4
/// bytes) and parse the connector ones.
pub(super) fn parse_datagram(bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut off = 0;
    while bytes.len().saturating_sub(off) >= NLMSG_HDRLEN {
        let (Some(len), Some(kind)) = (u32_at(bytes, off), u16_at(bytes, off + 4)) else {
            break;
        };
        let len = len as usize;
        let Some(msg) = bytes.get(off..off.saturating_add(len)) else {
            out.push(Message::Malformed);
            break;
        };
        if len < NLMSG_HDRLEN {
            out.push(Message::Malformed);
            break;
        }
        if kind == NLMSG_DONE {
            out.push(parse_cn_msg(&msg[NLMSG_HDRLEN..]).unwrap_or(Message::Malformed));
        }
        off += (len + 3) & !3;
    }
    out
}

/// Parse one `struct cn_msg` and the `struct proc_event` it carries;
/// `None` when it is shorter than its fields.
fn parse_cn_msg(cn: &[u8]) -> Option<Message> {
    let (idx, val, ack) = (u32_at(cn, 0)?, u32_at(cn, 4)?, u32_at(cn, 12)?);
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC) {
        return Some(Message::Other);
    }
    let len = usize::from(u16_at(cn, 16)?);
    let ev = cn.get(CN_MSG_LEN..CN_MSG_LEN.checked_add(len)?)?;
    let what = u32_at(ev, 0)?;
    let ts_ns = u64_at(ev, 8)?;
    let data = ev.get(PROC_EVENT_HDR..)?;
    let i = |off: usize| u32_at(data, off).map(|v| v as i32);
    Some(match what {
        PROC_EVENT_NONE => Message::Ack {
            ack,
            err: u32_at(data, 0)?,
        },
        PROC_EVENT_FORK => Message::Event(ProcEvent::Fork {
            parent_pid: i(0)?,
            parent_tgid: i(4)?,
            child_pid: i(8)?,
            child_tgid: i(12)?,
            ts_ns,
        }),
        PROC_EVENT_EXEC => Message::Event(ProcEvent::Exec { tgid: i(4)?, ts_ns }),
        PROC_EVENT_SID => Message::Event(ProcEvent::Sid { tgid: i(4)?, ts_ns }),
        PROC_EVENT_COMM => {
            let raw = data.get(8..24)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            Message::Event(ProcEvent::Comm {
                pid: i(0)?,
                tgid: i(4)?,
                comm: String::from_utf8_lossy(&raw[..end]).into_owned(),
                ts_ns,
            })
        }
        PROC_EVENT_EXIT => Message::Event(ProcEvent::Exit {
            pid: i(0)?,
            tgid: i(4)?,
            exit_code: i(8)?,
            // parent_pid at 16 and parent_tgid at 20 (Linux 4.18); zero
            // where the kernel had none to give.
            parent_tgid: i(20).filter(|&p| p > 0),
            ts_ns,
        }),
        _ => Message::Other,
    })
}

pub(super) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel builds it: `nlmsghdr`, `cn_msg`,
    /// `proc_event` header, then `data` (the union, padded to 24 bytes).
    fn datagram(what: u32, ack: u32, ts_ns: u64, data: &[u8]) -> Vec<u8> {
        let mut union = [0u8; 24];
        union[..data.len()].copy_from_slice(data);
        let ev_len = PROC_EVENT_HDR + union.len();
        let total = NLMSG_HDRLEN + CN_MSG_LEN + ev_len;
        let mut b = Vec::new();
        b.extend((total as u32).to_ne_bytes());
        b.extend(NLMSG_DONE.to_ne_bytes());
        b.extend([0u8; 10]);
        b.extend(CN_IDX_PROC.to_ne_bytes());
        b.extend(CN_VAL_PROC.to_ne_bytes());
        b.extend(7u32.to_ne_bytes());
        b.extend(ack.to_ne_bytes());
        b.extend((ev_len as u16).to_ne_bytes());
        b.extend(0u16.to_ne_bytes());
        b.extend(what.to_ne_bytes());
        b.extend(1u32.to_ne_bytes());
        b.extend(ts_ns.to_ne_bytes());
        b.extend(union);
        b
    }

    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn datagrams_parse_at_the_uapi_offsets() {
        let fork = datagram(PROC_EVENT_FORK, 0, 5, &ints(&[10, 10, 11, 11]));
        assert_eq!(fork.len(), 76);
        assert_eq!(
            parse_datagram(&fork),
            vec![Message::Event(ProcEvent::Fork {
                parent_pid: 10,
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11,
                ts_ns: 5
            })]
        );
        let exit = datagram(PROC_EVENT_EXIT, 0, 9, &ints(&[11, 11, 256, 17, 1, 1]));
        assert_eq!(
            parse_datagram(&exit),
            vec![Message::Event(ProcEvent::Exit {
                pid: 11,
                tgid: 11,
                exit_code: 256,
                parent_tgid: Some(1),
                ts_ns: 9
            })]
        );
        let mut comm = ints(&[12, 11]);
        comm.extend(b"worker\0");
        let comm = datagram(PROC_EVENT_COMM, 0, 1, &comm);
        assert!(matches!(
            &parse_datagram(&comm)[..],
            [Message::Event(ProcEvent::Comm { pid: 12, tgid: 11, comm, .. })] if comm == "worker"
        ));
        let ack = datagram(PROC_EVENT_NONE, 43, 1, &ints(&[1]));
        assert_eq!(parse_datagram(&ack), vec![Message::Ack { ack: 43, err: 1 }]);
        // Two messages in one datagram, and a truncated one.
        let exec = datagram(PROC_EVENT_EXEC, 0, 2, &ints(&[11, 11]));
        let both = [exec.clone(), fork.clone()].concat();
        assert_eq!(parse_datagram(&both).len(), 2);
        assert_eq!(parse_datagram(&exec[..60]), vec![Message::Malformed]);
        assert_eq!(parse_datagram(&[]), vec![]);
    }
}
