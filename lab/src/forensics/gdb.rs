//! All-thread backtraces of a stuck process from `gdb -batch` (`--gdb`).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::pipe::{pipe_with, PipeFlags};

use lifeline::Spawn;

/// How long one gdb may take before it is killed.
const GDB_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of gdb output kept per process.
const MAX_OUTPUT: usize = 256 * 1024;

/// Why there is no backtrace.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// The pipe for gdb's output, or `/dev/null` for its stdin, could not
    /// be made.
    #[error("cannot set up gdb's output: {0}")]
    Setup(#[source] std::io::Error),
    /// gdb could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The gdb program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for or reading gdb's output failed.
    #[error("reading gdb's output: {0}")]
    Read(#[source] std::io::Error),
    /// gdb did not finish within its timeout (30 s) and was killed.
    #[error("gdb did not finish within {} s; its output so far:\n{output}", GDB_TIMEOUT.as_secs())]
    Timeout {
        /// What it printed before it was killed.
        output: String,
    },
}

/// Run `gdb -batch -p PID` with `thread apply all bt` against `pid` and
/// return what it printed (stdout and stderr), at most 256 KiB, within 30 s.
///
/// # Errors
/// [`GdbError`] when gdb cannot be started, its output cannot be read, or
/// it does not finish in time (with what it printed so far).
pub fn backtrace(gdb: &CStr, pid: i32) -> Result<String, GdbError> {
    let pid_s = CString::new(pid.to_string()).expect("digits");
    let args: Vec<CString> = [
        "gdb",
        "-nx",
        "-batch",
        "-p",
        "",
        "-ex",
        "set pagination off",
        "-ex",
        "info threads",
        "-ex",
        "thread apply all bt",
    ]
    .iter()
    .map(|a| {
        if a.is_empty() {
            pid_s.clone()
        } else {
            CString::new(*a).expect("no NUL")
        }
    })
    .collect();
    let argv: Vec<&CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let (out_read, out_write) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| GdbError::Setup(e.into()))?;
    let devnull: OwnedFd = File::open("/dev/null").map_err(GdbError::Setup)?.into();
    let child = Spawn::default()
        .exec(
            gdb,
            &argv,
            &[
                (devnull.as_fd(), 0),
                (out_write.as_fd(), 1),
                (out_write.as_fd(), 2),
            ],
            3,
        )
        .map_err(|source| GdbError::Start {
            program: gdb.to_string_lossy().into_owned(),
            source,
        })?;
    drop(out_write);
    let drained = crate::input::drain_pipe(
        &mut File::from(out_read),
        Instant::now() + GDB_TIMEOUT,
        MAX_OUTPUT,
    );
    if !matches!(drained, Ok(ref d) if d.ended) {
        let _ = child.pidfd().send_signal(rustix::process::Signal::KILL);
    }
    let _ = child.pidfd().wait();
    let drained = drained.map_err(GdbError::Read)?;
    let (text, finished) = (drained.bytes, drained.ended);
    let text = String::from_utf8_lossy(&text).into_owned();
    if finished {
        Ok(text)
    } else {
        Err(GdbError::Timeout { output: text })
    }
}
