//! `lab report`: a markdown summary of result CSVs, one table per scenario,
//! to paste into a design document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::markdown::{md, quote};
use super::{list_some, plot, Dataset, Group, ScenarioData};
use crate::stats::{percentile_sorted, Rate};
use crate::verdict::Verdict;

/// What `lab report` adds to the tables.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// Link each scenario's SVG charts (as `lab plot --out DIR` names them)
    /// under this path prefix, as written (relative to where the markdown
    /// will be read); `None`: no charts.
    pub charts: Option<String>,
}

/// `x` ms with two decimals (`6.78`).
fn ms(x: f64) -> String {
    format!("{x:.2}")
}

/// The report: a header naming the runs, kernels, lab versions, trial modes
/// and the CSVs read; then per scenario (in order of first appearance) its
/// runs and plans, a table with one row per strategy (and swept value), and
/// what each strategy's trials came to.
///
/// Table columns: strategy, the swept value (when the scenario was swept),
/// trials, one column per verdict of [`ScenarioData::verdicts`] (count, rate
/// and 95% Wilson interval; a zero count shows its 95% upper bound), then
/// the median and p99 (nearest rank) of the time to verdict and of the trial
/// duration, in ms.
pub fn render(ds: &Dataset, opts: &ReportOptions) -> String {
    let mut s = String::new();
    let code =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|x| format!("`{x}`")).collect() };
    let _ = writeln!(s, "# lab report\n");
    let _ = writeln!(s, "| | |\n| --- | --- |");
    let runs = ds.distinct(|r| &r.run_id);
    let _ = writeln!(s, "| runs | {} |", md_list(&code(runs)));
    let scenarios = ds.distinct(|r| &r.scenario);
    let _ = writeln!(s, "| scenarios | {} |", md_list(&code(scenarios)));
    let _ = writeln!(
        s,
        "| kernel | {} |",
        md(&ds.distinct(|r| &r.kernel).join(", "))
    );
    let _ = writeln!(
        s,
        "| lab version | {} |",
        md(&ds.distinct(|r| &r.lab_version).join(", "))
    );
    let _ = writeln!(
        s,
        "| trial mode | {} |",
        md(&ds.distinct(|r| &r.cgroup_mode).join(", "))
    );
    let read: Vec<String> = ds
        .sources
        .iter()
        .map(|src| format!("`{}` ({} rows)", src.path.display(), src.rows))
        .collect();
    if !read.is_empty() {
        let _ = writeln!(s, "| read | {} |", read.join("<br>"));
    }
    let _ = writeln!(s, "| trials | {} |", ds.trials.len());
    let _ = writeln!(
        s,
        "\nA rate is the trials with the verdict out of the strategy's trials, with its 95% \
         Wilson score interval; a verdict seen in no trial shows its 95% upper bound. Times \
         are in ms: the median and the p99 (nearest rank) of the time from a trial's start \
         to its verdict, and of the whole trial, cleanup included."
    );
    for sc in ds.scenarios() {
        scenario(&mut s, &sc, opts);
    }
    s
}

/// `a, b` for a few, `a, b, c, +N more` past eight.
fn md_list(items: &[String]) -> String {
    list_some(items, 8)
}

fn scenario(s: &mut String, sc: &ScenarioData<'_>, opts: &ReportOptions) {
    let _ = writeln!(s, "\n## {}\n", md(&sc.name));
    let code =
        |v: Vec<String>| -> Vec<String> { v.into_iter().map(|x| format!("`{x}`")).collect() };
    let runs = sc.distinct(|r| &r.run_id);
    let seeds: Vec<String> = {
        let mut v: Vec<u64> = sc.trials.iter().map(|t| t.row.seed).collect();
        v.sort_unstable();
        v.dedup();
        v.iter().map(u64::to_string).collect()
    };
    let _ = writeln!(
        s,
        "Run{} {}; scenario {}; plan{} {} (seed{} {}).\n",
        if runs.len() == 1 { "" } else { "s" },
        md_list(&code(runs)),
        md_list(&code(sc.distinct(|r| &r.scenario_hash))),
        if sc.distinct(|r| &r.plan_hash).len() == 1 {
            ""
        } else {
            "s"
        },
        list_some(&code(sc.distinct(|r| &r.plan_hash)), 3),
        if seeds.len() == 1 { "" } else { "s" },
        list_some(&seeds, 3),
    );
    let verdicts = sc.verdicts();
    let keys = sc.sweep_keys();
    let sweep_col = match keys.as_slice() {
        [] => None,
        [one] => Some(md(one)),
        _ => Some("sweep".to_string()),
    };
    let mut head = vec!["strategy".to_string()];
    let mut align = vec!["---".to_string()];
    if let Some(c) = &sweep_col {
        head.push(c.clone());
        align.push("---:".into());
    }
    head.push("trials".into());
    align.push("---:".into());
    for v in &verdicts {
        head.push(v.name().into());
        align.push("---".into());
    }
    for h in [
        "median time to verdict (ms)",
        "p99 time to verdict (ms)",
        "median duration (ms)",
        "p99 duration (ms)",
    ] {
        head.push(h.into());
        align.push("---:".into());
    }
    // Written by hand, not with comfy-table (which lays out the lab's text
    // tables): its markdown preset has no alignment row (`---:` right-aligns
    // the numbers here) and pads every cell to its column's width, so one
    // wider cell would rewrite every line of the committed tables in
    // docs/design/ at each regeneration. Unpadded rows are valid GFM.
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "| {} |", align.join(" | "));
    for g in sc.table_groups() {
        let mut cells = vec![md(&g.strategy)];
        if sweep_col.is_some() {
            cells.push(match &g.sweep {
                None => "·".into(),
                Some(v) if keys.len() == 1 => md(&v.text),
                Some(v) => md(&format!("{}={}", v.key, v.text)),
            });
        }
        cells.push(g.trials.to_string());
        for &v in &verdicts {
            cells.push(g.rate(v).render());
        }
        cells.push(ms(g.verdict_ms(50.0)));
        cells.push(ms(g.verdict_ms(99.0)));
        cells.push(ms(g.duration_ms(50.0)));
        cells.push(ms(g.duration_ms(99.0)));
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(s);
    for g in sc.by_strategy() {
        let _ = writeln!(s, "- {}", finding(&g));
    }
    if let Some(prefix) = &opts.charts {
        let prefix = prefix.trim_end_matches('/');
        for chart in plot::charts_of(sc, plot::ChartFormat::Svg) {
            let path = if prefix.is_empty() {
                chart.file.clone()
            } else {
                format!("{prefix}/{}", chart.file)
            };
            let _ = writeln!(s, "\n![{}]({path})", md(&chart.alt));
        }
    }
}

