//! How a soak shows its progress: a bar (with the verdicts so far), one
//! line per trial, or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::record::Tally;

/// How the soak shows its progress.
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

/// The bar of `progress` over `total` trials (a spinner when the soak runs
/// for a duration); hidden unless a bar is to be shown.
pub(super) fn bar(progress: Progress, total: Option<u64>) -> ProgressBar {
    let show = match progress {
        Progress::Bar => true,
        Progress::Auto => std::io::stderr().is_terminal(),
        Progress::Lines | Progress::None => false,
    };
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{elapsed_precise} [{bar:30}] {pos}/{len} trials  {per_sec}  ETA {eta}  {msg}"
    } else {
        "{elapsed_precise} {spinner} {pos} trials  {per_sec}  {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `canonical: pass 120 | legacy: orphan 118 hang 2`.
pub(super) fn live_counts(tally: &Tally) -> String {
    let mut per: Vec<(String, Vec<String>)> = Vec::new();
    for ((strategy, verdict), n) in tally.by_strategy() {
        match per.iter_mut().find(|(s, _)| *s == strategy) {
            Some((_, v)) => v.push(format!("{verdict} {n}")),
            None => per.push((strategy, vec![format!("{verdict} {n}")])),
        }
    }
    per.iter()
        .map(|(s, v)| format!("{s}: {}", v.join(" ")))
        .collect::<Vec<_>>()
        .join(" | ")
}
