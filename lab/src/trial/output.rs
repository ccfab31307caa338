//! The stdout and stderr of a program run as the trial's root (what `lab
//! exec` runs): two pipes whose read ends the supervisor drains as the
//! course goes, keeping the last [`OUTPUT_BOUND`] bytes of each, so the
//! program never blocks on a full pipe. With the root's `capture`, the
//! supervisor reads them to EOF as a test runner does, and a process still
//! holding a write end once the trial is quiescent is a `leak`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use crate::verdict::ProgramOutput;

/// The most bytes of each stream kept (the last ones): 1 MiB.
pub const OUTPUT_BOUND: usize = 1 << 20;

/// One stream of the program, as the supervisor reads it.
#[derive(Debug)]
pub(super) struct Stream {
    /// The read end, non-blocking.
    read: OwnedFd,
    /// The last bytes read, at most [`OUTPUT_BOUND`] once trimmed.
    tail: Vec<u8>,
    /// Every byte read (bytes).
    bytes: u64,
    /// Every write end is closed: a read returned 0.
    pub eof: bool,
}

impl Stream {
    /// A pipe for one stream: the stream, and the write end for the
    /// program (blocking, close-on-exec; the spawn moves it to fd 1 or 2).
    ///
    /// # Errors
    /// Errors of `pipe2` and `fcntl`.
    pub fn pipe() -> io::Result<(Stream, OwnedFd)> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        let flags = fcntl_getfl(&read)?;
        fcntl_setfl(&read, flags | OFlags::NONBLOCK)?;
        let read = lifeline::move_high(read)?;
        let stream = Stream {
            read,
            tail: Vec::new(),
            bytes: 0,
            eof: false,
        };
        Ok((stream, write))
    }

    /// The read end, for the course's poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Read everything queued without blocking, keeping the tail.
    pub fn drain(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        while !self.eof {
            match rustix::io::read(&self.read, &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.bytes += n as u64;
                    self.tail.extend_from_slice(&buf[..n]);
                    if self.tail.len() > 2 * OUTPUT_BOUND {
                        let cut = self.tail.len() - OUTPUT_BOUND;
                        self.tail.drain(..cut);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                // EAGAIN: a writer holds it open and has nothing more yet.
                Err(_) => break,
            }
        }
    }

    /// The pipe's inode, which names it in `/proc/PID/fd` (`pipe:[N]`).
    pub fn inode(&self) -> u64 {
        rustix::fs::fstat(&self.read).map_or(0, |st| st.st_ino)
    }

    /// The last [`OUTPUT_BOUND`] bytes read, as text (invalid UTF-8
    /// replaced), and the count of every byte read.
    fn kept(&self) -> (String, u64) {
        let from = self.tail.len().saturating_sub(OUTPUT_BOUND);
        (
            String::from_utf8_lossy(&self.tail[from..]).into_owned(),
            self.bytes,
        )
    }
}

/// The program's stdout and stderr.
#[derive(Debug)]
pub(super) struct Streams {
    /// Its stdout.
    pub stdout: Stream,
    /// Its stderr.
    pub stderr: Stream,
}

impl Streams {
    /// Read both without blocking.
    pub fn drain(&mut self) {
        self.stdout.drain();
        self.stderr.drain();
    }

    /// What the outcome carries: both tails and their byte counts.
    pub fn output(&self) -> ProgramOutput {
        let (stdout, stdout_bytes) = self.stdout.kept();
        let (stderr, stderr_bytes) = self.stderr.kept();
        ProgramOutput {
            stdout,
            stderr,
            stdout_bytes,
            stderr_bytes,
        }
    }

    /// The streams still held open by some writer: `(name, stream)`.
    pub fn held(&self) -> Vec<(&'static str, &Stream)> {
        [("stdout", &self.stdout), ("stderr", &self.stderr)]
            .into_iter()
            .filter(|(_, s)| !s.eof)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_keeps_its_tail_and_sees_eof() {
        let (mut s, w) = Stream::pipe().unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        // 3 MiB + "end" through a 64 KiB pipe: written and drained in turn.
        for _ in 0..48 {
            rustix::io::write(&w, &chunk).unwrap();
            s.drain();
        }
        rustix::io::write(&w, b"end").unwrap();
        s.drain();
        assert!(!s.eof, "a writer still holds it");
        drop(w);
        s.drain();
        assert!(s.eof);
        let (text, bytes) = s.kept();
        assert_eq!(bytes, 48 * 64 * 1024 + 3);
        assert_eq!(text.len(), OUTPUT_BOUND);
        assert!(text.ends_with("xend"));
    }
}
