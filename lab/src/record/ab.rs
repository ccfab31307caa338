//! The A/B table of a run or of one soak cell: strategies as columns, the
//! verdicts seen (and `pass`) as rows, each cell `count rate [interval]`,
//! and the plain-words sentence that says what a failing strategy did.

use std::collections::BTreeMap;

use crate::stats::{percent, Rate};
use crate::text::bounded;
use crate::verdict::Verdict;

/// One column of the table: a strategy, its trials and its rates (by
/// verdict name, as [`crate::record::GroupSummary::rates`]).
#[derive(Clone, Copy, Debug)]
pub struct Column<'a> {
    /// The strategy's name (the column's header).
    pub strategy: &'a str,
    /// Its trials.
    pub trials: u64,
    /// Every verdict's rate with its 95% Wilson interval.
    pub rates: &'a BTreeMap<String, Rate>,
    /// Median time from a trial's start to its verdict (µs).
    pub median_verdict_us: u64,
}

/// One cell: `100 100.0% [96.3%, 100.0%]`, `0 0.0% [0.0%, 3.7%]` (each
/// figure with the precision its interval needs, [`percent`]).
pub fn cell(r: &Rate) -> String {
    format!(
        "{} {}% [{}%, {}%]",
        r.count,
        percent(r.rate),
        percent(r.low),
        percent(r.high)
    )
}

/// The table of `columns` as text, indented by `indent`: a row per verdict
/// seen in any column, `pass` always; then the trials and the median time
/// to verdict of each. `extra` rows (label, one value per column) follow.
pub fn render(indent: usize, columns: &[Column<'_>], extra: &[(&str, Vec<String>)]) -> String {
    let mut header = vec!["verdict".to_string()];
    header.extend(columns.iter().map(|c| c.strategy.to_string()));
    let count = |c: &Column<'_>, v: Verdict| c.rates.get(v.name()).map_or(0, |r| r.count);
    let mut rows: Vec<Vec<String>> = Verdict::ALL
        .iter()
        .filter(|&&v| v == Verdict::Pass || columns.iter().any(|c| count(c, v) > 0))
        .map(|&v| {
            let mut row = vec![v.name().to_string()];
            row.extend(columns.iter().map(|c| {
                c.rates
                    .get(v.name())
                    .map_or_else(|| cell(&Rate::wilson(0, c.trials)), cell)
            }));
            row
        })
        .collect();
    let mut trials = vec!["trials".to_string()];
    trials.extend(columns.iter().map(|c| c.trials.to_string()));
    rows.push(trials);
    let mut median = vec!["median to verdict".to_string()];
    median.extend(
        columns
            .iter()
            .map(|c| format!("{:.2} ms", c.median_verdict_us as f64 / 1000.0)),
    );
    rows.push(median);
    for (label, values) in extra {
        let mut row = vec![label.to_string()];
        row.extend(values.iter().cloned());
        rows.push(row);
    }
    crate::table::text(indent, &header, &rows)
}

/// What a verdict means, in plain words, as the sentence of a failing
/// strategy says it ("in 3 of 100 trials {this} (orphan)").
pub fn plainly(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "the tree ended cleanly",
        Verdict::Orphan => "a process outlived the teardown",
        Verdict::Hang => "a process blocked and the planned course missed its deadline",
        Verdict::Panic => "a guard of the canonical path stopped a deadlock and said why",
        Verdict::Leak => "an output pipe still had a writer after the process it belonged to ended",
        Verdict::Fail => "a program under test exited with another status than expected",
        Verdict::EarlyDeath => "a node died while its parent was alive, unsignalled by the plan",
        Verdict::InnocentKill => "a signal sent to a stale PID killed an innocent process",
        Verdict::Error => "the lab itself failed (the trial says nothing about the strategy)",
    }
}

/// The sentences of one strategy: one per verdict other than `pass` that
/// it gave, most frequent first: `legacy: in 100 of 100 trials a process
/// outlived the teardown (orphan): nodes 0.1 0.1.0 0.1.1; signatures:
/// self-pipe-keeper.` The detail is the tail of the verdict's most frequent
/// reason (after its last `: `), or the whole first line when short; the
/// signatures are those its trials named.
pub fn sentences(
    strategy: &str,
    trials: u64,
    rates: &BTreeMap<String, Rate>,
    reasons: &BTreeMap<String, BTreeMap<String, u64>>,
    signatures: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut seen: Vec<(Verdict, u64)> = Verdict::ALL
        .iter()
        .filter(|&&v| v != Verdict::Pass)
        .filter_map(|&v| {
            let n = rates.get(v.name()).map_or(0, |r| r.count);
            (n > 0).then_some((v, n))
        })
        .collect();
    seen.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    seen.iter()
        .map(|&(v, n)| {
            let of = format!("in {n} of {}", crate::text::plural(trials, "trial"));
            let mut s = format!("{strategy}: {of} {} ({})", plainly(v), v.name());
            if let Some(detail) = reasons.get(v.name()).and_then(top_detail) {
                s.push_str(": ");
                s.push_str(&detail);
            }
            if !signatures.is_empty()
                && matches!(v, Verdict::Hang | Verdict::Orphan | Verdict::Panic)
            {
                let names: Vec<&str> = signatures.keys().map(String::as_str).collect();
                s.push_str("; signatures: ");
                s.push_str(&names.join(", "));
            }
            s.push('.');
            s
        })
        .collect()
}

