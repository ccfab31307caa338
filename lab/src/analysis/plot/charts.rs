//! The four charts of a scenario: verdict rates, rate against a swept
//! parameter, time to verdict, and the distribution of trial durations.

use std::collections::HashSet;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::*;
use super::{Chart, DrawResult, FAMILY};
use crate::analysis::{sweep_unit, Group, ScenarioData, SweepUnit, SweepValue};
use crate::verdict::Verdict;

pub(super) fn draw_rates<DB: DrawingBackend>(
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

/// The smallest and largest of `xs` and the padding to leave on each side
/// of them (`0..1` when there is none).
fn padded_range(xs: &[f64]) -> (f64, f64, f64) {
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
    (min, max, pad)
}

/// The legend of a sweep chart: a line per strategy that has trials, with
/// the verdicts other than `pass` it gave.
fn sweep_legend<S: AsRef<str>>(strategies: &[S], groups: &[Group]) -> Vec<LegendItem> {
    strategies
        .iter()
        .map(AsRef::as_ref)
        .enumerate()
        .filter(|(_, s)| groups.iter().any(|g| g.strategy == *s))
        .map(|(j, s)| {
            let failing: Vec<&str> = Verdict::ALL
                .into_iter()
                .filter(|&v| {
                    v != Verdict::Pass && groups.iter().any(|g| g.strategy == s && g.count(v) > 0)
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
        .collect()
}

pub(super) fn draw_sweep<DB: DrawingBackend>(
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
    let (min, max, pad) = padded_range(&xs);
    let strategies = sc.strategies();
    let legend = sweep_legend(&strategies, &groups);
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

pub(super) fn draw_verdict_time<DB: DrawingBackend>(
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

pub(super) fn draw_duration_cdf<DB: DrawingBackend>(
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
