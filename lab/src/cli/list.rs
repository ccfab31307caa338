//! `lab list`: the built-in scenarios.

use crate::error::{Exit, LabError};
use crate::scenario::{Scenario, BUILTIN};

/// Print each built-in scenario: name, node count, first line of `about`.
pub(super) fn execute() -> Result<Exit, LabError> {
    for (name, text) in BUILTIN {
        let s = Scenario::parse(&format!("scenarios/{name}.toml"), text)?;
        let first = s.about.lines().next().unwrap_or("");
        outln!("{name:<20} {} nodes  {first}", s.node_count());
    }
    Ok(Exit::Clean)
}
