//! `lab check`: validate scenario files and their plans.

use super::{parse_strategies, print_refusals};
use crate::error::{Exit, LabError};
use crate::plan::Plan;
use crate::scenario::Scenario;

/// `lab check`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct CheckCmd {
    /// Files (or built-in names)
    #[arg(required = true)]
    files: Vec<String>,
    /// The seed that turns each scenario into the plan checked
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Strategy (repeatable) whose plan-time refusal to check: a preset or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string()])]
    strategies: Vec<String>,
}

impl CheckCmd {
    /// Every file is checked; a bad one is `Exit::Input` (after the
    /// others), a refused plan `Exit::Found`.
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let strategies = parse_strategies(&self.strategies)?;
        let (mut bad, mut refused) = (0, 0);
        for f in &self.files {
            match Scenario::load(f) {
                Ok(s) => {
                    let plan = Plan::new(&s, self.seed);
                    if let Some(why) = plan.unreachable_gate() {
                        errln!("{f}: seed {}: {why}", self.seed);
                        bad += 1;
                        continue;
                    }
                    outln!(
                        "{f}: ok ({}, {} nodes, {} kills)",
                        s.name,
                        s.node_count(),
                        s.kills.len()
                    );
                    refused += print_refusals(&format!("{f}: "), &plan, &strategies);
                }
                Err(e) => {
                    errln!("{e}");
                    bad += 1;
                }
            }
        }
        Ok(if bad > 0 {
            Exit::Input
        } else {
            Exit::clean_if(refused == 0)
        })
    }
}
