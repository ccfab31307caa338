//! Tests of the analysis: loading and grouping, sweep order, the markdown
//! report, and the charts, from fixture CSVs written through
//! [`CsvSink`] and [`TrialRow::new`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::plot::{self, strategy_color, ChartFormat};
use super::report::{self, ReportOptions};
use super::*;
use crate::record::csv::CsvSink;
use crate::record::{RunContext, TrialSource};
use crate::strategy::Strategy;
use crate::verdict::Outcome;

/// A fresh directory of its own (tests run in parallel), removed when
/// dropped, even by a failing test.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("lab-analysis-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    pub(crate) fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One trial of the fixture: `(strategy, sweep, verdict, time to verdict
/// µs, duration µs)`.
type Spec<'a> = (&'a str, Option<(&'a str, &'a str)>, Verdict, u64, u64);

/// Write the trials `specs` of `scenario` as `dir/trials.csv` of run
/// `run_id`, with trial indices counted per strategy and swept value.
pub(crate) fn write_fixture(dir: &Path, run_id: &str, scenario: &str, specs: &[Spec<'_>]) {
    let own = crate::record::trust::OwnDir::open(dir, crate::record::trust::Missing::Create);
    let mut sink = CsvSink::create(&own.unwrap()).unwrap();
    let ctx = RunContext {
        run_id: run_id.into(),
        lab_version: "0.1.0".into(),
        kernel: "6.18.0-test".into(),
    };
    let mut seen: Vec<(String, String)> = Vec::new();
    for &(strategy, sweep, verdict, ttv, duration) in specs {
        let key = (strategy.to_string(), format!("{sweep:?}"));
        let trial = seen.iter().filter(|k| **k == key).count() as u64;
        seen.push(key);
        let strategy = Strategy::parse(strategy).unwrap();
        let mut o = Outcome::error(format!("pid {} stuck", 1000 + trial), ttv);
        o.verdict = verdict;
        o.duration_us = duration;
        o.cgroup = true;
        if verdict == Verdict::Pass {
            o.reason = None;
        }
        if verdict == Verdict::Panic {
            o.panic_site = Some("lab/src/node/audit.rs:91".into());
            o.signatures = vec!["duplicated-stdio".parse().unwrap()];
        }
        let src = TrialSource {
            scenario,
            scenario_hash: "5c3a",
            plan_hash: "9f1e",
            seed: 1,
            trial,
            sweep,
        };
        let row = TrialRow::new(&ctx, &src, &strategy, &o, "", "lab run x");
        sink.write(&row).unwrap();
    }
}

/// `nested`: canonical 10 passes (time to verdict 1..10 ms, duration +0.5
/// ms); legacy 7 orphans at 50 ms and 3 hangs at 400 ms.
fn nested_specs() -> Vec<Spec<'static>> {
    let mut v: Vec<Spec<'static>> = (1..=10)
        .map(|i| ("canonical", None, Verdict::Pass, i * 1000, i * 1000 + 500))
        .collect();
    v.extend((0..7).map(|_| ("legacy", None, Verdict::Orphan, 50_000, 60_000)));
    v.extend((0..3).map(|_| ("legacy", None, Verdict::Hang, 400_000, 410_000)));
    v
}

/// `sweepy`, swept over `kill_delay` (written out of order): under legacy,
/// value `k` of 5ms, 10ms, 100ms, 1s orphans `k` of 4 trials; canonical
/// passes, but panics once at 1s.
fn sweep_specs() -> Vec<Spec<'static>> {
    let mut v = Vec::new();
    for (k, value) in [(2, "10ms"), (4, "1s"), (1, "5ms"), (3, "100ms")] {
        let sweep = Some(("kill_delay", value));
        for t in 0..4 {
            let verdict = if t < k {
                Verdict::Orphan
            } else {
                Verdict::Pass
            };
            v.push(("legacy", sweep, verdict, 30_000, 35_000));
            let verdict = if value == "1s" && t == 0 {
                Verdict::Panic
            } else {
                Verdict::Pass
            };
            v.push(("canonical", sweep, verdict, 2_000, 3_000));
        }
    }
    v
}

/// The fixture: two runs in two DIRs; the report and charts read both.
fn fixture(tag: &str) -> (TempDir, Vec<PathBuf>) {
    let root = TempDir::new(tag);
    let a = root.join("run-a");
    let b = root.join("run-b");
    write_fixture(&a, "run-a", "nested", &nested_specs());
    write_fixture(&b, "run-b", "sweepy", &sweep_specs());
    (root, vec![a, b])
}

