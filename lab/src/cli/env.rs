//! `lab env`: the kernel features of this machine.

use super::{print_report, Format};
use crate::cgroup::{create_lab_cgroup, remove_lab_cgroup};
use crate::error::{Exit, LabError};

/// `lab env`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct EnvCmd {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

impl EnvCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let cgroup = create_lab_cgroup();
        let features = lifeline::probe::probe_kernel(cgroup.as_deref());
        print_report(
            self.format,
            &crate::env::to_json(&features, cgroup.as_deref()),
            || crate::env::render(&features, cgroup.as_deref()),
        );
        if let Some(dir) = &cgroup {
            remove_lab_cgroup(dir);
        }
        Ok(Exit::Clean)
    }
}
