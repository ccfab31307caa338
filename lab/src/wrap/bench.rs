//! What a wrap costs (`lab bench --wrap`): the wall time of a program run
//! bare, under the least a wrapper can be (util-linux's `unshare --fork`:
//! one fork, one exec, one wait, no namespace), and under `lab wrap -q --`,
//! in turn, in the same run, so all three see the same machine; what each
//! wrapper adds, with the spread.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::error::LabError;
use crate::stats::percentile;

/// The wall times of one way of running the program, over its runs (µs).
#[derive(Debug, Serialize)]
pub struct Timing {
    /// The command line timed (program first).
    pub command: Vec<String>,
    /// Median, p10 and p90 (µs).
    pub us: [u64; 3],
    /// What it adds to the bare run: the medians' difference (µs).
    pub added_us: i64,
    /// The medians' ratio, over the bare run's.
    pub ratio: f64,
}

/// The measurement of [`measure`].
#[derive(Debug, Serialize)]
pub struct WrapCost {
    /// The program measured, and its arguments.
    pub command: Vec<String>,
    /// Runs of each way, taken in turn.
    pub runs: u64,
    /// The program run bare (its `added_us` is 0, its ratio 1).
    pub bare: Timing,
    /// Under `unshare --fork`, the floor of any wrapper that forks and
    /// waits; `None` when `unshare` is not on `PATH`.
    pub floor: Option<Timing>,
    /// Under `lab wrap -q --`.
    pub wrapped: Timing,
}

/// Run `command` `runs` times in each way, in turn (bare, under
/// `unshare --fork` when it is on `PATH`, as `exe wrap -q -- command`),
/// its output to `/dev/null`, and time each from the spawn to the reaping.
///
/// # Errors
/// [`LabError::Lab`] when a run cannot start, or fails (a status other
/// than 0).
pub fn measure(exe: &Path, command: &[String], runs: u64) -> Result<WrapCost, LabError> {
    let mut ways: Vec<Vec<String>> = vec![command.to_vec()];
    let path = std::env::var("PATH").unwrap_or_default();
    let floor = super::lookup::find("unshare", &path).ok();
    if let Some(unshare) = &floor {
        let mut w = vec![unshare.display().to_string(), "--fork".into()];
        w.extend_from_slice(command);
        ways.push(w);
    }
    let mut w = vec![exe.display().to_string(), "wrap".into(), "-q".into()];
    w.push("--".into());
    w.extend_from_slice(command);
    ways.push(w);
    let mut times: Vec<Vec<u64>> = vec![Vec::new(); ways.len()];
    for _ in 0..runs {
        for (way, t) in ways.iter().zip(times.iter_mut()) {
            t.push(time(way)?);
        }
    }
    let q = |v: &[u64]| {
        [
            percentile(v, 50.0),
            percentile(v, 10.0),
            percentile(v, 90.0),
        ]
    };
    let bare_us = q(&times[0]);
    let timing = |k: usize| {
        let us = q(&times[k]);
        Timing {
            command: ways[k].clone(),
            us,
            added_us: us[0] as i64 - bare_us[0] as i64,
            ratio: us[0] as f64 / bare_us[0].max(1) as f64,
        }
    };
    Ok(WrapCost {
        command: command.to_vec(),
        runs,
        bare: timing(0),
        floor: floor.map(|_: PathBuf| timing(1)),
        wrapped: timing(ways.len() - 1),
    })
}

/// The wall time of one run of `way` (µs).
fn time(way: &[String]) -> Result<u64, LabError> {
    let t = Instant::now();
    let st = Command::new(&way[0])
        .args(&way[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LabError::io(format!("cannot run {}", way[0]), e))?;
    if !st.success() {
        return Err(LabError::Lab(format!("{way:?} ended with {st}")));
    }
    Ok(t.elapsed().as_micros() as u64)
}

impl WrapCost {
    /// The measurement in words.
    pub fn render(&self) -> String {
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        let line = |name: &str, t: &Timing| {
            let added = if t.added_us == 0 && t.ratio == 1.0 {
                String::new()
            } else {
                format!(
                    "  added {:.2} ms, ratio {:.2}x",
                    t.added_us as f64 / 1000.0,
                    t.ratio
                )
            };
            format!(
                "{name:<16} median {}  (p10 {}, p90 {}){added}\n",
                ms(t.us[0]),
                ms(t.us[1]),
                ms(t.us[2]),
            )
        };
        let mut out = format!(
            "`{}`, {} runs each way, in turn\n",
            self.command.join(" "),
            self.runs
        );
        out.push_str(&line("bare", &self.bare));
        match &self.floor {
            Some(f) => out.push_str(&line("unshare --fork", f)),
            None => out.push_str("unshare --fork   not on PATH: no floor of a wrapper measured\n"),
        }
        out.push_str(&line("lab wrap -q", &self.wrapped));
        if let Some(f) = &self.floor {
            out.push_str(&format!(
                "lab wrap adds {:.2} ms over the least wrapper (unshare --fork: one fork, one exec, one wait)\n",
                (self.wrapped.us[0] as i64 - f.us[0] as i64) as f64 / 1000.0
            ));
        }
        out
    }
}
