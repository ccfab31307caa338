//! Phase reports: records that nodes send their supervisor over a
//! `SOCK_SEQPACKET` socket, one datagram each, so each one is atomic. Every
//! record is a fixed 32-byte header ([`RECORD_SIZE`]); a [`Event::Panic`]
//! record is followed, in the same datagram, by at most [`PANIC_TEXT_MAX`]
//! bytes of UTF-8 text (the [`GuardPanic`]). The `created` record carries the
//! node's own pidfd (SCM_RIGHTS), so the supervisor watches every node through
//! a pidfd and never through a PID.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType,
};

use crate::verdict::GuardPanic;
use lifeline::{monotonic_ns, Pidfd};

/// Size of one record's header in bytes (well under PIPE_BUF); every record
/// but [`Event::Panic`] is this header alone.
pub const RECORD_SIZE: usize = 32;

/// The most bytes of text a [`Event::Panic`] record carries after its header
/// (site, signature and message together); longer messages are cut at a
/// character boundary.
pub const PANIC_TEXT_MAX: usize = 2048;

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
    /// A guard (or any code) panicked in the node, which exits at once with
    /// [`crate::node::EXIT_PANIC`]; the record carries a [`GuardPanic`], and
    /// its value packs the lengths of the report's three texts.
    Panic,
    /// A command node ended and its parent reaped it; the parent reports it
    /// on its behalf: the value is [`exit_value`] of its status.
    Exited,
}

