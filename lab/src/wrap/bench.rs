//! What a wrap costs (`lab bench --wrap`): the wall time of a program run
//! bare and run under `lab wrap -q --`, in turn, in the same run, so both
//! see the same machine; the added time and the ratio, with the spread.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::error::LabError;
use crate::stats::percentile;

/// The measurement of [`measure`]: wall times in µs.
#[derive(Debug, Serialize)]
pub struct WrapCost {
    /// The program measured, and its arguments.
    pub command: Vec<String>,
    /// Runs of each, bare and wrapped, taken in turn.
    pub runs: u64,
    /// The bare runs' median, p10 and p90 (µs).
    pub bare_us: [u64; 3],
    /// The wrapped runs' median, p10 and p90 (µs).
    pub wrapped_us: [u64; 3],
    /// The added wall time: the medians' difference (µs).
    pub added_us: i64,
    /// The medians' ratio, wrapped over bare.
    pub ratio: f64,
}

/// Run `command` `runs` times bare and `runs` times as `exe wrap -q --
/// command`, alternately, its output to `/dev/null`, and time each from
/// the spawn to the reaping.
///
/// # Errors
/// [`LabError::Lab`] when a run cannot start, or fails (a status other
/// than 0).
pub fn measure(exe: &Path, command: &[String], runs: u64) -> Result<WrapCost, LabError> {
    let time = |program: &Path, args: &[String]| -> Result<u64, LabError> {
        let t = Instant::now();
        let st = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| LabError::io(format!("cannot run {}", program.display()), e))?;
        if !st.success() {
            return Err(LabError::Lab(format!(
                "{} {args:?} ended with {st}",
                program.display()
            )));
        }
        Ok(t.elapsed().as_micros() as u64)
    };
    let mut wrapped_args = vec!["wrap".to_string(), "-q".into(), "--".into()];
    wrapped_args.extend_from_slice(command);
    let program = Path::new(&command[0]);
    let (mut bare, mut wrapped) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        bare.push(time(program, &command[1..])?);
        wrapped.push(time(exe, &wrapped_args)?);
    }
    let q = |v: &[u64]| {
        [
            percentile(v, 50.0),
            percentile(v, 10.0),
            percentile(v, 90.0),
        ]
    };
    let (b, w) = (q(&bare), q(&wrapped));
    Ok(WrapCost {
        command: command.to_vec(),
        runs,
        bare_us: b,
        wrapped_us: w,
        added_us: w[0] as i64 - b[0] as i64,
        ratio: w[0] as f64 / b[0].max(1) as f64,
    })
}

impl WrapCost {
    /// The measurement in words.
    pub fn render(&self) -> String {
        let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
        format!(
            "`{}`, {} runs each, bare and under `lab wrap -q --` in turn\n\
             bare     median {}  (p10 {}, p90 {})\n\
             wrapped  median {}  (p10 {}, p90 {})\n\
             added    {:.2} ms per run (medians), ratio {:.2}x\n",
            self.command.join(" "),
            self.runs,
            ms(self.bare_us[0]),
            ms(self.bare_us[1]),
            ms(self.bare_us[2]),
            ms(self.wrapped_us[0]),
            ms(self.wrapped_us[1]),
            ms(self.wrapped_us[2]),
            self.added_us as f64 / 1000.0,
            self.ratio
        )
    }
}
