//! Running a test runner's listing (or cargo's build) as a bounded child:
//! its stdout captured, its deadline kept through its pidfd.

use std::fs::File;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::LabError;
use crate::input::drain_pipe;

/// Most bytes of a listing kept: 16 MiB.
const MAX_LISTING: usize = 16 * 1024 * 1024;

/// Run `argv` (no shell) with stdin `/dev/null` and stderr to `/dev/null`
/// and return its exit status (`None`: killed by a signal) and stdout (at
/// most 16 MiB), within `deadline`: past it the child is killed through
/// its pidfd.
///
/// # Errors
/// [`LabError::Input`] naming `what` when it cannot be started, or does not
/// finish within `deadline`.
pub fn capture(
    what: &str,
    argv: &[String],
    deadline: Duration,
) -> Result<(Option<i32>, String), LabError> {
    let (out_read, out_write) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| LabError::io("cannot make a pipe", e.into()))?;
    let Some(program) = argv.first() else {
        return Err(LabError::Input(format!("{what}: the command is empty")));
    };
    let child = lifeline::Command::new(program)
        .args(&argv[1..])
        .stdin(lifeline::Stdio::Null)
        .stdout(lifeline::Stdio::Fd(out_write.as_fd()))
        .stderr(lifeline::Stdio::Null)
        .spawn()
        .map_err(|e| {
            LabError::Input(format!(
                "{what}: cannot start `{program}`: {e}; give the path of an executable"
            ))
        })?;
    drop(out_write);
    let drained = drain_pipe(
        &mut File::from(out_read),
        Instant::now() + deadline,
        MAX_LISTING,
    );
    if !matches!(drained, Ok(ref d) if d.ended) {
        let _ = child.pidfd().send_signal(rustix::process::Signal::KILL);
        let _ = child.pidfd().wait();
    }
    let drained =
        drained.map_err(|e| LabError::io(format!("{what}: cannot read its output"), e))?;
    let (text, finished) = (drained.bytes, drained.ended);
    if !finished {
        return Err(LabError::Input(format!(
            "{what}: `{}` did not finish within {} s (killed); a runner must list its tests \
             and exit",
            argv.join(" "),
            deadline.as_secs_f64()
        )));
    }
    let status = child
        .pidfd()
        .wait()
        .map_err(|e| LabError::io("cannot wait for the listing", e))?;
    let code = match status {
        lifeline::ExitStatus::Exited(c) => Some(c),
        _ => None,
    };
    Ok((code, String::from_utf8_lossy(&text).into_owned()))
}