#[test]
fn sweep_values_order_by_number_and_durations_by_length() {
    let mut v: Vec<SweepValue> = ["10ms", "1s", "5ms", "100ms", "1.5s"]
        .iter()
        .map(|t| SweepValue::parse("kill_delay", t))
        .collect();
    v.sort_by(SweepValue::order);
    let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["5ms", "10ms", "100ms", "1s", "1.5s"]);
    let ms: Vec<f64> = v.iter().map(|s| s.value().unwrap()).collect();
    assert_eq!(ms, [5.0, 10.0, 100.0, 1000.0, 1500.0]);
    assert_eq!(sweep_unit(&v), Some(SweepUnit::Millis));
    let mut v: Vec<SweepValue> = ["16", "2", "abc", "0.5", "4x", "10"]
        .iter()
        .map(|t| SweepValue::parse("threads", t))
        .collect();
    v.sort_by(SweepValue::order);
    let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["0.5", "2", "4x", "10", "16", "abc"]);
    assert_eq!(sweep_unit(&v), None, "abc has no number");
    assert_eq!(sweep_unit(&v[..5]), Some(SweepUnit::Number));
    // A plain 0 among durations is a duration of 0.
    let v: Vec<SweepValue> = ["0", "5ms"]
        .iter()
        .map(|t| SweepValue::parse("kill_delay", t))
        .collect();
    assert_eq!(sweep_unit(&v), Some(SweepUnit::Millis));
    // A kill time from a birth orders by its delay.
    let mut v: Vec<SweepValue> = ["child+10ms", "child+1ms", "child+0ms", "child+2ms"]
        .iter()
        .map(|t| SweepValue::parse("kill.0.at", t))
        .collect();
    v.sort_by(SweepValue::order);
    let texts: Vec<&str> = v.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["child+0ms", "child+1ms", "child+2ms", "child+10ms"]);
    assert_eq!(sweep_unit(&v), Some(SweepUnit::Millis));
}

#[test]
fn groups_count_verdicts_times_and_axes() {
    let (_root, dirs) = fixture("groups");
    let ds = Dataset::load(&dirs).unwrap();
    assert_eq!(ds.trials.len(), 20 + 32);
    assert_eq!(ds.sources.len(), 2);
    assert_eq!(ds.sources[0].rows, 20);
    let scenarios = ds.scenarios();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nested", "sweepy"]);
    let groups = scenarios[0].by_strategy();
    let (canonical, legacy) = (&groups[0], &groups[1]);
    assert_eq!(
        (canonical.strategy.as_str(), canonical.trials),
        ("canonical", 10)
    );
    assert_eq!(canonical.count(Verdict::Pass), 10);
    assert_eq!(canonical.verdict_ms(50.0), 5.0);
    assert_eq!(canonical.verdict_ms(99.0), 10.0);
    assert_eq!(canonical.duration_ms(50.0), 5.5);
    assert!(canonical.differs_from_canonical().is_empty());
    assert_eq!(legacy.modal(), Verdict::Orphan);
    assert_eq!(legacy.verdict_ms(99.0), 400.0);
    assert_eq!(
        legacy.differs_from_canonical(),
        [
            "create=fork",
            "death=pdeathsig",
            "observe=proc",
            "guards=off"
        ]
    );
    // Reasons group with their PIDs written N.
    assert_eq!(legacy.reasons[&Verdict::Orphan].len(), 1);
    assert_eq!(legacy.reasons[&Verdict::Orphan]["pid N stuck"], 7);
    // The sweep: one group per strategy and value, values in numeric order.
    let sweep = scenarios[1].by_sweep("kill_delay");
    let legacy: Vec<(String, u64)> = sweep
        .iter()
        .filter(|g| g.strategy == "legacy")
        .map(|g| {
            (
                g.sweep.as_ref().unwrap().text.clone(),
                g.count(Verdict::Orphan),
            )
        })
        .collect();
    assert_eq!(
        legacy,
        [
            ("5ms".into(), 1),
            ("10ms".into(), 2),
            ("100ms".into(), 3),
            ("1s".into(), 4)
        ]
    );
    assert_eq!(scenarios[1].sweep_keys(), ["kill_delay"]);
    assert_eq!(
        scenarios[1].verdicts(),
        [
            Verdict::Pass,
            Verdict::Orphan,
            Verdict::Hang,
            Verdict::Panic
        ]
    );
}

