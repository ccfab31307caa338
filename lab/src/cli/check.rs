//! `lab check`: validate scenario files and their plans.

use super::{parse_strategies, print_report, Format};
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
    /// Output format (a bad file's error and a refusal are on standard error in either)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A strategy that refuses a file's plan.
#[derive(serde::Serialize)]
struct Refusal {
    strategy: String,
    reason: String,
}

/// What `lab check` found of one file.
#[derive(serde::Serialize)]
struct Checked {
    file: String,
    /// Whether it is a valid scenario.
    ok: bool,
    /// Its name, node count and kills, when valid.
    scenario: Option<String>,
    nodes: Option<u64>,
    kills: Option<usize>,
    /// Why it is not, when not.
    error: Option<String>,
    /// The strategies that refuse its plan.
    refusals: Vec<Refusal>,
}

/// What `lab check` prints.
#[serde_with::serde_as]
#[derive(serde::Serialize)]
struct Report {
    #[serde_as(as = "serde_with::DisplayFromStr")]
    seed: u64,
    files: Vec<Checked>,
}

impl CheckCmd {
    /// Every file is checked; a bad one is `Exit::Input` (after the
    /// others), a refused plan `Exit::Found`.
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let strategies = parse_strategies(&self.strategies)?;
        let mut files = Vec::new();
        for f in &self.files {
            files.push(match Scenario::load(f) {
                Ok(s) => {
                    let plan = Plan::new(&s, self.seed);
                    let unreachable = plan
                        .unreachable_gate()
                        .map(|why| format!("{f}: seed {}: {why}", self.seed));
                    let refusals = if unreachable.is_some() {
                        Vec::new()
                    } else {
                        strategies
                            .iter()
                            .filter_map(|st| {
                                crate::node::guard::refusal(&plan, st).map(|r| Refusal {
                                    strategy: st.name.clone(),
                                    reason: r.reason,
                                })
                            })
                            .collect()
                    };
                    Checked {
                        file: f.clone(),
                        ok: unreachable.is_none(),
                        scenario: Some(s.name.clone()),
                        nodes: Some(s.node_count()),
                        kills: Some(s.kills.len()),
                        error: unreachable,
                        refusals,
                    }
                }
                Err(e) => Checked {
                    file: f.clone(),
                    ok: false,
                    scenario: None,
                    nodes: None,
                    kills: None,
                    error: Some(e.to_string()),
                    refusals: Vec::new(),
                },
            });
        }
        let report = Report {
            seed: self.seed,
            files,
        };
        // Errors and refusals on stderr, in either format.
        for c in &report.files {
            if let Some(e) = &c.error {
                errln!("{e}");
            }
            for r in &c.refusals {
                errln!("{}: {}", c.file, refusal_line(&r.strategy, &r.reason));
            }
        }
        print_report(self.format, &report, || {
            report
                .files
                .iter()
                .filter(|c| c.ok)
                .map(|c| {
                    format!(
                        "{}: ok ({}, {} nodes, {} kills)\n",
                        c.file,
                        c.scenario.as_deref().unwrap_or(""),
                        c.nodes.unwrap_or(0),
                        c.kills.unwrap_or(0)
                    )
                })
                .collect()
        });
        let bad = report.files.iter().any(|c| !c.ok);
        let refused = report.files.iter().any(|c| !c.refusals.is_empty());
        Ok(if bad {
            Exit::Input
        } else {
            Exit::clean_if(!refused)
        })
    }
}

/// `refused at plan time under STRATEGY: WHY`: a plan-time refusal as one
/// line, the guard's own `refused at plan time: ` prefix not said twice.
pub(super) fn refusal_line(strategy: impl std::fmt::Display, reason: &str) -> String {
    let why = reason
        .strip_prefix("refused at plan time: ")
        .unwrap_or(reason);
    format!("refused at plan time under {strategy}: {why}")
}
