//! Expectations: what each strategy should give on a scenario (the
//! scenario's `[expect]` table, or a soak's `--gate`), and whether a run met
//! them. `lab run` and `lab soak` compare every strategy's verdicts with its
//! expectation here ([`compare`], giving a [`Comparison`]; the trial's own
//! judge is [`crate::trial::judge`]), and
//! [`crate::error::Exit::of_expectations`] turns the comparisons into the
//! exit status.
//!
//! Which expectation applies to a strategy, in order: a `--gate` naming it;
//! the scenario's `[expect]` entry for it (by preset name, or by the same
//! axes); else the command's default (`lab run`: every trial `pass`, the rule
//! of a scenario without `[expect]`; `lab soak`: none, the strategy is not
//! judged).

use std::fmt::Write as _;

use serde::Serialize;

use crate::strategy::{Create, Observe, ParentDeath, Strategy};
use crate::verdict::Verdict;

/// A strategy's axes and guards switch: what makes two names the same
/// strategy (`legacy` and `create=fork,death=pdeathsig,observe=pid`).
type Axes = (Create, ParentDeath, Observe, bool);

fn axes(s: &Strategy) -> Axes {
    (s.create, s.death, s.observe, s.guards)
}

/// One entry of a scenario's `[expect]` table (in JSON, `{"strategy":
/// "legacy", "verdicts": ["orphan"]}`: a strategy is no key, its name is
/// not snake_case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectEntry {
    /// The strategy as written (a preset name or the axes).
    pub strategy: String,
    #[serde(skip)]
    axes: Axes,
    /// The verdicts its trials may have, in report order, each once.
    pub verdicts: Vec<Verdict>,
}

/// A scenario's `[expect]` table: for each strategy, the verdicts it is
/// expected to give (in JSON, the list of its entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Expect {
    /// The entries, in strategy-name order.
    pub entries: Vec<ExpectEntry>,
}

impl Expect {
    /// Add the entry of `strategy` (parsed) expecting `verdicts`; `Err`
    /// with the strategy name of an entry already there for the same
    /// strategy (by name or by axes).
    pub(crate) fn add(&mut self, strategy: &Strategy, verdicts: &[Verdict]) -> Result<(), String> {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.strategy == strategy.name || e.axes == axes(strategy))
        {
            return Err(e.strategy.clone());
        }
        let mut verdicts = verdicts.to_vec();
        verdicts.sort();
        verdicts.dedup();
        self.entries.push(ExpectEntry {
            strategy: strategy.name.clone(),
            axes: axes(strategy),
            verdicts,
        });
        Ok(())
    }

    /// The entry for `strategy`: the one of its name, else the one of its
    /// axes.
    pub fn of(&self, strategy: &Strategy) -> Option<&ExpectEntry> {
        self.entries
            .iter()
            .find(|e| e.strategy == strategy.name)
            .or_else(|| self.entries.iter().find(|e| e.axes == axes(strategy)))
    }
}

/// `--gate STRATEGY[:VERDICT,...]`: the verdicts a strategy's trials may
/// have (`pass` when none is written), overriding the scenario's
/// expectation of that strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The strategy, as named on the command line.
    pub strategy: String,
    /// The verdicts allowed.
    pub verdicts: Vec<Verdict>,
}

impl Gate {
    /// Parse `STRATEGY[:VERDICT,...]`.
    ///
    /// # Errors
    /// The name written that is no verdict, with the verdicts there are.
    pub fn parse(written: &str) -> Result<Gate, String> {
        let (strategy, verdicts) = match written.split_once(':') {
            Some((name, list)) => (
                name,
                list.split(',')
                    .map(|v| verdict_named(v.trim()))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => (written, vec![Verdict::Pass]),
        };
        let mut verdicts = verdicts;
        verdicts.sort();
        verdicts.dedup();
        Ok(Gate {
            strategy: strategy.to_string(),
            verdicts,
        })
    }
}

/// The verdict of this name.
///
/// # Errors
/// A message naming `name` and the verdicts there are.
pub fn verdict_named(name: &str) -> Result<Verdict, String> {
    Verdict::ALL
        .iter()
        .copied()
        .find(|v| v.name() == name)
        .ok_or_else(|| format!("`{name}` is not a verdict ({})", verdict_names()))
}

/// Every verdict's name, comma-separated.
pub fn verdict_names() -> String {
    Verdict::ALL.map(|v| v.name()).join(", ")
}

/// Where a strategy's expectation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The scenario's `[expect]` table.
    Scenario,
    /// A `--gate` of the command line.
    Gate,
    /// The command's default: `lab run` expects every trial to pass.
    Default,
    /// None: the strategy is not judged (a soak without `--gate` of a
    /// scenario whose `[expect]` does not name it).
    None,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Scenario => "the scenario's [expect]",
            Origin::Gate => "--gate",
            Origin::Default => "no [expect] entry: every trial must pass",
            Origin::None => "no expectation",
        }
    }
}