#[test]
fn the_report_has_one_table_per_scenario_with_rates_and_times() {
    let (_root, dirs) = fixture("report");
    let ds = Dataset::load(&dirs).unwrap();
    let md = report::render(&ds, &ReportOptions::default());
    let lines: Vec<&str> = md.lines().collect();
    let has = |line: &str| {
        assert!(lines.contains(&line), "missing line\n{line}\nin\n{md}");
    };
    has("| runs | `run-a`, `run-b` |");
    has("| kernel | 6.18.0-test |");
    has("| lab version | 0.1.0 |");
    has("| trial mode | cgroup |");
    has("| trials | 52 |");
    assert!(md.contains(&format!(
        "`{}` (20 rows)",
        dirs[0].join("trials.csv").display()
    )));
    has("## nested");
    has("Run `run-a`; scenario `5c3a`; plan `9f1e` (seed 1).");
    has("| strategy | trials | pass | orphan | hang | panic | median time to verdict (ms) | p99 time to verdict (ms) | median duration (ms) | p99 duration (ms) |");
    has("| canonical | 10 | 10/10 100.0% [72.2%, 100.0%] | 0/10 (95% upper bound 27.8%) | 0/10 (95% upper bound 27.8%) | 0/10 (95% upper bound 27.8%) | 5.00 | 10.00 | 5.50 | 10.50 |");
    has("| legacy | 10 | 0/10 (95% upper bound 27.8%) | 7/10 70.0% [39.7%, 89.2%] | 3/10 30.0% [10.8%, 60.3%] | 0/10 (95% upper bound 27.8%) | 50.00 | 400.00 | 60.00 | 410.00 |");
    has("- **canonical** (the canonical axes, guards on): `pass` 10/10 100.0% [72.2%, 100.0%]; verdict in 5.00 ms (median), 10.00 ms (p99).");
    has("- **legacy** (differs from canonical on create=fork, death=pdeathsig, observe=proc, guards=off): `orphan` 7/10 70.0% [39.7%, 89.2%]; verdict in 50.00 ms (median), 400.00 ms (p99). Also `hang` 3/10 30.0% [10.8%, 60.3%]. Why `orphan` (in 7 of its 7 trials): `pid N stuck`. Why `hang` (in 3 of its 3 trials): `pid N stuck`.");
    // The swept scenario: a column for the parameter, values in order.
    has("## sweepy");
    has("| strategy | kill\\_delay | trials | pass | orphan | hang | panic | median time to verdict (ms) | p99 time to verdict (ms) | median duration (ms) | p99 duration (ms) |");
    let legacy: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("| legacy | ") && md.contains("## sweepy"))
        .copied()
        .collect();
    assert_eq!(legacy.len(), 1 + 4, "{legacy:?}");
    assert!(
        legacy[1].starts_with(
            "| legacy | 5ms | 4 | 3/4 75.0% [30.1%, 95.4%] | 1/4 25.0% [4.6%, 69.9%] |"
        ),
        "{}",
        legacy[1]
    );
    assert!(
        legacy[2].starts_with("| legacy | 10ms | 4 |"),
        "{}",
        legacy[2]
    );
    assert!(
        legacy[3].starts_with("| legacy | 100ms | 4 |"),
        "{}",
        legacy[3]
    );
    assert!(
        legacy[4].starts_with(
            "| legacy | 1s | 4 | 0/4 (95% upper bound 49.0%) | 4/4 100.0% [51.0%, 100.0%] |"
        ),
        "{}",
        legacy[4]
    );
    assert!(
        md.contains("Panic site: `lab/src/node/audit.rs:91` (1)."),
        "{md}"
    );
    // No charts unless asked; with --charts, each scenario's SVGs linked.
    assert!(!md.contains("!["));
    let md = report::render(
        &ds,
        &ReportOptions {
            charts: Some("charts/".into()),
        },
    );
    assert!(md.contains("(charts/rates-nested.svg)"), "{md}");
    assert!(md.contains("(charts/sweep-sweepy-kill_delay.svg)"), "{md}");
    assert!(!md.contains("sweep-nested"), "nested was not swept");
}

