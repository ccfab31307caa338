//! [`ProcEvents`]: the kernel's process events connector (`cn_proc`), which
//! reports every fork, exec, setsid, comm change and exit of the machine as
//! it happens, with the kernel's own timestamps.
//!
//! The datagrams are parsed by [`proc_event`](super::proc_event), at the
//! offsets of the UAPI headers.
//!
//! No `unsafe` is needed: the socket calls are rustix's safe wrappers.
//!
//! # References
//! - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)
//! - Linux `drivers/connector/cn_proc.c` (the events, `ktime_get_ns()`
//!   timestamps, `cn_proc_mcast_ctl`), `drivers/connector/connector.c`,
//!   `Documentation/driver-api/connector.rst`

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{
    bind, getsockname, recvfrom, send, socket_with, sockopt, AddressFamily, RecvFlags, SendFlags,
    SocketFlags, SocketType,
};

use super::proc_event::{
    parse_datagram, Message, ProcEvent, CN_IDX_PROC, CN_MSG_LEN, CN_VAL_PROC, NLMSG_DONE,
    NLMSG_HDRLEN,
};

/// `enum proc_cn_mcast_op`.
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
/// The receive queue asked for (bytes): a burst of forks fills the default
/// one (`net.core.rmem_default`) in a few hundred events.
const RECV_QUEUE: usize = 4 << 20;
/// The read buffer (bytes); one event datagram is 76 bytes.
const READ_BUFFER: usize = 8192;
/// How long [`ProcEvents::open`] waits for the kernel's acknowledgement
/// (it comes at once; the bound is for a request the kernel ignores).
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// A listening socket on the process events connector: a netlink socket
/// (`NETLINK_CONNECTOR`, non-blocking, close-on-exec) bound to the
/// `CN_IDX_PROC` group, registered with `PROC_CN_MCAST_LISTEN`. Dropping it
/// sends `PROC_CN_MCAST_IGNORE` and closes it.
///
/// It sees every process of the machine, so a caller filters (by lineage
/// from its own PIDs). Poll it through [`AsFd`] or
/// [`wait_readable`](ProcEvents::wait_readable); drain it with
/// [`read`](ProcEvents::read).
///
/// # Privileges and namespaces
/// The caller must live in the initial user, PID and network namespaces:
/// the kernel ignores a listen request from other user or PID namespaces,
/// and its connector socket exists in the initial network namespace only.
/// So a lab opens it in its own process, not in a supervisor (which runs in
/// a PID namespace of its own), and translates the PIDs. Linux 6.6 and
/// later let any user listen (the connector's group became
/// `NL_CFG_F_NONROOT_RECV`; seen on 6.18 as uid 65534 without
/// capabilities); earlier kernels need `CAP_NET_ADMIN` there. Where it
/// cannot be opened, [`open`](ProcEvents::open) fails and the caller falls
/// back to another source.
///
/// # References
/// - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)
/// - Linux `include/uapi/linux/cn_proc.h`, `include/uapi/linux/connector.h`,
///   `drivers/connector/cn_proc.c`
pub struct ProcEvents {
    fd: OwnedFd,
    /// Our netlink port id: the `ack` of our requests, so that the kernel's
    /// acknowledgement (`ack + 1`) is told from other listeners'.
    port: u32,
    /// Events read while waiting for the acknowledgement.
    pending: Vec<ProcEvent>,
    overruns: u64,
    malformed: u64,
    buf: Vec<u8>,
    /// It sent `PROC_CN_MCAST_LISTEN` ([`ProcEvents::open`]), so its drop
    /// sends `PROC_CN_MCAST_IGNORE` (the kernel counts listeners
    /// machine-wide: a socket that never listened must not uncount one).
    listening: bool,
}

impl fmt::Debug for ProcEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcEvents")
            .field("fd", &self.fd)
            .field("port", &self.port)
            .field("overruns", &self.overruns)
            .field("malformed", &self.malformed)
            .finish_non_exhaustive()
    }
}