/// What a judgement came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every verdict seen is one the expectation allows.
    AsExpected,
    /// Some trial had a verdict the expectation does not allow.
    Unexpected,
    /// No expectation applies.
    NotJudged,
}

/// Trials with a verdict the expectation does not allow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unexpected {
    /// The verdict.
    pub verdict: Verdict,
    /// Trials that had it.
    pub trials: u64,
}

/// Whether one strategy (on one scenario) met its expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The strategy's name.
    pub strategy: String,
    /// `as_expected`, `unexpected` or `not_judged`.
    pub status: Status,
    /// Where the expectation came from.
    pub source: Origin,
    /// The verdicts allowed (empty when not judged).
    pub expected: Vec<Verdict>,
    /// The verdicts seen that are not allowed, with their trial counts.
    pub unexpected: Vec<Unexpected>,
}

impl Comparison {
    /// Whether it does not fail the run (as expected, or not judged).
    pub fn met(&self) -> bool {
        self.status != Status::Unexpected
    }

    /// `as expected (orphan; the scenario's [expect])`, or `UNEXPECTED:
    /// pass x3 (expected orphan; ...)`, or `no expectation`.
    pub fn render(&self) -> String {
        let expected: Vec<&str> = self.expected.iter().map(|v| v.name()).collect();
        let mut s = String::new();
        match self.status {
            Status::AsExpected => {
                let _ = write!(
                    s,
                    "as expected ({}; {})",
                    expected.join(", "),
                    self.source.label()
                );
            }
            Status::Unexpected => {
                let seen: Vec<String> = self
                    .unexpected
                    .iter()
                    .map(|u| format!("{} x{}", u.verdict, u.trials))
                    .collect();
                let _ = write!(
                    s,
                    "UNEXPECTED: {} (expected {}; {})",
                    seen.join(", "),
                    expected.join(", "),
                    self.source.label()
                );
            }
            Status::NotJudged => s.push_str(Origin::None.label()),
        }
        s
    }
}

/// The expectation of `strategy`: its `--gate` among `gates`, else the
/// scenario's entry for it in `expect`, else `default` (with its source).
pub fn expectation_of(
    strategy: &Strategy,
    expect: Option<&Expect>,
    gates: &[Gate],
    default: Option<&[Verdict]>,
) -> (Origin, Vec<Verdict>) {
    if let Some(g) = gates.iter().find(|g| g.strategy == strategy.name) {
        return (Origin::Gate, g.verdicts.clone());
    }
    if let Some(e) = expect.and_then(|e| e.of(strategy)) {
        return (Origin::Scenario, e.verdicts.clone());
    }
    match default {
        Some(d) => (Origin::Default, d.to_vec()),
        None => (Origin::None, Vec::new()),
    }
}

/// Compare the verdicts of `strategy`, whose trials had `count(verdict)` of
/// each verdict, with the expectation [`expectation_of`] picks.
pub fn compare(
    strategy: &Strategy,
    expect: Option<&Expect>,
    gates: &[Gate],
    default: Option<&[Verdict]>,
    count: impl Fn(Verdict) -> u64,
) -> Comparison {
    let (source, expected) = expectation_of(strategy, expect, gates, default);
    let unexpected: Vec<Unexpected> = if source == Origin::None {
        Vec::new()
    } else {
        Verdict::ALL
            .iter()
            .filter(|v| !expected.contains(v))
            .map(|&verdict| Unexpected {
                verdict,
                trials: count(verdict),
            })
            .filter(|u| u.trials > 0)
            .collect()
    };
    let status = match source {
        Origin::None => Status::NotJudged,
        _ if unexpected.is_empty() => Status::AsExpected,
        _ => Status::Unexpected,
    };
    Comparison {
        strategy: strategy.name.clone(),
        status,
        source,
        expected,
        unexpected,
    }
}

