//! `lab list`: the built-in scenarios.

use super::{print_report, Format};
use crate::error::{Exit, LabError};
use crate::expect::Expect;
use crate::scenario::{Scenario, BUILTIN};

/// `lab list`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct ListCmd {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One built-in scenario, as `--format json` prints it.
#[derive(serde::Serialize)]
struct Entry {
    name: String,
    nodes: u64,
    about: String,
    /// Its `[expect]` entries (`[]` when it has none).
    expect: Expect,
}

/// What `lab list` prints.
#[derive(serde::Serialize)]
struct List {
    scenarios: Vec<Entry>,
}

impl ListCmd {
    /// Print each built-in scenario: name, node count, its whole `about`
    /// and its expectations.
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let mut scenarios = Vec::new();
        for (name, text) in BUILTIN {
            let s = Scenario::parse(&format!("scenarios/{name}.toml"), text)?;
            scenarios.push(Entry {
                name: name.to_string(),
                nodes: s.node_count(),
                about: s.about.split_whitespace().collect::<Vec<_>>().join(" "),
                expect: s.expect.unwrap_or_default(),
            });
        }
        let list = List { scenarios };
        print_report(self.format, &list, || render(&list));
        Ok(Exit::Clean)
    }
}

/// The text of `list`: per scenario a line with its name and size, its
/// `about` wrapped to the terminal's width (80 columns when stdout is no
/// terminal), the expectations, and a blank line.
fn render(list: &List) -> String {
    // `termwidth` falls back on stderr's and stdin's terminal: ask it only
    // when stdout is the terminal.
    let width = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        textwrap::termwidth().max(40)
    } else {
        80
    };
    let indent = "    ";
    let wrap = textwrap::Options::new(width)
        .initial_indent(indent)
        .subsequent_indent(indent);
    let mut s = String::new();
    for e in &list.scenarios {
        s.push_str(&format!("{}  {} nodes\n", e.name, e.nodes));
        for line in textwrap::wrap(&e.about, &wrap) {
            s.push_str(&line);
            s.push('\n');
        }
        if !e.expect.entries.is_empty() {
            let each: Vec<String> = e
                .expect
                .entries
                .iter()
                .map(|x| {
                    let v: Vec<&str> = x.verdicts.iter().map(|v| v.name()).collect();
                    format!("{} {}", x.strategy, v.join(" or "))
                })
                .collect();
            let line = format!("expect: {}", each.join(", "));
            for l in textwrap::wrap(&line, &wrap) {
                s.push_str(&l);
                s.push('\n');
            }
        }
        s.push('\n');
    }
    s
}