/// A reaped status as a record's value: the exit code (0..=255), or 256 plus
/// the number of the signal that ended it.
pub fn exit_value(status: lifeline::ExitStatus) -> i64 {
    match status {
        lifeline::ExitStatus::Exited(code) => code as i64,
        lifeline::ExitStatus::Signaled(sig) => 256 + sig as i64,
    }
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
            Event::Panic => 9,
            Event::Exited => 10,
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
            9 => Event::Panic,
            10 => Event::Exited,
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

/// A [`GuardPanic`] as the text of a [`Event::Panic`] record.
mod panic_text {
    use super::{cut, GuardPanic, PANIC_TEXT_MAX};

    /// The text after the header, and the header's value: the lengths of the
    /// site (bits 0..16), the signature (16..32) and the reason (32..48).
    /// The site and the signature get at most 256 bytes each, the message
    /// the rest of [`PANIC_TEXT_MAX`]; each is cut at a character boundary.
    pub(super) fn encode(p: &GuardPanic) -> (Vec<u8>, i64) {
        let site = cut(&p.site, 256);
        let sig = cut(p.signature.map_or("", |s| s.name()), 256);
        let msg = cut(&p.reason, PANIC_TEXT_MAX - site.len() - sig.len());
        let mut text = Vec::with_capacity(site.len() + sig.len() + msg.len());
        text.extend_from_slice(site.as_bytes());
        text.extend_from_slice(sig.as_bytes());
        text.extend_from_slice(msg.as_bytes());
        let value = site.len() as i64 | (sig.len() as i64) << 16 | (msg.len() as i64) << 32;
        (text, value)
    }

    /// The report from the text after a header whose value is `value`;
    /// `None` when the lengths do not add up or a text is not UTF-8.
    pub(super) fn decode(text: &[u8], value: i64) -> Option<GuardPanic> {
        let len = |shift: u32| ((value >> shift) & 0xffff) as usize;
        let (site, sig, msg) = (len(0), len(16), len(32));
        if site + sig + msg != text.len() || text.len() > PANIC_TEXT_MAX {
            return None;
        }
        let part = |from: usize, n: usize| std::str::from_utf8(&text[from..from + n]).ok();
        let signature = part(site, sig)?;
        Some(GuardPanic {
            site: part(0, site)?.to_string(),
            signature: match signature {
                "" => None,
                name => Some(name.parse().ok()?),
            },
            reason: part(site + sig, msg)?.to_string(),
        })
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a character
/// boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One record as received: the header, the pidfd it carried (SCM_RIGHTS),
/// and the [`GuardPanic`] of a [`Event::Panic`] record.
#[derive(Debug)]
pub struct Received {
    /// The header.
    pub record: Record,
    /// The pidfd attached to it (`created` records).
    pub pidfd: Option<Pidfd>,
    /// The panic report (`panic` records).
    pub panic: Option<GuardPanic>,
}

/// The phase channel of one trial: `(supervisor end, node end)`, both
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
    send_datagram(fd, &rec, &[], pidfd)
}

/// Send a [`Event::Panic`] record from node `node`: the header and the
/// report's text in one datagram (atomic: the supervisor gets all of it or
/// nothing). Called from the node's panic hook, just before it exits.
///
/// # Errors
/// `EPIPE` once the supervisor end is closed.
pub fn send_panic(fd: BorrowedFd<'_>, node: u32, report: &GuardPanic) -> io::Result<()> {
    let (text, value) = panic_text::encode(report);
    let rec = Record {
        node,
        pid: rustix::process::getpid().as_raw_nonzero().get(),
        event: Event::Panic,
        time_ns: monotonic_ns(),
        value,
    };
    send_datagram(fd, &rec, &text, None)
}

/// One datagram: the header of `rec`, then `text`, with `pidfd` attached.
fn send_datagram(
    fd: BorrowedFd<'_>,
    rec: &Record,
    text: &[u8],
    pidfd: Option<&Pidfd>,
) -> io::Result<()> {
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
            &[io::IoSlice::new(&bytes), io::IoSlice::new(text)],
            &mut anc,
            SendFlags::NOSIGNAL,
        ) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether a record is waiting at the supervisor end `fd`, without reading
/// it ([`lifeline::poll_now`] for `POLLIN`). The end of the channel (every
/// node end closed) is waiting too: [`try_recv`] then says so.
///
/// # Errors
/// Errors of poll.
pub fn pending(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(
        lifeline::poll_now(fd, rustix::event::PollFlags::IN)?
            .contains(rustix::event::PollFlags::IN),
    )
}

/// Receive one record without blocking, with the pidfd or the panic report
/// it carries, if any. `Ok(None)` when no record is waiting.
///
/// A receive that gives 0 bytes is the end of the channel only when the
/// receive right after it gives 0 bytes too ([`next_datagram`]): a
/// non-blocking `SOCK_SEQPACKET` receive that finds the queue empty, and
/// then the peer shut down, returns 0 even when the peer's last datagram
/// was queued between those two looks.
///
/// # Errors
/// `UnexpectedEof` once every node end is closed (no record can come any
/// more); socket errors; `InvalidData` for a malformed record (a short or
/// truncated datagram, an unknown event, text after a header that takes
/// none, a panic report whose lengths do not add up).
///
/// # References
/// - `unix_dgram_recvmsg` (net/unix/af_unix.c, which
///   `unix_seqpacket_recvmsg` calls): with the queue found empty it takes
///   the state lock, and returns 0 ("EOF on disconnected non-blocking
///   SEQPACKET socket") when `RCV_SHUTDOWN` is set by then.
pub fn try_recv(fd: BorrowedFd<'_>) -> io::Result<Option<Received>> {
    next_datagram(|| recv_datagram(fd))
}

/// What one non-blocking receive of the phase channel gave.
#[derive(Debug)]
enum Got<T> {
    /// Nothing is queued (`EAGAIN`).
    Nothing,
    /// 0 bytes: the end of the channel, or a datagram queued just too late
    /// for this receive to see it.
    Zero,
    /// One datagram.
    Datagram(T),
}

/// The next datagram of a channel read by `recv`, one non-blocking receive
/// per call: `Ok(None)` when nothing is queued. A [`Got::Zero`] is the end
/// only when the receive right after it is a [`Got::Zero`] too: once a
/// receive has seen the peer shut down, every datagram the peer sent is
/// already queued, so that second receive finds it, or finds nothing left.
///
/// # Errors
/// `UnexpectedEof` at the end; the errors of `recv`.
fn next_datagram<T>(mut recv: impl FnMut() -> io::Result<Got<T>>) -> io::Result<Option<T>> {
    match recv()? {
        Got::Nothing => Ok(None),
        Got::Datagram(d) => Ok(Some(d)),
        Got::Zero => match recv()? {
            // After a shutdown the kernel gives 0, not EAGAIN, on an empty
            // queue; should it say EAGAIN, the next poll asks again.
            Got::Nothing => Ok(None),
            Got::Datagram(d) => Ok(Some(d)),
            Got::Zero => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "every node end is closed",
            )),
        },
    }
}

