//! The lab's node program: a node started by exec (`lab __node IDX
//! PARENT_PID [--lifeline] [--notify]`) instead of as a copy of its parent.
//!
//! Its fds: 0-2 stdio (1 the capture pipe when its parent captures it),
//! [`REPORT_FD`] the phase channel, [`BOOT_FD`] a memfd holding the
//! [`Boot`] JSON, [`LIFELINE_FD`] its lifeline (with `--lifeline`),
//! [`NOTIFY_FD`] the armed notification (with `--notify`), and from
//! [`FIRST_GATE_FD`] on, one gate per entry of [`Boot::gates`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

use super::{
    NodeCtx, Start, BOOT_FD, EXIT_FAILED, FIRST_GATE_FD, LIFELINE_FD, NOTIFY_FD, REPORT_FD,
};
use crate::plan::Plan;
use crate::strategy::Strategy;
use lifeline::LifelineReader;

/// The argument that starts the node mode of the `lab` binary.
pub const MODE_ARG: &str = "__node";

/// What every exec'd node of a trial reads at start: the plan, the strategy
/// and which node each gate fd belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Boot {
    /// The plan of the trial.
    pub plan: Plan,
    /// The strategy of the trial.
    pub strategy: Strategy,
    /// The node of gate fd `FIRST_GATE_FD + k`, for each `k`.
    pub gates: Vec<u32>,
    /// The node of log fd `FIRST_GATE_FD + gates.len() + k`, for each `k`.
    #[serde(default)]
    pub logs: Vec<u32>,
}

impl Boot {
    /// A memfd (close-on-exec) holding this boot record as JSON.
    ///
    /// # Errors
    /// Errors of memfd_create or write.
    pub fn to_memfd(&self) -> io::Result<OwnedFd> {
        let fd = rustix::fs::memfd_create("lab-boot", rustix::fs::MemfdFlags::CLOEXEC)?;
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        let file = std::fs::File::from(fd);
        file.write_all_at(&json, 0)?;
        Ok(OwnedFd::from(file))
    }

    fn read(fd: &OwnedFd) -> io::Result<Boot> {
        let file = std::fs::File::from(fd.try_clone()?);
        let len = file.metadata()?.len() as usize;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, 0)?;
        serde_json::from_slice(&buf).map_err(io::Error::other)
    }
}

/// Run node `idx` of the exec'd node program; never returns.
pub fn main(idx: u32, parent_pid: i32, lifeline: bool, notify: bool) -> ! {
    lifeline::exit_now(run(idx, parent_pid, lifeline, notify).unwrap_or_else(|e| {
        // Never a panic over a closed stderr: the node exits all the same.
        let _ = io::Write::write_fmt(&mut io::stderr(), format_args!("lab node {idx}: {e}\n"));
        EXIT_FAILED
    }))
}

fn run(idx: u32, parent_pid: i32, lifeline: bool, notify: bool) -> io::Result<i32> {
    let report = lifeline::claim_inherited(REPORT_FD)?;
    let boot_fd = lifeline::claim_inherited(BOOT_FD)?;
    let lifeline = if lifeline {
        Some(LifelineReader::claim_inherited(LIFELINE_FD)?)
    } else {
        None
    };
    let notify = if notify {
        Some(lifeline::claim_inherited(NOTIFY_FD)?)
    } else {
        None
    };
    let boot = Boot::read(&boot_fd)?;
    let gate_fds = (0..boot.gates.len())
        .map(|k| lifeline::claim_inherited(FIRST_GATE_FD + k as i32))
        .collect::<io::Result<Vec<_>>>()?;
    let log_fds = (0..boot.logs.len())
        .map(|k| lifeline::claim_inherited(FIRST_GATE_FD + (boot.gates.len() + k) as i32))
        .collect::<io::Result<Vec<_>>>()?;
    if idx as usize >= boot.plan.nodes.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no such node"));
    }
    let ctx = NodeCtx {
        plan: &boot.plan,
        strategy: &boot.strategy,
        report: report.as_fd(),
        gates: boot
            .gates
            .iter()
            .zip(&gate_fds)
            .map(|(n, fd)| (*n, fd.as_fd()))
            .collect(),
        boot: Some(boot_fd.as_fd()),
        logs: boot
            .logs
            .iter()
            .zip(&log_fds)
            .map(|(n, fd)| (*n, fd.as_fd()))
            .collect(),
    };
    Ok(ctx.run(
        idx,
        Start {
            lifeline,
            parent_pid,
            notify: notify.as_ref().map(|n| n.as_fd()),
        },
    ))
}
