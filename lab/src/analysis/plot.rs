//! `lab plot`: charts of result CSVs, drawn with plotters. SVG by default (a
//! markdown viewer shows it as is), PNG on request; text is measured (SVG)
//! and drawn (PNG) with DejaVu Sans embedded in the binary, so no system
//! font library is needed to build or run.
//!
//! Per scenario, one file per chart ([`charts_of`] names them):
//! - `rates-SCENARIO`: each verdict's rate per strategy, with its 95% Wilson
//!   interval;
//! - `sweep-SCENARIO-KEY`: the rate of trials that did not pass against the
//!   swept parameter `KEY`, one line per strategy (only when the scenario
//!   was swept);
//! - `verdict-time-SCENARIO`: every trial's time to verdict (log scale),
//!   one row per strategy, coloured by verdict, with the median marked;
//! - `duration-cdf-SCENARIO`: the distribution of trial durations (CDF, log
//!   scale), one line per strategy.
//!
//! and `charts.md`, an index that shows them all.

use std::collections::HashSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    file_stem, list_some, sweep_unit, Dataset, Group, ScenarioData, SweepUnit, SweepValue,
};
use crate::error::LabError;
use crate::verdict::Verdict;

/// Size of every chart in pixels: wide enough to read at the width a
/// markdown viewer shows an image.
pub const SIZE: (u32, u32) = (900, 500);

/// The index `lab plot` writes beside the charts.
pub const INDEX: &str = "charts.md";

/// DejaVu Sans (see `lab/assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The font family every text of a chart uses.
const FAMILY: &str = "sans-serif";

/// The file format of the charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartFormat {
    /// SVG (text drawn by the viewer).
    Svg,
    /// PNG (text drawn with the embedded font).
    Png,
}

impl ChartFormat {
    /// The file extension (`svg`, `png`).
    pub fn ext(self) -> &'static str {
        match self {
            ChartFormat::Svg => "svg",
            ChartFormat::Png => "png",
        }
    }
}

/// What a chart shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartKind {
    /// Verdict rates per strategy with interval bars.
    Rates,
    /// Rate of trials not passing against the swept parameter (its key).
    Sweep(String),
    /// Time to verdict per strategy.
    VerdictTime,
    /// Distribution of trial durations.
    DurationCdf,
}

/// One chart of one scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    /// What it shows.
    pub kind: ChartKind,
    /// Scenario name.
    pub scenario: String,
    /// File name (no directory): `rates-nested.svg`.
    pub file: String,
    /// Its title, naming the scenario.
    pub title: String,
    /// A one-line description for the index and for markdown alt text.
    pub alt: String,
}

/// The charts of one scenario, in index order: rates, one sweep chart per
/// swept parameter, time to verdict, duration CDF.
pub fn charts_of(sc: &ScenarioData<'_>, format: ChartFormat) -> Vec<Chart> {
    let stem = file_stem(&sc.name);
    let ext = format.ext();
    let name = &sc.name;
    let mut charts = vec![Chart {
        kind: ChartKind::Rates,
        scenario: name.clone(),
        file: format!("rates-{stem}.{ext}"),
        title: format!("{name}: verdict rates by strategy"),
        alt: format!("{name}: each verdict's rate per strategy with its 95% Wilson interval"),
    }];
    for key in sc.sweep_keys() {
        charts.push(Chart {
            kind: ChartKind::Sweep(key.clone()),
            scenario: name.clone(),
            file: format!("sweep-{stem}-{}.{ext}", file_stem(&key)),
            title: format!("{name}: trials not passing against {key}"),
            alt: format!(
                "{name}: rate of trials that did not pass against {key}, per strategy, with 95% Wilson intervals"
            ),
        });
    }
    charts.push(Chart {
        kind: ChartKind::VerdictTime,
        scenario: name.clone(),
        file: format!("verdict-time-{stem}.{ext}"),
        title: format!("{name}: time to verdict by strategy"),
        alt: format!(
            "{name}: every trial's time to verdict per strategy (log scale), coloured by verdict"
        ),
    });
    charts.push(Chart {
        kind: ChartKind::DurationCdf,
        scenario: name.clone(),
        file: format!("duration-cdf-{stem}.{ext}"),
        title: format!("{name}: distribution of trial durations"),
        alt: format!(
            "{name}: share of trials that ended within a duration (CDF, log scale), per strategy"
        ),
    });
    charts
}