impl ProcEvents {
    /// Open the connector and start listening:
    /// `socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
    /// NETLINK_CONNECTOR)`, a 4 MiB receive queue (`SO_RCVBUFFORCE`, else
    /// `SO_RCVBUF` up to `net.core.rmem_max`), `bind` to the group
    /// `CN_IDX_PROC`, then `PROC_CN_MCAST_LISTEN`, and wait (at most 1 s)
    /// for the kernel's acknowledgement. Events that arrive meanwhile are
    /// kept for the first [`read`](ProcEvents::read).
    ///
    /// # Errors
    /// - `EPERM` from `bind` without `CAP_NET_ADMIN` in the initial user
    ///   namespace (before Linux 6.6), or in the acknowledgement on kernels
    ///   that check it there;
    /// - `ECONNREFUSED` from `send` in a network namespace other than the
    ///   initial one (no connector there);
    /// - `EPROTONOSUPPORT` on a kernel without `CONFIG_CONNECTOR`;
    /// - `ErrorKind::TimedOut` when no acknowledgement came: the kernel
    ///   silently ignores a listen request from outside the initial user
    ///   and PID namespaces (and has no `cn_proc` without
    ///   `CONFIG_PROC_EVENTS`);
    /// - the errors of `socket`, `bind`, `send` and `recvfrom`.
    ///
    /// # References
    /// - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)
    /// - [socket(7)](https://man7.org/linux/man-pages/man7/socket.7.html) (`SO_RCVBUFFORCE`)
    /// - Linux `drivers/connector/cn_proc.c` (`cn_proc_mcast_ctl`, `cn_proc_ack`)
    pub fn open() -> io::Result<ProcEvents> {
        let mut events = ProcEvents::bound()?;
        events.control(PROC_CN_MCAST_LISTEN)?;
        // Sent: from here on the drop uncounts it (the kernel ignores
        // both outside the initial namespaces).
        events.listening = true;
        events.await_ack()?;
        Ok(events)
    }

    /// Receive the events without asking for them: the socket of
    /// [`open`](ProcEvents::open), bound to the group `CN_IDX_PROC`, without
    /// `PROC_CN_MCAST_LISTEN`. The kernel sends process events only while
    /// some socket has listened from the initial user and PID namespaces,
    /// and then multicasts each to every socket bound to the group in the
    /// initial network namespace: a process in a PID namespace of its own
    /// (whose listen request the kernel ignores) receives them while
    /// another, in the initial namespaces, holds an [`open`](ProcEvents::open)
    /// one. PIDs are those of the initial PID namespace. Nothing says
    /// whether events flow: the caller knows who listens.
    ///
    /// # Errors
    /// The errors of `socket` and `bind` (`EPROTONOSUPPORT` on a kernel
    /// without `CONFIG_CONNECTOR`).
    ///
    /// # References
    /// - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)
    /// - Linux `drivers/connector/cn_proc.c` (`proc_event_num_listeners`,
    ///   `cn_proc_mcast_ctl`, `send_msg`) and `drivers/connector/connector.c`
    ///   (`cn_netlink_send_mult`: a multicast in `init_net`)
    pub fn subscribe() -> io::Result<ProcEvents> {
        ProcEvents::bound()
    }

