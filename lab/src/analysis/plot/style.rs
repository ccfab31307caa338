//! The look shared by every chart: colours of strategies and verdicts,
//! text sizes, the frame (title, subtitle, legend), labels, whiskers and
//! axis ticks.

use std::error::Error;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, Group, FAMILY};
use crate::analysis::list_some;
use crate::verdict::Verdict;

/// Tableau 10 without blue and red, which `canonical` and `legacy` keep.
pub(super) const OTHERS: [RGBColor; 8] = [
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One legend entry per strategy group: `canonical (1000 trials)`, in the
/// strategy's colour, drawn as `mark`.
pub(super) fn strategy_legend(groups: &[Group], mark: Mark) -> Vec<LegendItem> {
    groups
        .iter()
        .enumerate()
        .map(|(j, g)| LegendItem {
            label: format!(
                "{} ({})",
                g.strategy,
                crate::text::plural(g.trials, "trial")
            ),
            color: strategy_color(j, &g.strategy),
            mark,
        })
        .collect()
}

/// The colour of the strategy `name`, the `index`-th of its scenario: blue
/// for `canonical`, red for `legacy`, the others in turn.
pub fn strategy_color(index: usize, name: &str) -> RGBColor {
    match name {
        "canonical" => RGBColor(31, 119, 180),
        "legacy" => RGBColor(214, 39, 40),
        _ => OTHERS[index % OTHERS.len()],
    }
}

/// The colour of a verdict: pass green, orphan orange, hang red, panic
/// purple, leak brown, fail blue, early-death pink, innocent-kill olive,
/// error grey.
pub fn verdict_color(v: Verdict) -> RGBColor {
    match v {
        Verdict::Pass => RGBColor(44, 160, 44),
        Verdict::Orphan => RGBColor(255, 127, 14),
        Verdict::Hang => RGBColor(214, 39, 40),
        Verdict::Panic => RGBColor(148, 103, 189),
        Verdict::Leak => RGBColor(140, 86, 75),
        Verdict::Fail => RGBColor(31, 119, 180),
        Verdict::EarlyDeath => RGBColor(227, 119, 194),
        Verdict::InnocentKill => RGBColor(188, 189, 34),
        Verdict::Error => RGBColor(127, 127, 127),
    }
}

/// How a legend entry is marked.
#[derive(Clone, Copy)]
pub(super) enum Mark {
    /// A filled square (bars).
    Square,
    /// A short thick line (lines).
    Line,
    /// A filled dot (points).
    Dot,
}

pub(super) struct LegendItem {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) mark: Mark,
}

pub(super) fn text_style(size: u32, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(color).pos(Pos::new(h, v))
}

/// Text sizes, in plotters' units (an SVG viewer shows them at 1/1.24 of
/// this as the CSS font size: 18 is 14.5 px).
pub(super) const TITLE: u32 = 28;
pub(super) const SUBTITLE: u32 = 17;
pub(super) const LABEL: u32 = 18;
pub(super) const DESC: u32 = 19;
pub(super) const NOTE: u32 = 16;