/// One line on what a strategy's trials came to: its axes against
/// canonical's, its most frequent verdict with the rate, the median time to
/// verdict, and for failing verdicts the most frequent reason, the
/// signatures named and the guards' panic sites.
pub fn finding(g: &Group) -> String {
    let diff = g.differs_from_canonical();
    let axes = if diff.is_empty() {
        "the canonical axes, guards on".to_string()
    } else {
        format!("differs from canonical on {}", diff.join(", "))
    };
    let modal = g.modal();
    let mut line = format!(
        "**{}** ({}): `{}` {}; verdict in {} ms (median), {} ms (p99).",
        md(&g.strategy),
        md(&axes),
        modal,
        g.rate(modal).render(),
        ms(g.verdict_ms(50.0)),
        ms(g.verdict_ms(99.0)),
    );
    let others: Vec<String> = Verdict::ALL
        .into_iter()
        .filter(|&v| v != modal && g.count(v) > 0)
        .map(|v| format!("`{v}` {}", g.rate(v).render()))
        .collect();
    if !others.is_empty() {
        let _ = write!(line, " Also {}.", others.join(", "));
    }
    for v in Verdict::ALL {
        let Some(reasons) = g.reasons.get(&v) else {
            continue;
        };
        let Some((reason, n)) = reasons
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        else {
            continue;
        };
        // The first line that says something (a reason may start with a
        // line break).
        let Some(first) = reason.lines().map(str::trim).find(|l| !l.is_empty()) else {
            continue;
        };
        let first = if first.chars().count() > 300 {
            format!("{} …", first.chars().take(299).collect::<String>())
        } else {
            first.to_string()
        };
        let which = if reasons.len() > 1 {
            format!(
                "the most frequent of {} distinct reasons, in {n}",
                reasons.len()
            )
        } else {
            format!("in {n}")
        };
        let _ = write!(
            line,
            " Why `{v}` ({which} of its {}): {}.",
            crate::text::plural(g.count(v), "trial"),
            quote(&first)
        );
    }
    if !g.signatures.is_empty() {
        let sigs: Vec<String> = g
            .signatures
            .iter()
            .map(|(k, n)| format!("`{k}` ({})", crate::text::plural(*n, "trial")))
            .collect();
        let _ = write!(line, " Signatures named: {}.", sigs.join(", "));
    }
    if !g.panic_sites.is_empty() {
        let sites: Vec<String> = g
            .panic_sites
            .iter()
            .map(|(k, n)| format!("`{k}` ({n})"))
            .collect();
        let _ = write!(line, " Panic site: {}.", sites.join(", "));
    }
    line
}

/// What `lab report --format json` prints: the figures of the markdown
/// report ([`render`]), keyed as every JSON of the lab is (snake_case; see
/// [`crate::json`]).
#[derive(Clone, Debug, Serialize)]
pub struct ReportJson {
    /// Run ids, in order of first appearance.
    pub runs: Vec<String>,
    /// Kernel releases.
    pub kernels: Vec<String>,
    /// Lab versions.
    pub lab_versions: Vec<String>,
    /// Trial modes (`cgroup`, `subreaper`).
    pub trial_modes: Vec<String>,
    /// The CSVs read.
    pub read: Vec<ReadJson>,
    /// Trials read.
    pub trials: usize,
    /// One entry per scenario, in order of first appearance.
    pub scenarios: Vec<ScenarioJson>,
}

