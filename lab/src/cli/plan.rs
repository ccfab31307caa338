//! `lab plan`: the plan a scenario and seed resolve to.

use super::{parse_strategies, print_refusals, Format};
use crate::error::{Exit, LabError};
use crate::plan::Plan;
use crate::scenario::overrides::Override;
use crate::scenario::Scenario;

/// `lab plan`'s arguments as given.
#[derive(clap::Args)]
pub(super) struct PlanCmd {
    /// A built-in scenario name or a path to a .toml file
    scenario: String,
    /// The seed
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Set a scenario key before planning (repeatable), as `lab run --set`
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = Override::parse)]
    overrides: Vec<Override>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Strategy (repeatable) whose plan-time refusal to check: a preset or create=..,death=..,observe=..
    #[arg(long = "strategy", default_values_t = ["canonical".to_string()])]
    strategies: Vec<String>,
}

impl PlanCmd {
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let strategies = parse_strategies(&self.strategies)?;
        let scenario = Scenario::load_with(&self.scenario, &self.overrides)?;
        let plan = Plan::new(&scenario, self.seed);
        match self.format {
            Format::Text => out!("{}", plan.render()),
            Format::Json => {
                let mut v = serde_json::to_value(&plan).expect("a plan serializes");
                v["plan_hash"] = plan.hash().into();
                outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
            }
        }
        if let Some(why) = plan.unreachable_gate() {
            errln!("seed {}: {why}", self.seed);
            return Ok(Exit::Input);
        }
        Ok(Exit::clean_if(print_refusals("", &plan, &strategies) == 0))
    }
}