/// Draw every chart of every scenario of `ds` into `out` (created if
/// needed), then the index [`INDEX`]; returns the files written, charts
/// first.
///
/// # Errors
/// [`LabError::Lab`] naming the file that could not be written or drawn.
pub fn plot(ds: &Dataset, out: &Path, format: ChartFormat) -> Result<Vec<PathBuf>, LabError> {
    register_font()?;
    std::fs::create_dir_all(out)
        .map_err(|e| LabError::Lab(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    for sc in ds.scenarios() {
        for chart in charts_of(&sc, format) {
            let path = out.join(&chart.file);
            draw_file(&chart, &sc, &path, format)?;
            written.push(path);
        }
    }
    let index = out.join(INDEX);
    std::fs::write(&index, index_markdown(ds, format))
        .map_err(|e| LabError::Lab(format!("cannot write {}: {e}", index.display())))?;
    written.push(index);
    Ok(written)
}

/// The index: what was read, then per scenario every chart as a markdown
/// image (paths relative to the index).
pub fn index_markdown(ds: &Dataset, format: ChartFormat) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("# Charts\n\n");
    let runs: Vec<String> = ds.distinct(|r| &r.run_id);
    let read: Vec<String> = ds
        .sources
        .iter()
        .map(|src| format!("`{}` ({} rows)", src.path.display(), src.rows))
        .collect();
    let _ = writeln!(
        s,
        "Drawn by `lab plot` from {} trials of run{} {}{}.",
        ds.trials.len(),
        if runs.len() == 1 { "" } else { "s" },
        list_some(
            &runs.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>(),
            8
        ),
        if read.is_empty() {
            String::new()
        } else {
            format!(", read from {}", read.join(", "))
        }
    );
    for sc in ds.scenarios() {
        let _ = writeln!(s, "\n## {}\n", super::report::md(&sc.name));
        for chart in charts_of(&sc, format) {
            let _ = writeln!(s, "![{}]({})\n", super::report::md(&chart.alt), chart.file);
        }
    }
    s
}

/// Register the embedded font as [`FAMILY`], once.
///
/// # Errors
/// [`LabError::Lab`] if the embedded font does not parse (a broken build).
fn register_font() -> Result<(), LabError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(LabError::Lab(
            "the embedded chart font does not parse".into(),
        ))
    }
}

type DrawResult = Result<(), Box<dyn Error>>;

fn draw_file(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    path: &Path,
    format: ChartFormat,
) -> Result<(), LabError> {
    let result = match format {
        ChartFormat::Svg => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(chart, sc, &root).and_then(|()| Ok(root.present()?))
        }
        ChartFormat::Png => {
            let backend = super::png::PngBackend::new(path, SIZE, FONT)
                .map_err(|e| LabError::Lab(format!("the embedded chart font: {e}")))?;
            let root = backend.into_drawing_area();
            draw(chart, sc, &root).and_then(|()| Ok(root.present()?))
        }
    };
    result.map_err(|e| LabError::Lab(format!("cannot draw {}: {e}", path.display())))
}

fn draw<DB: DrawingBackend>(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    match &chart.kind {
        ChartKind::Rates => draw_rates(chart, sc, root),
        ChartKind::Sweep(key) => draw_sweep(chart, sc, key, root),
        ChartKind::VerdictTime => draw_verdict_time(chart, sc, root),
        ChartKind::DurationCdf => draw_duration_cdf(chart, sc, root),
    }
}

