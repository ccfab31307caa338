//! `lab janitor`: list, and with `--remove` remove, the cgroups of labs
//! that are no longer running.

use std::path::PathBuf;

use super::{print_report, Format};
use crate::error::{Exit, LabError};
use crate::janitor::{self, Examined, State};

/// `lab janitor`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct JanitorCmd {
    /// Lab cgroups to look at (default: every lab.* cgroup under this process's own cgroup)
    cgroups: Vec<PathBuf>,
    /// Remove the stale ones (cgroup.kill, wait for populated 0, rmdir) and the unknown ones
    /// that are empty (rmdir alone); a live lab's are never touched
    #[arg(long)]
    remove: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// What `lab janitor` found, as JSON.
#[derive(serde::Serialize)]
struct Report {
    cgroups: Vec<Examined>,
}

impl JanitorCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let named = !self.cgroups.is_empty();
        let paths = if named {
            self.cgroups.clone()
        } else {
            let Some(parent) = janitor::default_parent() else {
                return Err(LabError::Input(
                    "no cgroup v2 hierarchy is mounted here: there is nothing to clean".into(),
                ));
            };
            janitor::scan(&parent)
                .map_err(|e| LabError::io(format!("cannot read {}", parent.display()), e))?
                .into_iter()
                .map(|f| f.path)
                .collect()
        };
        let mut found = Vec::new();
        let mut failed = None;
        for path in &paths {
            let f = if self.remove {
                janitor::remove(path)
            } else {
                janitor::inspect(path)
            };
            match f {
                Ok(f) => found.push(f),
                Err(e) if named && e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(LabError::Input(format!(
                        "{}: no such cgroup",
                        path.display()
                    )))
                }
                Err(e)
                    if named
                        && (e.raw_os_error() == Some(libc::ENOTDIR)
                            || e.kind() == std::io::ErrorKind::InvalidInput) =>
                {
                    return Err(LabError::Input(format!(
                        "{}: not a cgroup directory",
                        path.display()
                    )))
                }
                // Removed by its lab (or another janitor) meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed.get_or_insert(LabError::io(format!("{}", path.display()), e));
                }
            }
        }
        let report = Report { cgroups: found };
        print_report(self.format, &report, || {
            if report.cgroups.is_empty() {
                "no lab cgroups\n".to_string()
            } else {
                report.cgroups.iter().map(Examined::render).collect()
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        // A cgroup named explicitly for removal and left is refused: a live
        // lab's, or an unknown one that is not empty.
        if named && self.remove {
            if let Some(live) = report.cgroups.iter().find(|f| !f.removed) {
                return Err(LabError::Input(format!(
                    "{} is {}{}: left alone",
                    live.path.display(),
                    if live.state == State::Live {
                        "the cgroup of a running lab"
                    } else {
                        "not empty and has no owner recorded (its lab died before it recorded \
                         itself, or cgroupfs takes no xattrs here); what is in it is not killed"
                    },
                    live.owner
                        .as_ref()
                        .map_or(String::new(), |o| format!(" (pid {})", o.pid))
                )));
            }
        }
        Ok(Exit::Clean)
    }
}