/// `lab run`'s default expectation of a strategy its scenario does not
/// name: every trial passes.
pub const RUN_DEFAULT: &[Verdict] = &[Verdict::Pass];

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Strategy {
        Strategy::parse(s).unwrap()
    }

    fn counts(pairs: &[(Verdict, u64)]) -> impl Fn(Verdict) -> u64 + '_ {
        move |v| pairs.iter().find(|(w, _)| *w == v).map_or(0, |(_, n)| *n)
    }

    fn nested_expect() -> Expect {
        let mut e = Expect::default();
        e.add(&st("canonical"), &[Verdict::Pass]).unwrap();
        e.add(&st("legacy"), &[Verdict::Orphan, Verdict::Pass])
            .unwrap();
        e
    }

    #[test]
    fn a_strategy_is_found_by_name_or_by_axes_and_named_once() {
        let mut e = nested_expect();
        let axes = st("create=fork,death=pdeathsig,observe=pid");
        assert_eq!(e.of(&axes).unwrap().strategy, "legacy");
        assert_eq!(e.add(&axes, &[Verdict::Hang]), Err("legacy".to_string()));
        assert!(e.of(&st("std-command")).is_none());
        // Guards count: canonical's axes without its guards are another strategy.
        assert!(e
            .of(&st("create=clone3,death=lifeline,observe=pidfd,guards=off"))
            .is_none());
    }

    #[test]
    fn every_verdict_seen_must_be_expected() {
        let e = nested_expect();
        let j = compare(
            &st("legacy"),
            Some(&e),
            &[],
            Some(RUN_DEFAULT),
            counts(&[(Verdict::Orphan, 18), (Verdict::Pass, 2)]),
        );
        assert_eq!((j.status, j.source), (Status::AsExpected, Origin::Scenario));
        assert_eq!(
            j.render(),
            "as expected (pass, orphan; the scenario's [expect])"
        );
        let j = compare(
            &st("canonical"),
            Some(&e),
            &[],
            Some(RUN_DEFAULT),
            counts(&[(Verdict::Pass, 1), (Verdict::Hang, 2)]),
        );
        assert_eq!(j.status, Status::Unexpected);
        assert!(!j.met());
        assert_eq!(
            j.render(),
            "UNEXPECTED: hang x2 (expected pass; the scenario's [expect])"
        );
    }

    #[test]
    fn a_gate_overrides_the_scenario_and_the_default_applies_to_the_rest() {
        let e = nested_expect();
        let gates = [Gate::parse("legacy").unwrap()];
        let orphans = counts(&[(Verdict::Orphan, 3)]);
        let j = compare(&st("legacy"), Some(&e), &gates, None, &orphans);
        assert_eq!((j.status, j.source), (Status::Unexpected, Origin::Gate));
        let j = compare(
            &st("std-command"),
            Some(&e),
            &[],
            Some(RUN_DEFAULT),
            &orphans,
        );
        assert_eq!((j.status, j.source), (Status::Unexpected, Origin::Default));
        let j = compare(&st("std-command"), Some(&e), &[], None, &orphans);
        assert_eq!((j.status, j.source), (Status::NotJudged, Origin::None));
        assert!(j.met());
        assert_eq!(j.render(), "no expectation");
    }

    #[test]
    fn gates_parse_with_pass_by_default_and_refuse_unknown_verdicts() {
        assert_eq!(
            Gate::parse("canonical:pass, panic").unwrap().verdicts,
            vec![Verdict::Pass, Verdict::Panic]
        );
        assert_eq!(Gate::parse("legacy").unwrap().verdicts, vec![Verdict::Pass]);
        let e = Gate::parse("legacy:orphans").unwrap_err();
        assert!(
            e.starts_with("`orphans` is not a verdict (pass, orphan,"),
            "{e}"
        );
    }
}