/// One non-blocking receive at the supervisor end `fd`.
///
/// # Errors
/// Socket errors; `InvalidData` for a malformed record.
fn recv_datagram(fd: BorrowedFd<'_>) -> io::Result<Got<Received>> {
    let mut buf = [0u8; RECORD_SIZE + PANIC_TEXT_MAX];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let got = match recvmsg(
        fd,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    ) {
        Ok(r) if r.flags.contains(ReturnFlags::TRUNC) => {
            return Err(invalid("a report datagram longer than a panic record"))
        }
        Ok(r) => r.bytes,
        Err(rustix::io::Errno::AGAIN) => return Ok(Got::Nothing),
        Err(e) => return Err(e.into()),
    };
    let mut passed: Option<OwnedFd> = None;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            passed = fds.into_iter().next();
        }
    }
    if got == 0 && passed.is_none() {
        return Ok(Got::Zero);
    }
    let (record, panic) = decode_datagram(&buf[..got])?;
    Ok(Got::Datagram(Received {
        record,
        pidfd: passed.and_then(|fd| Pidfd::from_received(fd, record.pid).ok()),
        panic,
    }))
}

/// A received datagram: its header, and the panic report after it.
fn decode_datagram(b: &[u8]) -> io::Result<(Record, Option<GuardPanic>)> {
    let header: &[u8; RECORD_SIZE] = b
        .get(..RECORD_SIZE)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| invalid("short phase record"))?;
    let rec = Record::decode(header).ok_or_else(|| invalid("malformed phase record"))?;
    let text = &b[RECORD_SIZE..];
    match rec.event {
        Event::Panic => {
            let report = panic_text::decode(text, rec.value)
                .ok_or_else(|| invalid("malformed panic record"))?;
            Ok((rec, Some(report)))
        }
        _ if text.is_empty() => Ok((rec, None)),
        _ => Err(invalid("a phase record with trailing bytes")),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forensics::Signature;

    fn report(message: &str, signature: Option<Signature>) -> GuardPanic {
        GuardPanic {
            reason: message.into(),
            site: "lab/src/node/audit.rs:42".into(),
            signature,
        }
    }

    #[test]
    fn a_panic_record_round_trips_through_its_encoding() {
        for r in [
            report(
                "duplicated stdio: fd 1 and fd 10 -> pipe:[7]",
                Some(Signature::DuplicatedStdio),
            ),
            report("worker thread belongs to pid 3, this is pid 4", None),
            report("", None),
        ] {
            let (text, value) = panic_text::encode(&r);
            let rec = Record {
                node: 3,
                pid: 77,
                event: Event::Panic,
                time_ns: 5,
                value,
            };
            let mut datagram = rec.encode().to_vec();
            datagram.extend_from_slice(&text);
            assert_eq!(decode_datagram(&datagram).unwrap(), (rec, Some(r)));
        }
    }

    #[test]
    fn a_long_panic_message_is_cut_at_a_character_boundary() {
        let long = "é".repeat(PANIC_TEXT_MAX);
        let (text, value) = panic_text::encode(&report(&long, Some(Signature::SelfPipeKeeper)));
        assert!(text.len() <= PANIC_TEXT_MAX);
        let back = panic_text::decode(&text, value).unwrap();
        assert!(long.starts_with(&back.reason) && back.reason.len() > 1000);
        assert_eq!(back.signature, Some(Signature::SelfPipeKeeper));
    }

    /// `next_datagram` over an injected sequence of receive results: each
    /// call takes the next one (a number is a record of that node, `0` a
    /// 0-byte receive, `-1` EAGAIN); a call past the end fails the test.
    fn received(seq: &[i32]) -> Vec<Result<Option<i32>, io::ErrorKind>> {
        let mut seq = seq.iter();
        let mut recv = || -> io::Result<Got<i32>> {
            Ok(match *seq.next().expect("no receive past the sequence") {
                -1 => Got::Nothing,
                0 => Got::Zero,
                n => Got::Datagram(n),
            })
        };
        let mut out = Vec::new();
        loop {
            let r = next_datagram(&mut recv).map_err(|e| e.kind());
            out.push(r);
            if !matches!(out.last(), Some(Ok(Some(_)))) {
                return out;
            }
        }
    }

    #[test]
    fn a_zero_byte_receive_is_the_end_only_when_the_next_one_is_too() {
        let eof = Err(io::ErrorKind::UnexpectedEof);
        // The last datagram queued between the two looks of the first receive.
        assert_eq!(received(&[0, 7, 0, 0]), [Ok(Some(7)), eof]);
        assert_eq!(received(&[0, 0]), [eof]);
        assert_eq!(received(&[-1]), [Ok(None)]);
        assert_eq!(received(&[3, 4, -1]), [Ok(Some(3)), Ok(Some(4)), Ok(None)]);
        assert_eq!(received(&[3, 0, 0]), [Ok(Some(3)), eof]);
        assert_eq!(received(&[0, -1]), [Ok(None)]);
        // After a datagram, a lone 0 is again not the end by itself.
        assert_eq!(
            received(&[0, 5, 0, 6, 0, 0]),
            [Ok(Some(5)), Ok(Some(6)), eof]
        );
    }

    #[test]
    fn a_receive_error_ends_the_sequence_with_it() {
        let mut seq = [
            Ok(Got::Zero),
            Err(io::Error::from_raw_os_error(libc::EBADF)),
        ]
        .into_iter();
        let r: io::Result<Option<i32>> = next_datagram(|| seq.next().unwrap());
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn a_waiting_record_is_pending_until_read_and_so_is_the_end() {
        let (sup, node) = channel().unwrap();
        assert!(!pending(sup.as_fd()).unwrap());
        send(node.as_fd(), 2, Event::Created, 0, None).unwrap();
        assert!(pending(sup.as_fd()).unwrap());
        assert!(pending(sup.as_fd()).unwrap(), "pending does not read it");
        let got = try_recv(sup.as_fd()).unwrap().unwrap();
        assert_eq!((got.record.node, got.record.event), (2, Event::Created));
        assert!(!pending(sup.as_fd()).unwrap());
        drop(node);
        assert!(pending(sup.as_fd()).unwrap());
        let end = try_recv(sup.as_fd()).map(|_| ()).unwrap_err();
        assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        let rec = Record {
            node: 0,
            pid: 1,
            event: Event::Ready,
            time_ns: 0,
            value: 0,
        };
        assert!(decode_datagram(&rec.encode()[..20]).is_err());
        let mut trailing = rec.encode().to_vec();
        trailing.push(b'x');
        assert!(decode_datagram(&trailing).is_err());
        let (text, value) = panic_text::encode(&report("boom", None));
        let mut short = Record {
            event: Event::Panic,
            value,
            ..rec
        }
        .encode()
        .to_vec();
        short.extend_from_slice(&text[..text.len() - 1]);
        assert!(decode_datagram(&short).is_err());
    }

    #[test]
    fn phase_and_panic_records_cross_the_channel_whole() {
        let (sup, node) = channel().unwrap();
        send(node.as_fd(), 2, Event::Armed, 9, None).unwrap();
        let r = report(&"x".repeat(3000), Some(Signature::DuplicatedStdio));
        send_panic(node.as_fd(), 2, &r).unwrap();
        let first = try_recv(sup.as_fd()).unwrap().unwrap();
        assert_eq!(
            (first.record.node, first.record.event, first.record.value),
            (2, Event::Armed, 9)
        );
        assert!(first.panic.is_none() && first.pidfd.is_none());
        let second = try_recv(sup.as_fd()).unwrap().unwrap();
        assert_eq!(second.record.event, Event::Panic);
        assert_eq!(second.record.pid, std::process::id() as i32);
        let got = second.panic.unwrap();
        assert_eq!(
            (got.site.as_str(), got.signature),
            (r.site.as_str(), r.signature)
        );
        assert_eq!(
            got.reason.len(),
            PANIC_TEXT_MAX - r.site.len() - "duplicated-stdio".len()
        );
        assert!(try_recv(sup.as_fd()).unwrap().is_none());
        drop(node);
        assert_eq!(
            try_recv(sup.as_fd()).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
