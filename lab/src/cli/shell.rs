//! `lab completions SHELL` and `lab man [COMMAND]`: the shell completions
//! (`clap_complete`) and the manual pages (`clap_mangen`) of the command
//! line, generated from its clap definition so that they never drift from
//! it.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

use super::{examples, Cli};
use crate::error::{Exit, LabError};
use crate::record::trust::{Missing, OwnDir};

/// `lab completions`'s arguments.
#[derive(clap::Args)]
pub(super) struct CompletionsCmd {
    /// The shell to complete in
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl CompletionsCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let mut cmd = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "lab", &mut script);
        out!("{}", String::from_utf8_lossy(&script));
        Ok(Exit::Clean)
    }
}

/// `lab man`'s arguments.
#[derive(clap::Args)]
pub(super) struct ManCmd {
    /// The command whose page to print (lab-COMMAND(1)); default the page of lab itself
    command: Option<String>,
    /// Write every page (lab.1 and one lab-COMMAND.1 per command) into DIR instead
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    out: Option<PathBuf>,
}

impl ManCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        // Without clap's `help` command, which has no page; building names
        // the subcommands as their pages do (lab-run).
        let mut lab = Cli::command().disable_help_subcommand(true);
        lab.build();
        if let Some(dir) = &self.out {
            // A directory of the caller's (created if needed; no symlink of
            // another user's followed), each page written whole under its
            // handle.
            let own = OwnDir::open(dir, Missing::Create)?;
            for cmd in std::iter::once(&lab).chain(visible(&lab)) {
                let page = page(&lab, cmd);
                let name = format!("{}.1", page_name(&lab, cmd));
                let path = dir.join(&name);
                own.replace(&name, page.as_bytes())
                    .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))?;
                outln!("{}", path.display());
            }
            return Ok(Exit::Clean);
        }
        let cmd = match &self.command {
            None => &lab,
            Some(name) => visible(&lab)
                .find(|c| c.get_name() == name)
                .ok_or_else(|| {
                    LabError::Input(format!(
                        "no command `{name}`; the commands: {}",
                        visible(&lab)
                            .map(|c| c.get_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        };
        out!("{}", page(&lab, cmd));
        Ok(Exit::Clean)
    }
}

/// The commands of `lab` that have a page (the hidden ones and clap's
/// `help` do not).
fn visible(lab: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    lab.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// `lab` or `lab-run`.
fn page_name(lab: &clap::Command, cmd: &clap::Command) -> String {
    if std::ptr::eq(lab, cmd) {
        "lab".to_string()
    } else {
        format!("lab-{}", cmd.get_name())
    }
}

/// The roff source of `cmd`'s page: clap_mangen's title, name, synopsis,
/// description, options and commands, then the examples, the exit status
/// and the environment (of `lab` itself), and the version.
fn page(lab: &clap::Command, cmd: &clap::Command) -> String {
    let top = std::ptr::eq(lab, cmd);
    let name = page_name(lab, cmd);
    let man = Man::new(cmd.clone())
        .title(name.to_uppercase())
        .source(format!("lab {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    // Writing into a Vec does not fail.
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    let _ = man.render_synopsis_section(&mut page);
    let _ = man.render_description_section(&mut page);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut page);
    }
    if top {
        let _ = man.render_subcommands_section(&mut page);
    }
    let mut roff = Roff::new();
    let key = if top { "lab" } else { cmd.get_name() };
    roff.control("SH", ["EXAMPLES"]);
    for e in examples::of(key) {
        roff.control("TP", []);
        roff.text([roman(format!("{}:", e.what))]);
        roff.control("EX", []);
        roff.text([roman(e.command)]);
        roff.control("EE", []);
    }
    if top {
        roff.control("SH", ["EXIT STATUS"]);
        for (status, what) in [
            ("0", "clean: every strategy gave what its scenario expects (lab run, lab soak); no order-dependent member (lab suite); the polluters were found (lab bisect)"),
            ("1", "something was found: a verdict the scenario does not expect, an order-dependent member, a victim that is not order-dependent, a plan a strategy refuses"),
            ("2", "bad input: an option, a scenario or a file the lab cannot use"),
            ("3", "the lab could not work: it could not start its processes or write its results"),
        ] {
            roff.control("TP", []);
            roff.text([roman(status)]);
            roff.text([roman(what)]);
        }
        roff.control("SH", ["ENVIRONMENT"]);
        for (var, what) in [
            ("NO_COLOR", "set and not empty: no colour in the summaries, even with CLICOLOR_FORCE"),
            ("CLICOLOR_FORCE", "set and not 0: colour in the summaries even when standard output is not a terminal"),
            ("CLICOLOR", "0: no colour"),
            ("LAB_NO_CGROUP", "true: run trials without a cgroup (as --no-cgroup)"),
        ] {
            roff.control("TP", []);
            roff.text([roman(var)]);
            roff.text([roman(what)]);
        }
        roff.control("SH", ["SEE ALSO"]);
        let pages: Vec<String> = visible(lab)
            .map(|c| format!("lab-{}(1)", c.get_name()))
            .collect();
        roff.text([roman(pages.join(", "))]);
    } else {
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman("lab(1)")]);
    }
    let _ = roff.to_writer(&mut page);
    if cmd.get_version().is_some() {
        let _ = man.render_version_section(&mut page);
    }
    String::from_utf8_lossy(&page).into_owned()
}