/// One CSV read.
#[derive(Clone, Debug, Serialize)]
pub struct ReadJson {
    /// Its path.
    pub path: PathBuf,
    /// Rows read from it.
    pub rows: usize,
}

/// One scenario of the report.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioJson {
    /// Scenario name.
    pub name: String,
    /// Its runs.
    pub runs: Vec<String>,
    /// Its scenario hashes.
    pub scenario_hashes: Vec<String>,
    /// Its plan hashes.
    pub plan_hashes: Vec<String>,
    /// Its seeds, ascending (strings: seeds are 64-bit).
    pub seeds: Vec<String>,
    /// The rows of its table: per strategy (and swept value).
    pub groups: Vec<GroupJson>,
    /// What each strategy's trials came to, as the markdown says it.
    pub findings: Vec<String>,
}

/// One row of a scenario's table.
#[derive(Clone, Debug, Serialize)]
pub struct GroupJson {
    /// Strategy name.
    pub strategy: String,
    /// Its axes.
    pub create: String,
    /// ...
    pub death: String,
    /// ...
    pub observe: String,
    /// Whether the canonical path's guards were on.
    pub guards: bool,
    /// The swept key and value, empty when none.
    pub sweep_key: String,
    /// ...
    pub sweep_value: String,
    /// Trials.
    pub trials: u64,
    /// The rate of each verdict of the table, with its 95% Wilson interval
    /// (keys: verdicts in snake_case).
    #[serde(serialize_with = "crate::json::verdict_keys")]
    pub rates: BTreeMap<String, Rate>,
    /// Median and p99 (nearest rank) time to verdict and trial duration (µs).
    pub median_verdict_us: u64,
    /// ...
    pub p99_verdict_us: u64,
    /// ...
    pub median_duration_us: u64,
    /// ...
    pub p99_duration_us: u64,
    /// Distinct reasons of failing trials by verdict (PIDs and pipe inodes
    /// written `N`), with their trial counts.
    #[serde(serialize_with = "crate::json::named_counts_by_verdict")]
    pub reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// Trials that named each signature.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub signatures: BTreeMap<String, u64>,
    /// The guards' panic sites, with counts.
    #[serde(serialize_with = "crate::json::named_counts")]
    pub panic_sites: BTreeMap<String, u64>,
}

/// The report of `ds` as data ([`ReportJson`]).
pub fn to_json(ds: &Dataset) -> ReportJson {
    ReportJson {
        runs: ds.distinct(|r| &r.run_id),
        kernels: ds.distinct(|r| &r.kernel),
        lab_versions: ds.distinct(|r| &r.lab_version),
        trial_modes: ds.distinct(|r| &r.cgroup_mode),
        read: ds
            .sources
            .iter()
            .map(|src| ReadJson {
                path: src.path.clone(),
                rows: src.rows,
            })
            .collect(),
        trials: ds.trials.len(),
        scenarios: ds.scenarios().iter().map(scenario_json).collect(),
    }
}

fn scenario_json(sc: &ScenarioData<'_>) -> ScenarioJson {
    let mut seeds: Vec<u64> = sc.trials.iter().map(|t| t.row.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let verdicts = sc.verdicts();
    ScenarioJson {
        name: sc.name.clone(),
        runs: sc.distinct(|r| &r.run_id),
        scenario_hashes: sc.distinct(|r| &r.scenario_hash),
        plan_hashes: sc.distinct(|r| &r.plan_hash),
        seeds: seeds.iter().map(u64::to_string).collect(),
        groups: sc
            .table_groups()
            .iter()
            .map(|g| GroupJson {
                strategy: g.strategy.clone(),
                create: g.axes.0.clone(),
                death: g.axes.1.clone(),
                observe: g.axes.2.clone(),
                guards: g.guards,
                sweep_key: g.sweep.as_ref().map_or(String::new(), |v| v.key.clone()),
                sweep_value: g.sweep.as_ref().map_or(String::new(), |v| v.text.clone()),
                trials: g.trials,
                rates: verdicts
                    .iter()
                    .map(|&v| (v.name().to_string(), g.rate(v)))
                    .collect(),
                median_verdict_us: percentile_sorted(&g.verdict_us, 50.0),
                p99_verdict_us: percentile_sorted(&g.verdict_us, 99.0),
                median_duration_us: percentile_sorted(&g.duration_us, 50.0),
                p99_duration_us: percentile_sorted(&g.duration_us, 99.0),
                reasons: g
                    .reasons
                    .iter()
                    .map(|(v, r)| (v.name().to_string(), r.clone()))
                    .collect(),
                signatures: g.signatures.clone(),
                panic_sites: g.panic_sites.clone(),
            })
            .collect(),
        findings: sc.by_strategy().iter().map(finding).collect(),
    }
}
