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

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

mod charts;
mod style;

use super::markdown::md;
use super::{file_stem, list_some, Dataset, Group, ScenarioData};
use crate::error::LabError;
use charts::{draw_duration_cdf, draw_rates, draw_sweep, draw_verdict_time};

pub use style::{strategy_color, verdict_color};

/// Size of every chart in pixels: wide enough to read at the width a
/// markdown viewer shows an image.
pub const SIZE: (u32, u32) = (900, 500);

/// The index `lab plot` writes beside the charts.
pub const INDEX: &str = "charts.md";

/// DejaVu Sans (see `lab/assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

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
/// needed; refused unless it is the caller's: [`crate::record::trust`]), then the index [`INDEX`]; returns the files written, charts
/// first.
///
/// # Errors
/// [`LabError::Lab`] naming the file that could not be written or drawn.
pub fn plot(ds: &Dataset, out: &Path, format: ChartFormat) -> Result<Vec<PathBuf>, LabError> {
    register_font()?;
    // A directory of the caller's (no other user can plant a file or a
    // symlink in it, none of another user's led to it): the charts are
    // drawn into it by path, the index written whole under its handle.
    let own = crate::record::trust::OwnDir::open(out, crate::record::trust::Missing::Create)?;
    let mut written = Vec::new();
    for sc in ds.scenarios() {
        for chart in charts_of(&sc, format) {
            let path = out.join(&chart.file);
            draw_file(&chart, &sc, &path, format)?;
            written.push(path);
        }
    }
    let index = out.join(INDEX);
    own.replace(INDEX, index_markdown(ds, format).as_bytes())
        .map_err(|e| LabError::io(format!("cannot write {}", index.display()), e))?;
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
        let _ = writeln!(s, "\n## {}\n", md(&sc.name));
        for chart in charts_of(&sc, format) {
            let _ = writeln!(s, "![{}]({})\n", md(&chart.alt), chart.file);
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