    /// The socket both use: `NETLINK_CONNECTOR`, its queue grown, bound to
    /// the group `CN_IDX_PROC`; not listening.
    fn bound() -> io::Result<ProcEvents> {
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(netlink::CONNECTOR),
        )?;
        grow_queue(&fd);
        bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC))?;
        let port = SocketAddrNetlink::try_from(getsockname(&fd)?)?.pid();
        Ok(ProcEvents {
            fd,
            port,
            pending: Vec::new(),
            overruns: 0,
            malformed: 0,
            buf: vec![0; READ_BUFFER],
            listening: false,
        })
    }

    /// Move every event queued on the socket into `out`, without blocking
    /// (it stops at `EAGAIN`), and return how many were appended. An
    /// overflow of the receive queue (`ENOBUFS`) is appended as
    /// [`ProcEvent::Overrun`] and counted in
    /// [`overruns`](ProcEvents::overruns); datagrams that are not the
    /// kernel's, or do not parse, are skipped and counted in
    /// [`malformed`](ProcEvents::malformed). Acknowledgements and event
    /// kinds other than those of [`ProcEvent`] are skipped.
    ///
    /// # Errors
    /// The errors of `recvfrom` other than `EAGAIN`, `EINTR` (retried) and
    /// `ENOBUFS`; events read before the error stay in `out`.
    ///
    /// # References
    /// - [recvfrom(2)](https://man7.org/linux/man-pages/man2/recvfrom.2.html)
    /// - [netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html) (`ENOBUFS`)
    pub fn read(&mut self, out: &mut Vec<ProcEvent>) -> io::Result<usize> {
        let before = out.len();
        out.append(&mut self.pending);
        self.receive(out)?;
        Ok(out.len() - before)
    }

    /// Wait until an event can be read or `timeout` passes: `poll` for
    /// `POLLIN`. `Ok(true)` when one can be read (or one is already kept
    /// from [`open`](ProcEvents::open)). `EINTR` is retried for the time
    /// left; a `timeout` too large for the clock waits without bound.
    ///
    /// # Errors
    /// The errors of `poll`.
    ///
    /// # References
    /// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        if !self.pending.is_empty() {
            return Ok(true);
        }
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let ts = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, ts.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// How many times the receive queue overflowed (`ENOBUFS`) since
    /// [`open`](ProcEvents::open): each time, an unknown number of events
    /// was lost.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// How many datagrams were skipped because they were not sent by the
    /// kernel, were truncated or did not parse.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Send a `PROC_CN_MCAST_*` request to the kernel: one `nlmsghdr`, one
    /// `cn_msg` with `ack` = our port id, and the 4-byte operation.
    fn control(&self, op: u32) -> io::Result<()> {
        let mut msg = [0u8; NLMSG_HDRLEN + CN_MSG_LEN + 4];
        let len = msg.len() as u32;
        put(&mut msg, 0, &len.to_ne_bytes());
        put(&mut msg, 4, &NLMSG_DONE.to_ne_bytes());
        put(&mut msg, 12, &self.port.to_ne_bytes());
        let cn = NLMSG_HDRLEN;
        put(&mut msg, cn, &CN_IDX_PROC.to_ne_bytes());
        put(&mut msg, cn + 4, &CN_VAL_PROC.to_ne_bytes());
        put(&mut msg, cn + 12, &self.port.to_ne_bytes());
        put(&mut msg, cn + 16, &4u16.to_ne_bytes());
        put(&mut msg, cn + CN_MSG_LEN, &op.to_ne_bytes());
        loop {
            match send(&self.fd, &msg, SendFlags::empty()) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "short send to the proc connector: {n} of {} bytes",
                        msg.len()
                    )))
                }
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Read until the kernel acknowledges our listen request, keeping the
    /// events read meanwhile.
    fn await_ack(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let mut got = Vec::new();
            let ack = self.receive(&mut got);
            self.pending.append(&mut got);
            match ack? {
                Some(0) => return Ok(()),
                Some(err) => return Err(io::Error::from_raw_os_error(err as i32)),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() && self.overruns > 0 {
                // The acknowledgement was lost with other events in an
                // overflow of our queue: events do reach us. The overrun
                // is kept for the first read.
                return Ok(());
            }
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel did not acknowledge PROC_CN_MCAST_LISTEN within 1 s \
                     (outside the initial user and PID namespaces, or no CONFIG_PROC_EVENTS)",
                ));
            }
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            match poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Drain the socket into `out`; returns the error of our
    /// acknowledgement when one was read (0 = success).
    fn receive(&mut self, out: &mut Vec<ProcEvent>) -> io::Result<Option<u32>> {
        let mut ack = None;
        loop {
            match recvfrom(&self.fd, &mut self.buf[..], RecvFlags::TRUNC) {
                Ok((n, full, from)) => {
                    let kernel = from
                        .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                        .is_some_and(|a| a.pid() == 0);
                    if !kernel || full > n {
                        self.malformed += 1;
                        continue;
                    }
                    for m in parse_datagram(&self.buf[..n]) {
                        match m {
                            Message::Event(e) => out.push(e),
                            Message::Ack { ack: a, err } if a == self.port.wrapping_add(1) => {
                                ack = Some(err);
                            }
                            Message::Ack { .. } | Message::Other => {}
                            Message::Malformed => self.malformed += 1,
                        }
                    }
                }
                Err(Errno::AGAIN) => return Ok(ack),
                Err(Errno::INTR) => continue,
                Err(Errno::NOBUFS) => {
                    self.overruns += 1;
                    out.push(ProcEvent::Overrun);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for ProcEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ProcEvents {
    fn drop(&mut self) {
        // Best effort, and only for a socket that listened: the kernel
        // counts listeners machine-wide.
        if self.listening {
            let _ = self.control(PROC_CN_MCAST_IGNORE);
        }
    }
}

/// Ask for a [`RECV_QUEUE`] receive queue: `SO_RCVBUFFORCE` (with
/// `CAP_NET_ADMIN`), else `SO_RCVBUF` (capped at `net.core.rmem_max`). Best
/// effort: a smaller queue only makes overruns likelier, and those are
/// reported.
fn grow_queue(fd: &OwnedFd) {
    if sockopt::set_socket_recv_buffer_size_force(fd, RECV_QUEUE).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(fd, RECV_QUEUE);
    }
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(off..off + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}
