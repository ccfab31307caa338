//! `lab plan`: the plan a scenario and seed resolve to.

use super::{parse_strategies, print_refusals, print_report, Format};
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
        /// The plan as `--format json` prints it: with its hash.
        #[derive(serde::Serialize)]
        struct Hashed<'a> {
            #[serde(flatten)]
            plan: &'a Plan,
            plan_hash: String,
        }
        let hashed = Hashed {
            plan: &plan,
            plan_hash: plan.hash(),
        };
        print_report(self.format, &hashed, || plan.render());
        if let Some(why) = plan.unreachable_gate() {
            errln!("seed {}: {why}", self.seed);
            return Ok(Exit::Input);
        }
        Ok(Exit::clean_if(print_refusals("", &plan, &strategies) == 0))
    }
}
