//! How a run, a soak or a fuzz shows its progress: a bar (with the verdicts
//! so far), one line per trial, or nothing.

use std::io::IsTerminal;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How a run, a soak or a fuzz shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A bar when stderr (where it is drawn) is a terminal, nothing
    /// otherwise: `lab soak > summary.txt` still shows it, `2> log` never
    /// writes it into the log.
    Auto,
    /// A bar, asked for: drawn the same way as `Auto`'s, since indicatif
    /// too draws only on a terminal (and not under `TERM=dumb`), never into
    /// a file or a pipe.
    Bar,
    /// One line per finished trial on stderr (for scripts and tests).
    Lines,
    /// Nothing.
    None,
}

/// A progress bar on stderr that shows itself only once its run has lasted
/// a second (a run shorter than that draws nothing) and only where
/// [`Progress`] says so: the finished trials, their rate (one decimal) and
/// the ETA, or a spinner when the total is unknown (a soak for a
/// duration).
pub struct Bar {
    bar: ProgressBar,
    show: bool,
    start: Instant,
}

/// How long a run goes before its bar is drawn.
const SHOW_AFTER: Duration = Duration::from_secs(1);

impl Bar {
    /// The bar of `progress` over `total` trials (`None`: unknown).
    pub fn new(progress: Progress, total: Option<u64>) -> Bar {
        let show = match progress {
            Progress::Bar => true,
            Progress::Auto => std::io::stderr().is_terminal(),
            Progress::Lines | Progress::None => false,
        };
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        let template = if total.is_some() {
            "{elapsed_precise} [{bar:30}] {pos}/{len} trials  {rate}  ETA {eta}  {msg}"
        } else {
            "{elapsed_precise} {spinner} {pos} trials  {rate}  {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            let style = style
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1} trials/s", s.per_sec());
                })
                .progress_chars("=> ");
            bar.set_style(style);
        }
        Bar {
            bar,
            show,
            start: Instant::now(),
        }
    }

    /// One more trial finished; `message` (the verdicts so far, say)
    /// follows the figures. Draws the bar from the first call after a
    /// second on, and keeps it ticking.
    pub fn inc(&self, message: impl FnOnce() -> String) {
        self.bar.inc(1);
        if !self.show {
            return;
        }
        if self.bar.is_hidden() && self.start.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.enable_steady_tick(Duration::from_millis(250));
        }
        if !self.bar.is_hidden() {
            self.bar.set_message(message());
        }
    }

    /// Remove the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