/// The detail of the most frequent of `reasons`: the part of its first
/// line after the last `: ` outside backticks (the nodes, say; a command
/// line quoted in the reason may hold `: ` of its own), or the whole first
/// line when it has none; at most 160 characters (cut at a word, with
/// `...`).
fn top_detail(reasons: &BTreeMap<String, u64>) -> Option<String> {
    let (reason, _) = reasons
        .iter()
        .max_by_key(|&(r, n)| (*n, std::cmp::Reverse(r)))?;
    let first = reason.lines().next()?.trim();
    let mut quoted = false;
    let mut last = None;
    for (i, c) in first.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ':' if !quoted && first[i..].starts_with(": ") => last = Some(i),
            _ => {}
        }
    }
    let detail = last.map_or(first, |i| &first[i + 2..]).trim();
    if detail.is_empty() {
        return None;
    }
    Some(bounded(detail, 160))
}

/// The scenario's `about` as the summary shows it: its first sentence (up
/// to the first `. `, or all of it), whitespace folded, wrapped at 78
/// columns less `indent`, at most 3 lines (the last ending in `...` when
/// cut); each line indented by `indent` spaces and ending in a newline.
pub fn about_lines(about: &str, indent: usize) -> String {
    let folded = about.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = match folded.find(". ") {
        Some(i) => &folded[..=i],
        None => folded.as_str(),
    };
    let width = 78usize.saturating_sub(indent).max(20);
    let lines = textwrap::wrap(first, width);
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (i, line) in lines.iter().take(3).enumerate() {
        if i == 2 && lines.len() > 3 {
            out.push_str(&format!(
                "{pad}{}\n",
                bounded(&format!("{line} ..."), width)
            ));
        } else {
            out.push_str(&format!("{pad}{line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(pairs: &[(Verdict, u64)], trials: u64) -> BTreeMap<String, Rate> {
        Verdict::ALL
            .iter()
            .map(|&v| {
                let n = pairs.iter().find(|p| p.0 == v).map_or(0, |p| p.1);
                (v.name().to_string(), Rate::wilson(n, trials))
            })
            .collect()
    }

    #[test]
    fn the_detail_is_cut_after_the_last_colon_outside_backticks() {
        let mut reasons = BTreeMap::new();
        reasons.insert(
            "command node root (`sh -c echo a: b`) exited with status 1; expected 0".to_string(),
            1,
        );
        assert_eq!(
            top_detail(&reasons).as_deref(),
            Some("command node root (`sh -c echo a: b`) exited with status 1; expected 0")
        );
        let mut reasons = BTreeMap::new();
        reasons.insert(
            "alive after `x: y` exited: pid N (`sleep 30`)".to_string(),
            1,
        );
        assert_eq!(top_detail(&reasons).as_deref(), Some("pid N (`sleep 30`)"));
    }

    #[test]
    fn the_table_shows_only_the_verdicts_seen_and_pass() {
        let canonical = rates(&[(Verdict::Pass, 100)], 100);
        let legacy = rates(&[(Verdict::Orphan, 100)], 100);
        let t = render(
            0,
            &[
                Column {
                    strategy: "canonical",
                    trials: 100,
                    rates: &canonical,
                    median_verdict_us: 1500,
                },
                Column {
                    strategy: "legacy",
                    trials: 100,
                    rates: &legacy,
                    median_verdict_us: 2000,
                },
            ],
            &[],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("verdict") && lines[0].contains("legacy"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("pass ") && lines[2].contains("100 100.0% [96.3%, 100.0%]"),
            "{t}"
        );
        assert!(
            lines[3].starts_with("orphan ") && lines[3].contains("0 0.0% [0.0%, 3.7%]"),
            "{t}"
        );
        assert!(!t.contains("hang"), "{t}");
        assert!(t.contains("1.50 ms"), "{t}");
    }

    #[test]
    fn a_failing_strategy_gets_one_sentence_per_verdict() {
        let r = rates(&[(Verdict::Orphan, 1)], 1);
        let reasons = BTreeMap::from([(
            "orphan".to_string(),
            BTreeMap::from([(
                "alive after the teardown (teardown-KILL): nodes 0.1 0.1.0".to_string(),
                1,
            )]),
        )]);
        let s = sentences("legacy", 1, &r, &reasons, &BTreeMap::new());
        assert_eq!(
            s,
            vec!["legacy: in 1 of 1 trial a process outlived the teardown (orphan): nodes 0.1 0.1.0."]
        );
    }

    #[test]
    fn about_lines_and_bounds() {
        assert_eq!(about_lines("One.  Two three. Four", 2), "  One.\n");
        let long = about_lines(&"word ".repeat(100), 0);
        assert_eq!(long.lines().count(), 3, "{long}");
        assert!(long.ends_with("...\n"), "{long}");
    }
}
