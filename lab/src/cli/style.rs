//! Colour in the text summaries: the verdict words (`pass` green, the
//! verdicts of a bug red, `panic` yellow, `error` magenta, dimmed where
//! their count is 0), `as expected` green and `UNEXPECTED` bold red.
//!
//! The summaries are rendered as plain text (the same text goes into files,
//! tests and CI reports); colour is added only as standard output is
//! written, and only when it takes colour (anstream's rule: `NO_COLOR` set
//! and not empty never, else `CLICOLOR_FORCE` always, else `CLICOLOR=0`
//! never, else on a terminal that supports it). Piped or redirected output
//! never carries an escape sequence.

use std::io;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

use crate::verdict::Verdict;

/// Whether standard output takes colour (decided once, by anstream's rule:
/// see the module's doc).
pub fn stdout_colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR
        .get_or_init(|| anstream::AutoStream::choice(&io::stdout()) != anstream::ColorChoice::Never)
}

/// `text` as standard output should show it: [`paint`]ed when it takes
/// colour, unchanged otherwise.
pub fn for_stdout(text: &str) -> String {
    if stdout_colour() {
        paint(text)
    } else {
        text.to_string()
    }
}

/// The style of a verdict's name.
fn verdict_style(word: &str) -> Option<Style> {
    let v = Verdict::ALL.iter().find(|v| v.name() == word)?;
    let colour = match v {
        Verdict::Pass => AnsiColor::Green,
        Verdict::Panic => AnsiColor::Yellow,
        Verdict::Error => AnsiColor::Magenta,
        Verdict::Orphan
        | Verdict::Hang
        | Verdict::Leak
        | Verdict::Fail
        | Verdict::EarlyDeath
        | Verdict::InnocentKill => AnsiColor::Red,
    };
    Some(Style::new().fg_color(Some(colour.into())))
}

/// `text` with ANSI colour on every word that is a verdict's name (a word
/// between blanks, with an opening `(` and a closing `:`, `,`, `;` or `)`
/// around it: `orphan` in `replay orphan (3 trials)`, not in
/// `diagnosis/orphan.0.txt`), dimmed when the word that follows is a count
/// of 0 (`orphan 0/100`); and on `as expected` and `UNEXPECTED`.
pub fn paint(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + text.len() / 4);
    let mut rest = text;
    while !rest.is_empty() {
        // Blanks are copied as they are.
        let blank = rest.len() - rest.trim_start().len();
        s.push_str(&rest[..blank]);
        rest = &rest[blank..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        let next = after.split_whitespace().next().unwrap_or("");
        let taken = paint_token(&mut s, token, after, next);
        rest = &after[taken..];
    }
    s
}

/// Push `token` onto `s`, painted when it is a verdict's name (with its
/// punctuation), `UNEXPECTED` or the `as` of `as expected` (`after` is the
/// text after it, `next` the word after it); returns how much of `after`
/// it wrote too (` expected` after `as`).
fn paint_token(s: &mut String, token: &str, after: &str, next: &str) -> usize {
    let open = token.strip_prefix('(').map_or("", |_| "(");
    let inner = &token[open.len()..];
    let core = inner.trim_end_matches([':', ',', ';', ')']);
    let close = &inner[core.len()..];
    let style = if let Some(style) = verdict_style(core) {
        if next.starts_with("0/") {
            Some(style.dimmed())
        } else {
            Some(style)
        }
    } else if core == "UNEXPECTED" {
        Some(Style::new().bold().fg_color(Some(AnsiColor::Red.into())))
    } else {
        None
    };
    match style {
        Some(style) => {
            s.push_str(open);
            s.push_str(&format!("{style}{core}{style:#}"));
            s.push_str(close);
            0
        }
        // `as expected`: both words, as one span.
        None if token == "as"
            && after.strip_prefix(" expected").is_some_and(|rest| {
                !rest.starts_with(|c: char| c.is_alphanumeric() || c == '-')
            }) =>
        {
            let style = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
            s.push_str(&format!("{style}as expected{style:#}"));
            " expected".len()
        }
        None => {
            s.push_str(token);
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_words_are_painted_and_nothing_else_changes() {
        let text = "  pass          100/100 100.0% [96.3%, 100.0%]\n  orphan        0/100 (95% upper bound 3.7%)\n  replay orphan (3 trials): lab run nested\n    full diagnosis: results/x/diagnosis/orphan.0.txt\n";
        let painted = paint(text);
        assert_ne!(painted, text);
        assert_eq!(anstream::adapter::strip_str(&painted).to_string(), text);
        assert!(painted.contains("\x1b[32mpass\x1b[0m"));
        // A count of 0: dimmed.
        assert!(painted.contains("\x1b[2m\x1b[31morphan\x1b[0m        0/100"));
        assert!(painted.contains("replay \x1b[31morphan\x1b[0m (3 trials)"));
        assert!(painted.contains("diagnosis/orphan.0.txt"));
    }

    #[test]
    fn expectations_are_painted_with_their_punctuation_kept() {
        let text = "expectation: as expected (pass; the scenario's [expect])\nUNEXPECTED: orphan x3, hang x1 (expected pass)\nevery strategy as expected\n";
        let painted = paint(text);
        assert_eq!(anstream::adapter::strip_str(&painted).to_string(), text);
        assert!(painted.contains("\x1b[1m\x1b[32mas expected\x1b[0m (\x1b[32mpass\x1b[0m;"));
        assert!(painted.contains("\x1b[1m\x1b[31mUNEXPECTED\x1b[0m:"));
        assert!(painted.contains("\x1b[31mhang\x1b[0m x1"));
    }
}
