//! Phase reports: fixed-size records that nodes send their supervisor over a
//! `SOCK_SEQPACKET` socket, each one atomic. The `created` record carries the
//! node's own pidfd (SCM_RIGHTS), so the supervisor watches every node through
//! a pidfd and never through a PID.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

use crate::sys::{monotonic_ns, Pidfd};

/// Size of one record in bytes (well under PIPE_BUF).
pub const RECORD_SIZE: usize = 32;

/// What a node reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// It runs (first thing it does); carries its pidfd. At a `created` gate
    /// it now waits.
    Created,
    /// Parent-death detection is armed. At an `armed` gate it now waits.
    Armed,
    /// All its children are spawned.
    Ready,
    /// It is about to exit by itself with this code.
    Exiting,
    /// It detected its parent's death and is exiting.
    ParentGone,
    /// It could not go on: the value is an errno (spawn failed, say).
    Failed,
    /// A reaped child's captured stdout still had a writer after the EOF
    /// bound: the value is the child's index (above bit 40) and the pipe's
    /// inode (below).
    Leak,
    /// The PID-reuse experiment's result: a [`crate::node::pid_reuse::Finding`].
    Finding,
}

impl Event {
    fn code(self) -> u8 {
        match self {
            Event::Created => 1,
            Event::Armed => 2,
            Event::Ready => 3,
            Event::Exiting => 4,
            Event::ParentGone => 5,
            Event::Failed => 6,
            Event::Leak => 7,
            Event::Finding => 8,
        }
    }

    fn from_code(c: u8) -> Option<Event> {
        Some(match c {
            1 => Event::Created,
            2 => Event::Armed,
            3 => Event::Ready,
            4 => Event::Exiting,
            5 => Event::ParentGone,
            6 => Event::Failed,
            7 => Event::Leak,
            8 => Event::Finding,
            _ => return None,
        })
    }
}

/// One phase record: node index, pid, event, `CLOCK_MONOTONIC` time (ns) and
/// a value (an exit code or an errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Index of the node in the plan.
    pub node: u32,
    /// Its PID, as it sees itself.
    pub pid: i32,
    /// What happened.
    pub event: Event,
    /// When (CLOCK_MONOTONIC, ns).
    pub time_ns: u64,
    /// Exit code or errno, by event.
    pub value: i64,
}

impl Record {
    fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        b[0..4].copy_from_slice(&self.node.to_le_bytes());
        b[4..8].copy_from_slice(&self.pid.to_le_bytes());
        b[8] = self.event.code();
        b[16..24].copy_from_slice(&self.time_ns.to_le_bytes());
        b[24..32].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    fn decode(b: &[u8; RECORD_SIZE]) -> Option<Record> {
        Some(Record {
            node: u32::from_le_bytes(b[0..4].try_into().ok()?),
            pid: i32::from_le_bytes(b[4..8].try_into().ok()?),
            event: Event::from_code(b[8])?,
            time_ns: u64::from_le_bytes(b[16..24].try_into().ok()?),
            value: i64::from_le_bytes(b[24..32].try_into().ok()?),
        })
    }
}

/// The report channel of one trial: `(supervisor end, node end)`, both
/// close-on-exec. Every node of the trial shares the node end.
///
/// # Errors
/// `EMFILE`/`ENFILE`.
///
/// # References
/// - [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html), [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)
pub fn channel() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Send one record from node `node`; with `pidfd`, attach it (SCM_RIGHTS).
///
/// # Errors
/// `EPIPE` once the supervisor end is closed.
pub fn send(
    fd: BorrowedFd<'_>,
    node: u32,
    event: Event,
    value: i64,
    pidfd: Option<&Pidfd>,
) -> io::Result<()> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    send_as(fd, node, pid, event, value, pidfd)
}

/// Send one record about node `node`, whose PID is `pid`, on its behalf (a
/// parent reports for a command node, which cannot).
///
/// # Errors
/// `EPIPE` once the supervisor end is closed.
pub fn send_as(
    fd: BorrowedFd<'_>,
    node: u32,
    pid: i32,
    event: Event,
    value: i64,
    pidfd: Option<&Pidfd>,
) -> io::Result<()> {
    let rec = Record {
        node,
        pid,
        event,
        time_ns: monotonic_ns(),
        value,
    };
    let bytes = rec.encode();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(p) = pidfd {
        fds = [p.as_fd()];
        anc.push(SendAncillaryMessage::ScmRights(&fds));
    }
    loop {
        match sendmsg(
            fd,
            &[io::IoSlice::new(&bytes)],
            &mut anc,
            SendFlags::NOSIGNAL,
        ) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receive one record without blocking, with the pidfd it carries, if any.
/// `Ok(None)` when no record is waiting.
///
/// # Errors
/// `UnexpectedEof` once every node end is closed (no record can come any
/// more); socket errors; `InvalidData` for a malformed record.
pub fn try_recv(fd: BorrowedFd<'_>) -> io::Result<Option<(Record, Option<Pidfd>)>> {
    let mut bytes = [0u8; RECORD_SIZE];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let got = match recvmsg(
        fd,
        &mut [io::IoSliceMut::new(&mut bytes)],
        &mut anc,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    ) {
        Ok(r) => r.bytes,
        Err(rustix::io::Errno::AGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut passed: Option<OwnedFd> = None;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            passed = fds.into_iter().next();
        }
    }
    if got == 0 && passed.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "every node end is closed",
        ));
    }
    if got != RECORD_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short phase record",
        ));
    }
    let rec = Record::decode(&bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed phase record"))?;
    Ok(Some((
        rec,
        passed.map(|fd| Pidfd::from_kernel(fd, rec.pid)),
    )))
}
