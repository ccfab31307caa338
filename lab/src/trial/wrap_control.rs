//! A wrap trial's control pipe (`lab wrap`): the signals the lab received
//! (SIGINT, SIGTERM, SIGHUP, SIGQUIT) come here as one byte each
//! ([`control_byte`](super::protocol::control_byte)) and are sent on to
//! the program through its pidfd, as a runner's Ctrl-C or slow-timeout
//! would reach it without the lab. A SIGTERM that finds the program
//! running is the runner's timeout: the trial is diagnosed first (threads,
//! waits, fds, signatures, as for a hang), before anything can die of it.
//!
//! The forwarded signal is the program's own business, not the lab's: the
//! node is not marked signalled, so a program that dies of it is judged by
//! its exit status like any other end.

use super::protocol::control_signal;
use super::Course;
use crate::signal::Sig;
use crate::verdict::{Outcome, Verdict};

/// The verdict word of a diagnosis taken at a forwarded SIGTERM (its
/// subject's `verdict`): the program was still running.
pub const TERM_SUBJECT: &str = "running at SIGTERM";

impl Course<'_> {
    /// Read what the lab wrote on the control pipe (the poll said it is
    /// readable) and forward each signal. At EOF (the lab closed it) the
    /// pipe leaves the poll.
    pub(super) fn read_control(&mut self) {
        let Some(fd) = self.control else {
            return;
        };
        let mut buf = [0u8; 64];
        let n = loop {
            match rustix::io::read(fd, &mut buf) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(n) => break n,
                Err(_) => break 0,
            }
        };
        if n == 0 {
            self.control = None;
            return;
        }
        for &b in &buf[..n] {
            if let Some(sig) = control_signal(b) {
                self.forward(sig);
            }
        }
    }

    /// Send `sig` to the program while it lives; a first SIGTERM is
    /// preceded by the diagnosis of the whole trial.
    fn forward(&mut self, sig: Sig) {
        let Some(pidfd) = self.procs[0].pidfd.as_ref() else {
            return;
        };
        if self.seen.nodes[0].dead_ns.is_some() || pidfd.has_exited() {
            return;
        }
        if sig == Sig::Term && self.term_diagnosis.is_none() {
            let mut o = Outcome::error(String::new(), 0);
            o.verdict = Verdict::Hang;
            self.diagnose_if(&mut o, Verdict::Hang);
            self.term_diagnosis = o.diagnosis.map(|mut d| {
                d.subject.verdict = TERM_SUBJECT.into();
                d
            });
        }
        if let Some(pidfd) = self.procs[0].pidfd.as_ref() {
            let _ = pidfd.send_signal(sig.signal());
        }
        self.signals_sent.push((lifeline::monotonic_ns(), sig));
    }
}