/// Tableau 10 without blue and red, which `canonical` and `legacy` keep.
const OTHERS: [RGBColor; 8] = [
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
fn strategy_legend(groups: &[Group], mark: Mark) -> Vec<LegendItem> {
    groups
        .iter()
        .enumerate()
        .map(|(j, g)| LegendItem {
            label: format!("{} ({} trials)", g.strategy, g.trials),
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
/// purple, leak brown, early-death pink, innocent-kill olive, error grey.
pub fn verdict_color(v: Verdict) -> RGBColor {
    match v {
        Verdict::Pass => RGBColor(44, 160, 44),
        Verdict::Orphan => RGBColor(255, 127, 14),
        Verdict::Hang => RGBColor(214, 39, 40),
        Verdict::Panic => RGBColor(148, 103, 189),
        Verdict::Leak => RGBColor(140, 86, 75),
        Verdict::EarlyDeath => RGBColor(227, 119, 194),
        Verdict::InnocentKill => RGBColor(188, 189, 34),
        Verdict::Error => RGBColor(127, 127, 127),
    }
}

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    /// A filled square (bars).
    Square,
    /// A short thick line (lines).
    Line,
    /// A filled dot (points).
    Dot,
}

struct LegendItem {
    label: String,
    color: RGBColor,
    mark: Mark,
}

fn text_style(size: u32, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(color).pos(Pos::new(h, v))
}

/// Text sizes, in plotters' units (an SVG viewer shows them at 1/1.24 of
/// this as the CSS font size: 18 is 14.5 px).
const TITLE: u32 = 28;
const SUBTITLE: u32 = 17;
const LABEL: u32 = 18;
const DESC: u32 = 19;
const NOTE: u32 = 16;

const INK: RGBColor = RGBColor(30, 30, 30);
const MUTED: RGBColor = RGBColor(90, 90, 90);

/// Fill `root` white, draw the title, the subtitle and the legend (centred
/// rows, wrapped to the width) at the top; return the area below them.
fn frame<DB: DrawingBackend>(
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
const MAX_NAME_WIDTH: u32 = 300;

/// `text`, cut short with `…` where it is wider than `max` pixels in
/// `style`.
fn fit<DB: DrawingBackend>(
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
fn runs_line(runs: &[String]) -> String {
    if runs.len() == 1 {
        format!("run {}", runs[0])
    } else {
        format!("runs {}", list_some(runs, 2))
    }
}

/// Labels under (or beside) a chart's categories, drawn on the root area.
fn draw_labels<DB: DrawingBackend>(
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
fn whisker<DB: DrawingBackend>(
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
fn tick(x: f64) -> String {
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
fn decades(min: f64, max: f64) -> (f64, f64) {
    let min = min.max(0.001);
    let max = max.max(min);
    let lo = 10f64.powf(min.log10().floor());
    let mut hi = 10f64.powf(max.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}

fn draw_rates<DB: DrawingBackend>(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let groups = sc.by_strategy();
    let verdicts = sc.verdicts();
    let legend = strategy_legend(&groups, Mark::Square);
    let subtitle = format!(
        "{} · bars: rate; whiskers: 95% Wilson interval{}",
        runs_line(&sc.distinct(|r| &r.run_id)),
        if sc.sweep_keys().is_empty() {
            ""
        } else {
            " · all swept values together"
        }
    );
    let body = frame(root, &chart.title, &subtitle, &legend)?;
    let n = verdicts.len() as f64;
    let mut cc = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(28)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, 0f64..105f64)?;
    cc.configure_mesh()
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .y_max_light_lines(1)
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(12)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("trials with the verdict (%)")
        .x_desc("verdict")
        .label_style((FAMILY, LABEL))
        .axis_desc_style((FAMILY, DESC))
        .draw()?;
    let slot = 0.8 / groups.len().max(1) as f64;
    for (j, g) in groups.iter().enumerate() {
        let color = strategy_color(j, &g.strategy);
        let bars: Vec<(f64, f64, f64, f64)> = verdicts
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let x0 = i as f64 + 0.1 + j as f64 * slot;
                let r = g.rate(v);
                (x0, r.rate * 100.0, r.low * 100.0, r.high * 100.0)
            })
            .collect();
        cc.draw_series(bars.iter().map(|&(x0, rate, _, _)| {
            Rectangle::new(
                [(x0 + slot * 0.05, 0.0), (x0 + slot * 0.95, rate)],
                color.filled(),
            )
        }))?;
        for &(x0, _, low, high) in &bars {
            whisker(&mut cc, x0 + slot / 2.0, low, high, slot * 0.18, INK)?;
        }
    }
    let labels: Vec<(String, (i32, i32))> = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = cc.backend_coord(&(i as f64 + 0.5, 0.0));
            (v.name().to_string(), (x, y + 8))
        })
        .collect();
    draw_labels(
        root,
        &labels,
        &text_style(LABEL, &INK, HPos::Center, VPos::Top),
    )
}

fn draw_sweep<DB: DrawingBackend>(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    key: &str,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let groups = sc.by_sweep(key);
    let mut values: Vec<SweepValue> = Vec::new();
    for g in &groups {
        if let Some(v) = &g.sweep {
            if !values.iter().any(|o| o.text == v.text) {
                values.push(v.clone());
            }
        }
    }
    values.sort_by(SweepValue::order);
    let unit = sweep_unit(&values);
    // x of a value: its number, or its place when some value has none.
    let x_of = |v: &SweepValue| -> f64 {
        match unit {
            Some(_) => v.value().unwrap_or(0.0),
            None => values.iter().position(|o| o.text == v.text).unwrap_or(0) as f64,
        }
    };
    let xs: Vec<f64> = values.iter().map(&x_of).collect();
    let (min, max) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let (min, max) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        (min, max)
    };
    let pad = if max > min {
        (max - min) * 0.06
    } else {
        (min.abs() * 0.1).max(1.0)
    };
    let strategies = sc.strategies();
    let legend: Vec<LegendItem> = strategies
        .iter()
        .enumerate()
        .filter(|(_, s)| groups.iter().any(|g| &g.strategy == *s))
        .map(|(j, s)| {
            let failing: Vec<&str> = Verdict::ALL
                .into_iter()
                .filter(|&v| {
                    v != Verdict::Pass && groups.iter().any(|g| &g.strategy == s && g.count(v) > 0)
                })
                .map(Verdict::name)
                .collect();
            LegendItem {
                label: if failing.is_empty() {
                    format!("{s}: every trial passed")
                } else {
                    format!("{s}: {}", failing.join(", "))
                },
                color: strategy_color(j, s),
                mark: Mark::Line,
            }
        })
        .collect();
    let subtitle = format!(
        "{} · one point per value of {key}; whiskers: 95% Wilson interval",
        runs_line(&sc.distinct(|r| &r.run_id))
    );
    let body = frame(root, &chart.title, &subtitle, &legend)?;
    let x_desc = match unit {
        Some(SweepUnit::Millis) => format!("{key} (ms)"),
        _ => key.to_string(),
    };
    let mut cc = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(28)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size(70)
        .build_cartesian_2d((min - pad)..(max + pad), 0f64..105f64)?;
    cc.configure_mesh()
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .y_max_light_lines(1)
        .x_max_light_lines(1)
        .x_labels(if unit.is_some() { 10 } else { 0 })
        .x_label_formatter(&|x| tick(*x))
        .y_labels(12)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("trials not passing (%)")
        .x_desc(x_desc)
        .label_style((FAMILY, LABEL))
        .axis_desc_style((FAMILY, DESC))
        .draw()?;
    // Strategies side by side around each value, so that their interval
    // bars do not hide each other.
    let dodge = (max - min + 2.0 * pad) * 0.01;
    let middle = (strategies.len() as f64 - 1.0) / 2.0;
    for (j, s) in strategies.iter().enumerate() {
        let color = strategy_color(j, s);
        let shift = (j as f64 - middle) * dodge;
        let points: Vec<(f64, f64, f64, f64)> = groups
            .iter()
            .filter(|g| &g.strategy == s)
            .filter_map(|g| {
                let r = g.not_pass();
                g.sweep.as_ref().map(|v| {
                    (
                        x_of(v) + shift,
                        r.rate * 100.0,
                        r.low * 100.0,
                        r.high * 100.0,
                    )
                })
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        cc.draw_series(LineSeries::new(
            points.iter().map(|&(x, y, _, _)| (x, y)),
            color.stroke_width(2),
        ))?;
        let cap = (max - min + 2.0 * pad) * 0.008;
        for &(x, _, low, high) in &points {
            whisker(&mut cc, x, low, high, cap, color)?;
        }
        cc.draw_series(
            points
                .iter()
                .map(|&(x, y, _, _)| Circle::new((x, y), 5, color.filled())),
        )?;
    }
    if unit.is_none() {
        let labels: Vec<(String, (i32, i32))> = values
            .iter()
            .map(|v| {
                let (x, y) = cc.backend_coord(&(x_of(v), 0.0));
                (v.text.clone(), (x, y + 8))
            })
            .collect();
        draw_labels(
            root,
            &labels,
            &text_style(LABEL, &INK, HPos::Center, VPos::Top),
        )?;
    }
    Ok(())
}

fn draw_verdict_time<DB: DrawingBackend>(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let groups = sc.by_strategy();
    let seen: Vec<Verdict> = Verdict::ALL
        .into_iter()
        .filter(|&v| groups.iter().any(|g| g.count(v) > 0))
        .collect();
    let mut legend: Vec<LegendItem> = seen
        .iter()
        .map(|&v| LegendItem {
            label: v.name().to_string(),
            color: verdict_color(v),
            mark: Mark::Dot,
        })
        .collect();
    legend.push(LegendItem {
        label: "median".into(),
        color: INK,
        mark: Mark::Line,
    });
    let subtitle = format!(
        "{} · one dot per trial, coloured by verdict; a hang costs the deadline",
        runs_line(&sc.distinct(|r| &r.run_id))
    );
    let body = frame(root, &chart.title, &subtitle, &legend)?;
    let all_ms = groups
        .iter()
        .flat_map(|g| g.verdict_us.iter())
        .map(|&us| us as f64 / 1000.0);
    let (min, max) = all_ms.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (lo, hi) = decades(if min.is_finite() { min } else { 1.0 }, max);
    let rows = groups.len().max(1) as f64;
    let name_style = text_style(LABEL, &INK, HPos::Right, VPos::Center);
    let mut label_width = 0;
    let mut shown = Vec::new();
    for g in &groups {
        let name = fit(root, &g.strategy, &name_style, MAX_NAME_WIDTH)?;
        label_width = label_width.max(root.estimate_text_size(&name, &name_style)?.0);
        shown.push(name);
    }
    let mut cc = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(28)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size((label_width + 24).max(60))
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..rows)?;
    cc.configure_mesh()
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .y_max_light_lines(1)
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(12)
        .x_label_formatter(&|x| tick(*x))
        .x_desc("time to verdict (ms, log scale)")
        .y_desc("strategy")
        .label_style((FAMILY, LABEL))
        .axis_desc_style((FAMILY, DESC))
        .draw()?;
    let mut names = Vec::new();
    for (j, g) in groups.iter().enumerate() {
        let centre = rows - j as f64 - 0.5;
        if j > 0 {
            cc.draw_series(std::iter::once(PathElement::new(
                vec![(lo, centre + 0.5), (hi, centre + 0.5)],
                RGBColor(200, 200, 200).stroke_width(1),
            )))?;
        }
        // The median first, so that the dots stay visible over it.
        let median = g.verdict_ms(50.0).max(lo);
        cc.draw_series(std::iter::once(PathElement::new(
            vec![(median, centre - 0.4), (median, centre + 0.4)],
            INK.stroke_width(2),
        )))?;
        // One dot per trial, spread over the row; dots that would land on
        // the same pixel in the same colour are drawn once.
        let mut drawn = HashSet::new();
        let mut dots = Vec::new();
        for (k, &(v, us, _)) in g.points.iter().enumerate() {
            let x = (us as f64 / 1000.0).max(lo);
            let spread = ((k as f64 * 0.618_033_988_75).fract() - 0.5) * 0.64;
            let y = centre + spread;
            if drawn.insert((cc.backend_coord(&(x, y)), v)) {
                dots.push(((x, y), v));
            }
        }
        cc.draw_series(
            dots.iter()
                .map(|&(at, v)| Circle::new(at, 3, verdict_color(v).mix(0.6).filled())),
        )?;
        cc.draw_series(std::iter::once(Text::new(
            format!("median {} ms", tick(g.verdict_ms(50.0))),
            (median, centre + 0.42),
            text_style(NOTE, &INK, HPos::Left, VPos::Bottom),
        )))?;
        let (x, y) = cc.backend_coord(&(lo, centre));
        names.push((shown[j].clone(), (x - 10, y)));
    }
    draw_labels(root, &names, &name_style)
}

fn draw_duration_cdf<DB: DrawingBackend>(
    chart: &Chart,
    sc: &ScenarioData<'_>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let groups = sc.by_strategy();
    let legend = strategy_legend(&groups, Mark::Line);
    let subtitle = format!(
        "{} · share of trials that ended within the time, cleanup included",
        runs_line(&sc.distinct(|r| &r.run_id))
    );
    let body = frame(root, &chart.title, &subtitle, &legend)?;
    let min = groups
        .iter()
        .filter_map(|g| g.duration_us.first())
        .min()
        .map_or(1.0, |&us| us as f64 / 1000.0);
    let max = groups
        .iter()
        .filter_map(|g| g.duration_us.last())
        .max()
        .map_or(1.0, |&us| us as f64 / 1000.0);
    let (lo, hi) = decades(min, max);
    let mut cc = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(28)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size(70)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..102f64)?;
    cc.configure_mesh()
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .y_max_light_lines(1)
        .x_labels(12)
        .x_label_formatter(&|x| tick(*x))
        .y_labels(12)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("trial duration, cleanup included (ms, log scale)")
        .y_desc("trials ended within (%)")
        .label_style((FAMILY, LABEL))
        .axis_desc_style((FAMILY, DESC))
        .draw()?;
    for (j, g) in groups.iter().enumerate() {
        let n = g.duration_us.len() as f64;
        // A step function: at each distinct duration the share jumps by the
        // trials that took exactly that long.
        let mut steps = vec![(lo, 0.0)];
        let mut below = 0.0;
        let mut i = 0;
        while i < g.duration_us.len() {
            let us = g.duration_us[i];
            let same = g.duration_us[i..].iter().take_while(|&&d| d == us).count();
            let x = (us as f64 / 1000.0).max(lo);
            steps.push((x, below / n * 100.0));
            below += same as f64;
            steps.push((x, below / n * 100.0));
            i += same;
        }
        steps.push((hi, below / n.max(1.0) * 100.0));
        cc.draw_series(LineSeries::new(
            steps,
            strategy_color(j, &g.strategy).stroke_width(2),
        ))?;
    }
    Ok(())
}