pub(super) const INK: RGBColor = RGBColor(30, 30, 30);
pub(super) const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Fill `root` white, draw the title, the subtitle and the legend (centred
/// rows, wrapped to the width) at the top; return the area below them.
pub(super) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    legend: &[LegendItem],
) -> Result<DrawingArea<DB, Shift>, Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let w = w as i32;
    root.draw(&Text::new(
        title.to_string(),
        (w / 2, 10),
        text_style(TITLE, &INK, HPos::Center, VPos::Top),
    ))?;
    root.draw(&Text::new(
        subtitle.to_string(),
        (w / 2, 46),
        text_style(SUBTITLE, &MUTED, HPos::Center, VPos::Top),
    ))?;
    let label_style = text_style(LABEL, &INK, HPos::Left, VPos::Center);
    // Lay the entries out in rows no wider than the chart.
    let mut rows: Vec<Vec<(&LegendItem, &String, i32)>> = vec![Vec::new()];
    let mut width = 0;
    let labels: Vec<String> = legend
        .iter()
        .map(|item| fit(root, &item.label, &label_style, (w - 100).max(100) as u32))
        .collect::<Result<_, _>>()?;
    for (item, label) in legend.iter().zip(&labels) {
        let (tw, _) = root.estimate_text_size(label, &label_style)?;
        let entry = 22 + tw as i32 + 24;
        if width + entry > w - 40 && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            width = 0;
        }
        width += entry;
        rows.last_mut().expect("a row").push((item, label, entry));
    }
    let top = 82;
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|(_, _, e)| e).sum::<i32>() - 24;
        let mut x = (w - total) / 2;
        let y = top + r as i32 * 26;
        for (item, label, entry) in row {
            let c = item.color;
            match item.mark {
                Mark::Square => {
                    root.draw(&Rectangle::new([(x, y - 7), (x + 14, y + 7)], c.filled()))?
                }
                Mark::Line => root.draw(&PathElement::new(
                    vec![(x, y), (x + 16, y)],
                    c.stroke_width(4),
                ))?,
                Mark::Dot => root.draw(&Circle::new((x + 7, y), 6, c.filled()))?,
            }
            root.draw(&Text::new(
                (*label).clone(),
                (x + 22, y),
                label_style.clone(),
            ))?;
            x += entry;
        }
    }
    let legend_rows = if legend.is_empty() {
        0
    } else {
        rows.len() as i32
    };
    let header = top - 8 + legend_rows * 26;
    Ok(root.split_vertically(header).1)
}

/// The widest a strategy's name may be beside a chart (pixels).
pub(super) const MAX_NAME_WIDTH: u32 = 300;

/// `text`, cut short with `…` where it is wider than `max` pixels in
/// `style`.
pub(super) fn fit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle<'_>,
    max: u32,
) -> Result<String, Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    if root.estimate_text_size(text, style)?.0 <= max {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let cut: String = chars[..keep].iter().chain(['…'].iter()).collect();
        if root.estimate_text_size(&cut, style)?.0 <= max {
            return Ok(cut);
        }
    }
    Ok("…".into())
}

/// `run ID` or `runs A, B, +N more`, for a subtitle.
pub(super) fn runs_line(runs: &[String]) -> String {
    if runs.len() == 1 {
        format!("run {}", runs[0])
    } else {
        format!("runs {}", list_some(runs, 2))
    }
}

/// Labels under (or beside) a chart's categories, drawn on the root area.
pub(super) fn draw_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[(String, (i32, i32))],
    style: &TextStyle<'_>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for (text, at) in labels {
        root.draw(&Text::new(text.clone(), *at, style.clone()))?;
    }
    Ok(())
}

/// An interval bar at `x` from `low` to `high`, with caps `cap` wide on
/// each side (in x units).
pub(super) fn whisker<DB: DrawingBackend>(
    cc: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x: f64,
    low: f64,
    high: f64,
    cap: f64,
    color: RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = color.stroke_width(2);
    cc.draw_series([
        PathElement::new(vec![(x, low), (x, high)], style),
        PathElement::new(vec![(x - cap, low), (x + cap, low)], style),
        PathElement::new(vec![(x - cap, high), (x + cap, high)], style),
    ])?;
    Ok(())
}

/// A number for an axis label: no trailing zeros, at most 3 decimals.
pub(super) fn tick(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let s = if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Whole decades around `[min, max]` (ms), at least one decade wide; for
/// a log axis whose labels are the powers of ten.
pub(super) fn decades(min: f64, max: f64) -> (f64, f64) {
    let min = min.max(0.001);
    let max = max.max(min);
    let lo = 10f64.powf(min.log10().floor());
    let mut hi = 10f64.powf(max.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}
