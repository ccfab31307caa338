//! `lab wrap`: one program run once, transparently, as the root of one
//! trial ([`crate::wrap`]); its exit status is the program's unless it
//! left something behind.

use std::path::PathBuf;
use std::time::Duration;

use super::lab_exe;
use super::options::parse_deadline;
use crate::error::{Exit, LabError};
use crate::wrap::judge::{Rules, DEFAULT_ORPHAN_EXIT};
use crate::wrap::{forward, lookup, row, WrapArgs};

/// `lab wrap`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct WrapCmd {
    /// The program and its arguments, after `--` (looked up in PATH when it has no `/`)
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]")]
    command: Vec<String>,
    /// Diagnose and end a program still running this long after its start (1ms..=1h;
    /// default: no deadline, the runner has its own); exit status 124
    #[arg(long, value_parser = parse_deadline)]
    deadline: Option<Duration>,
    /// Let a survivor whose command line matches PATTERN go unreported (`*` any
    /// characters, `?` one, matched on the whole line; repeatable); it is still ended
    /// with the trial
    #[arg(long, value_name = "PATTERN")]
    allow: Vec<String>,
    /// Also fail when a survivor (allowed or not) holds the wrap's stdout or stderr open,
    /// as a runner reading them to EOF would wait on it
    #[arg(long)]
    leak: bool,
    /// The exit status when the program succeeded but left processes behind (0..=255)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ORPHAN_EXIT)]
    orphan_exit: u8,
    /// Append one CSV row per wrap to FILE (the results format; name it trials.csv in a
    /// directory of its own, for `lab report DIR`), and the diagnosis beside it
    #[arg(long, value_name = "FILE", env = "LAB_WRAP_REPORT")]
    report: Option<PathBuf>,
    /// Print nothing on stderr when the program left nothing behind (not
    /// even the line that says the wrap runs without a cgroup or a PID
    /// namespace)
    #[arg(short, long)]
    quiet: bool,
    /// Run without a cgroup (subreaper alone), even where one is available
    #[arg(long, env = "LAB_NO_CGROUP", value_parser = clap::builder::FalseyValueParser::new())]
    no_cgroup: bool,
}

impl WrapCmd {
    /// Run the program; `lab wrap` then exits with the status its
    /// judgement gives (the program's own, 124, `--orphan-exit`, 126, 127).
    ///
    /// # Errors
    /// [`LabError::Input`] for a command the scenario format refuses or a
    /// report directory that is not the caller's; [`LabError::Lab`] when
    /// the trial cannot run.
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        // Caught before anything starts: a signal that comes meanwhile
        // reaches the program as it starts.
        let (control_r, control_w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| LabError::io("cannot make the control pipe", e.into()))?;
        let caught = forward::catch(control_w)
            .map_err(|e| LabError::io("cannot catch SIGINT, SIGTERM, SIGHUP and SIGQUIT", e))?;
        let path = std::env::var("PATH").unwrap_or_default();
        if let Err(u) = lookup::find(&self.command[0], &path) {
            errln!("{}", u.message);
            exit_with(u.status);
        }
        let args = WrapArgs {
            command: self.command.clone(),
            deadline: self.deadline,
            rules: Rules {
                allow: self.allow.clone(),
                leak: self.leak,
                orphan_exit: self.orphan_exit,
                stdio: stdio_targets(),
            },
            report: self.report.clone(),
            quiet: self.quiet,
            no_cgroup: self.no_cgroup,
            exe: lab_exe()?,
        };
        let w = crate::wrap::run(&args, rustix::fd::AsFd::as_fd(&control_r), caught)?;
        let mut text = String::new();
        let clean = w.judgement.clean;
        // --quiet: not even the fallback's line when the program was clean
        // (a wrap per test binary would say it once per binary).
        if let Some(note) = w.fallback.as_ref().filter(|_| !(clean && self.quiet)) {
            text.push_str(note);
            text.push('\n');
        }
        if !(clean && self.quiet) {
            text.push_str(&w.judgement.text);
        }
        if let Some(file) = &args.report {
            if let Some(d) = row::append(file, &w)? {
                text.push_str(&format!(
                    "  full diagnosis: {}\n",
                    d.with_extension("txt").display()
                ));
            }
        }
        if !text.is_empty() {
            crate::output::write_err(format_args!("{text}"));
        }
        exit_with(w.judgement.status)
    }
}

/// End `lab wrap` with `status`: the one command whose exit status is not
/// an [`Exit`] but its program's (or a shell's 126 and 127).
fn exit_with(status: i32) -> ! {
    std::process::exit(status)
}

/// The targets of this process's stdout and stderr, as `/proc/PID/fd`
/// shows them (`pipe:[N]`, `/dev/pts/0`, a path), for `--leak`.
fn stdio_targets() -> Vec<(&'static str, String)> {
    [("stdout", 1), ("stderr", 2)]
        .into_iter()
        .filter_map(|(name, fd)| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .ok()
                .map(|t| (name, t.to_string_lossy().into_owned()))
        })
        .filter(|(_, t)| t != "/dev/null")
        .collect()
}
