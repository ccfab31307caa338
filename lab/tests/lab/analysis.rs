//! `lab report` and `lab plot` on the CSV of a real run: the tables agree
//! with `lab run`'s own summary, the charts are valid SVG (or PNG) with a
//! series per strategy, and bad input is refused with status 2.

use super::{json, lab, lab_run, out_dir};
use serde_json::Value;

/// `lab report`'s cell for a rate of `lab run`'s JSON summary
/// (`{count, trials, rate, low, high}`), as `Rate::render` writes it.
fn cell(r: &Value) -> String {
    let (count, trials) = (r["count"].as_u64().unwrap(), r["trials"].as_u64().unwrap());
    let pct = |k: &str| r[k].as_f64().unwrap() * 100.0;
    if count == 0 {
        format!("{count}/{trials} (95% upper bound {:.1}%)", pct("high"))
    } else {
        format!(
            "{count}/{trials} {:.1}% [{:.1}%, {:.1}%]",
            pct("rate"),
            pct("low"),
            pct("high")
        )
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn report_and_plot_a_real_run() {
    let (out, dir) = lab_run("nested", 5, &["canonical", "legacy"], &[]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let run_id = v["run_id"].as_str().unwrap();
    let run_dir = dir.join(run_id);
    let run_arg = run_dir.to_str().unwrap();

    let report = lab(&["report", run_arg], &[]);
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = stdout(&report);
    assert!(md.starts_with("# lab report\n"), "{md}");
    assert!(md.contains(&format!("| runs | `{run_id}` |")), "{md}");
    assert!(
        md.contains(&format!("| kernel | {} |", v["kernel"].as_str().unwrap())),
        "{md}"
    );
    assert!(md.contains("\n## nested\n"), "{md}");
    assert!(
        md.contains("| strategy | trials | pass | orphan | hang | panic |"),
        "{md}"
    );
    // Each strategy's row agrees with the summary `lab run` printed.
    for r in v["results"].as_array().unwrap() {
        let name = r["strategy"].as_str().unwrap();
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {name} | ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{md}"));
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells[1], "5", "{row}");
        for (i, verdict) in ["pass", "orphan", "hang", "panic"].iter().enumerate() {
            assert_eq!(cells[2 + i], cell(&r["rates"][verdict]), "{verdict}: {row}");
        }
        let median_ms = r["median_verdict_us"].as_u64().unwrap() as f64 / 1000.0;
        assert_eq!(cells[6], format!("{median_ms:.2}"), "{row}");
    }
    // The DIR above the run reads the same CSV; --out writes the same text.
    let parent = lab(&["report", dir.to_str().unwrap()], &[]);
    assert_eq!(stdout(&parent), md);
    let file = dir.join("report.md");
    let to_file = lab(&["report", run_arg, "--out", file.to_str().unwrap()], &[]);
    assert_eq!(
        (to_file.status.code(), stdout(&to_file).as_str()),
        (Some(0), "")
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), md);

    let charts = dir.join("charts");
    let plot = lab(&["plot", run_arg, "--out", charts.to_str().unwrap()], &[]);
    assert_eq!(
        plot.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    let files: Vec<String> = stdout(&plot).lines().map(str::to_string).collect();
    let expected: Vec<String> = [
        "rates-nested.svg",
        "verdict-time-nested.svg",
        "duration-cdf-nested.svg",
        "charts.md",
    ]
    .iter()
    .map(|f| charts.join(f).display().to_string())
    .collect();
    assert_eq!(files, expected);
    for f in &files[..3] {
        let text = std::fs::read_to_string(f).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(str::trim))
            .collect();
        assert!(texts[0].starts_with("nested: "), "{f}: {texts:?}");
        assert!(texts[1].contains(run_id), "{f}: {texts:?}");
        for s in ["canonical", "legacy"] {
            assert!(
                texts.iter().any(|t| t.starts_with(s)),
                "{f}: no {s} in {texts:?}"
            );
        }
    }
    let png = dir.join("png");
    let plot = lab(
        &[
            "plot",
            run_arg,
            "--out",
            png.to_str().unwrap(),
            "--format",
            "png",
        ],
        &[],
    );
    assert_eq!(plot.status.code(), Some(0));
    for f in stdout(&plot).lines().filter(|f| f.ends_with(".png")) {
        let bytes = std::fs::read(f).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{f}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn a_reason_with_code_spans_is_quoted_without_an_empty_pair() {
    let dir = out_dir("analysis-why");
    let out = lab(
        &[
            "exec",
            "--trials",
            "1",
            "--out",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "sleep 30 &",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = lab(&["report", dir.to_str().unwrap()], &[]);
    assert_eq!(report.status.code(), Some(0));
    let md = stdout(&report);
    let why = md
        .lines()
        .find(|l| l.contains("Why `orphan`"))
        .unwrap_or_else(|| panic!("{md}"));
    // The reason's own code spans stay; no double-backtick fence around it.
    assert!(why.contains("pid N (`sleep 30`)"), "{why}");
    assert!(!why.contains("``"), "{why}");
    let _ = std::fs::remove_dir_all(dir);
}

fn report_and_plot_refuse_bad_input_with_status_2() {
    let dir = out_dir("analysis-bad");
    let missing = dir.join("missing");
    for cmd in ["report", "plot"] {
        let mut args = vec![cmd, missing.to_str().unwrap()];
        if cmd == "plot" {
            args.extend(["--out", dir.to_str().unwrap()]);
        }
        let out = lab(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(missing.to_str().unwrap()), "{cmd}: {err}");
    }
    // A CSV of another schema names the file and the schema.
    let old = dir.join("old");
    std::fs::create_dir_all(&old).unwrap();
    let csv = old.join("trials.csv");
    std::fs::write(&csv, "schema,run_id,scenario\n3,r,nested\n").unwrap();
    let out = lab(&["report", old.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(csv.to_str().unwrap()) && err.contains("schema 3"),
        "{err}"
    );
    // Nothing charted from it.
    let charts = dir.join("charts");
    let out = lab(
        &[
            "plot",
            old.to_str().unwrap(),
            "--out",
            charts.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!charts.exists());
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_reason_with_code_spans_is_quoted_without_an_empty_pair;
    report_and_plot_a_real_run;
    report_and_plot_refuse_bad_input_with_status_2;
}
