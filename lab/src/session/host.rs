//! What the lab's own process and machine must offer before trials run, and
//! the last sweep after them: the lab a subreaper with no stray inherited
//! fds, the privileges a scenario needs, and the orphans of dead
//! supervisors ended.

use crate::error::LabError;
use crate::plan::Plan;
use crate::scenario::Scenario;

/// Prepare the lab process itself: stray inherited fds close-on-exec, and the
/// lab a subreaper, so that orphans of a supervisor that died come to it.
///
/// # Errors
/// [`LabError::Io`] with the kernel's error when it refuses either.
pub fn prepare_lab_process() -> Result<(), LabError> {
    lifeline::mark_inherited_cloexec()
        .map_err(|e| LabError::io("close_range(CLOSE_RANGE_CLOEXEC)", e))?;
    lifeline::become_subreaper().map_err(|e| LabError::io("PR_SET_CHILD_SUBREAPER", e))
}

/// Refuse a scenario this machine cannot run: one that needs a private PID
/// namespace (PID reuse) where this process can make none.
///
/// # Errors
/// [`LabError::Input`] saying what is missing and how to get it, and that
/// nothing was run.
pub fn check_privileges(scenario: &Scenario) -> Result<(), LabError> {
    let plan = Plan::new(scenario, 0);
    if plan.nodes.iter().any(|n| n.pid_reuse) && !lifeline::probe::probe_kernel(None).pid_reuse() {
        return Err(LabError::Input(format!(
            "{} needs a private PID namespace, and this process can make none: run it as root, \
             or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or \
             user.max_user_namespaces > 0); nothing was run",
            scenario.name
        )));
    }
    Ok(())
}

/// End and reap every child of the lab that is not a supervisor it still
/// runs: orphans that reparented to the lab (a subreaper) because their
/// supervisor died. Returns how many were ended. Call from the only thread
/// left, after the workers.
pub fn sweep_orphans() -> usize {
    let mut n = 0;
    loop {
        let kids = lifeline::adopt_children().unwrap_or_default();
        for k in &kids {
            let _ = k.send_signal(rustix::process::Signal::KILL);
            n += 1;
        }
        match lifeline::reap_any(!kids.is_empty()) {
            Ok(lifeline::Reaped::One(_)) => continue,
            _ if kids.is_empty() => return n,
            _ => continue,
        }
    }
}