#[test]
fn bad_input_is_refused_naming_the_file() {
    let root = TempDir::new("bad");
    let missing = root.join("missing");
    let msg = |r: Result<Dataset, LabError>| match r {
        Err(LabError::Input(m)) => m,
        Err(e) => panic!("not an input error: {e}"),
        Ok(_) => panic!("accepted"),
    };
    let m = msg(Dataset::load(std::slice::from_ref(&missing)));
    assert!(m.starts_with(&missing.display().to_string()), "{m}");
    // A DIR with no trials.csv in it or below it.
    std::fs::create_dir_all(root.join("empty/sub")).unwrap();
    let m = msg(Dataset::load(&[root.join("empty")]));
    assert!(m.contains("no trials.csv in it or below it"), "{m}");
    // Another schema.
    let old = root.join("old");
    write_fixture(&old, "run-old", "nested", &nested_specs()[..2]);
    let csv = old.join("trials.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows: Vec<String> = rows
        .lines()
        .map(|l| l.replacen(&format!("{},", crate::record::row::SCHEMA), "3,", 1))
        .collect();
    std::fs::write(&csv, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let m = msg(Dataset::load(std::slice::from_ref(&old)));
    assert!(
        m.starts_with(&csv.display().to_string())
            && m.contains("schema 3 (this lab reads schemas 4 to 6)"),
        "{m}"
    );
    // Not a trials CSV at all.
    let junk = root.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("trials.csv"), "a,b\n1,2\n").unwrap();
    let m = msg(Dataset::load(std::slice::from_ref(&junk)));
    assert!(
        m.contains("junk/trials.csv") && m.contains("no `schema` column"),
        "{m}"
    );
    // A row that does not parse.
    let broken = root.join("broken");
    write_fixture(&broken, "run-b", "nested", &nested_specs()[..2]);
    let csv = broken.join("trials.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace(",true,", ",maybe,")).unwrap();
    let m = msg(Dataset::load(std::slice::from_ref(&broken)));
    assert!(
        m.starts_with(&csv.display().to_string()) && m.contains("row 1"),
        "{m}"
    );
    // An unknown verdict.
    std::fs::write(&csv, text.replace(",pass,", ",passed,")).unwrap();
    let m = msg(Dataset::load(std::slice::from_ref(&broken)));
    assert!(
        m.starts_with(&csv.display().to_string()) && m.contains("unknown verdict `passed`"),
        "{m}"
    );
    // The same run twice.
    let a = root.join("a");
    write_fixture(&a, "run-a", "nested", &nested_specs());
    let copy = root.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(a.join("trials.csv"), copy.join("trials.csv")).unwrap();
    let m = msg(Dataset::load(&[a.clone(), copy.clone()]));
    assert!(
        m.starts_with(&copy.join("trials.csv").display().to_string())
            && m.contains(&format!(
                "already read from {}",
                a.join("trials.csv").display()
            )),
        "{m}"
    );
    // The same file reached twice is read once; a trial twice in one file
    // is refused.
    let ds = Dataset::load(&[a.clone(), a.join("trials.csv")]).unwrap();
    assert_eq!((ds.sources.len(), ds.trials.len()), (1, 20));
    let csv = a.join("trials.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let first_row = text.lines().nth(1).unwrap();
    std::fs::write(&csv, format!("{text}{first_row}\n")).unwrap();
    let m = msg(Dataset::load(std::slice::from_ref(&a)));
    assert!(
        m.contains("trial 0 of run run-a (nested, canonical) appears twice"),
        "{m}"
    );
    // Only a header: no trials.
    let none = root.join("none");
    write_fixture(&none, "run-n", "nested", &[]);
    let m = msg(Dataset::load(std::slice::from_ref(&none)));
    assert!(m.starts_with("no trials in"), "{m}");
    // A DIR above several runs reads them all, in path order.
    let many = root.join("many");
    write_fixture(&many.join("2"), "run-2", "nested", &nested_specs());
    write_fixture(&many.join("1/x"), "run-1", "nested", &nested_specs());
    let ds = Dataset::load(&[many]).unwrap();
    assert_eq!(ds.trials.len(), 40);
    assert_eq!(ds.distinct(|r| &r.run_id), ["run-1", "run-2"]);
}

/// The `<text>` contents of an SVG document.
fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// Elements named `tag` whose `attr` is `value`.
fn count(doc: &roxmltree::Document<'_>, tag: &str, attr: &str, value: &str) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag) && n.attribute(attr) == Some(value))
        .count()
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

#[test]
fn svg_charts_are_valid_and_have_a_series_per_strategy() {
    let (root, dirs) = fixture("svg");
    let ds = Dataset::load(&dirs).unwrap();
    let out = root.join("charts");
    let written = plot::plot(&ds, &out, ChartFormat::Svg).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "rates-nested.svg",
            "verdict-time-nested.svg",
            "duration-cdf-nested.svg",
            "rates-sweepy.svg",
            "sweep-sweepy-kill_delay.svg",
            "verdict-time-sweepy.svg",
            "duration-cdf-sweepy.svg",
            "charts.md",
        ]
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let blue = hex(strategy_color(0, "canonical"));
    let red = hex(strategy_color(1, "legacy"));
    for name in &names[..names.len() - 1] {
        let text = read(name);
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{name} is not valid XML: {e}"));
        let svg = doc.root_element();
        assert!(svg.has_tag_name("svg"), "{name}");
        assert_eq!(
            (svg.attribute("width"), svg.attribute("height")),
            (Some("900"), Some("500")),
            "{name}"
        );
        let t = texts(&doc);
        let scenario = if name.contains("nested") {
            "nested"
        } else {
            "sweepy"
        };
        let run = if scenario == "nested" {
            "run-a"
        } else {
            "run-b"
        };
        assert!(
            t[0].starts_with(&format!("{scenario}: ")),
            "{name}: title {:?}",
            t[0]
        );
        assert!(
            t[1].starts_with(&format!("run {run} ")),
            "{name}: subtitle {:?}",
            t[1]
        );
        // Axis descriptions with units.
        assert!(
            t.iter().any(|s| s.contains("(%)") || s.contains("(ms")),
            "{name}: {t:?}"
        );
    }
    // Rates: a legend entry and one bar per verdict shown, per strategy.
    let text = read("rates-nested.svg");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    assert!(t.contains(&"canonical (10 trials)".to_string()), "{t:?}");
    assert!(t.contains(&"legacy (10 trials)".to_string()), "{t:?}");
    for v in ["pass", "orphan", "hang", "panic"] {
        assert!(t.contains(&v.to_string()), "{v}: {t:?}");
    }
    assert_eq!(count(&doc, "rect", "fill", &blue), 1 + 4);
    assert_eq!(count(&doc, "rect", "fill", &red), 1 + 4);
    assert!(t.contains(&"trials with the verdict (%)".to_string()));
    // Sweep: one point per swept value and strategy, legend per strategy.
    let text = read("sweep-sweepy-kill_delay.svg");
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(count(&doc, "circle", "fill", &blue), 4);
    assert_eq!(count(&doc, "circle", "fill", &red), 4);
    let t = texts(&doc);
    assert!(t.contains(&"canonical: panic".to_string()), "{t:?}");
    assert!(t.contains(&"legacy: orphan".to_string()), "{t:?}");
    assert!(t.contains(&"kill_delay (ms)".to_string()), "{t:?}");
    // The points run left to right in value order: x of 5ms < 10ms < 100ms < 1s.
    let xs: Vec<f64> = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some(red.as_str()))
        .map(|n| n.attribute("cx").unwrap().parse().unwrap())
        .collect();
    assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
    // Time to verdict: a row per strategy, dots by verdict, log scale.
    let text = read("verdict-time-nested.svg");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let t = texts(&doc);
    for s in ["canonical", "legacy", "pass", "orphan", "hang", "median"] {
        assert!(t.contains(&s.to_string()), "{s}: {t:?}");
    }
    assert!(
        t.contains(&"time to verdict (ms, log scale)".to_string()),
        "{t:?}"
    );
    assert!(t.contains(&"median 5 ms".to_string()), "{t:?}");
    // Duration CDF: one line per strategy (stroke 2) plus its legend mark.
    let text = read("duration-cdf-nested.svg");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let lines = |color: &str| {
        doc.descendants()
            .filter(|n| {
                n.has_tag_name("polyline")
                    && n.attribute("stroke") == Some(color)
                    && n.attribute("stroke-width") == Some("2")
            })
            .count()
    };
    assert_eq!((lines(&blue), lines(&red)), (1, 1));
    // The index shows every chart, and every chart it shows exists.
    let index = read("charts.md");
    for name in &names[..names.len() - 1] {
        assert!(index.contains(&format!("]({name})")), "{name}: {index}");
    }
    assert!(
        index.contains("## nested") && index.contains("## sweepy"),
        "{index}"
    );
}

#[test]
fn png_charts_start_with_the_png_magic() {
    let (root, dirs) = fixture("png");
    let ds = Dataset::load(&dirs[..1]).unwrap();
    let out = root.join("png");
    let written = plot::plot(&ds, &out, ChartFormat::Png).unwrap();
    assert_eq!(written.len(), 3 + 1);
    for path in &written[..3] {
        assert_eq!(path.extension().unwrap(), "png");
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}",
            path.display()
        );
        assert!(
            bytes.len() > 10_000,
            "{}: {} bytes",
            path.display(),
            bytes.len()
        );
    }
    assert!(std::fs::read_to_string(&written[3])
        .unwrap()
        .contains("(rates-nested.png)"));
}
