//! [`ScenarioError`]: `file:line:col`, the offending text, and what is wrong.

use std::fmt;
use std::ops::Range;

/// The most characters of offending text an error quotes; longer text is
/// cut there and ends in `…`.
pub const MAX_QUOTE_CHARS: usize = 200;

/// The most characters of a message taken from the TOML parser (which may
/// quote a key or value of the file); longer messages are cut there.
const MAX_MESSAGE_CHARS: usize = 400;

/// `s` cut to at most `max` characters, with `…` where it was cut.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// An error in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given (a path, or `scenarios/NAME.toml` for a built-in).
    pub file: String,
    /// 1-based line, 0 when the error has no position.
    pub line: usize,
    /// 1-based column (in characters), 0 when the error has no position.
    pub col: usize,
    /// The offending text (the first line of the source slice of the span,
    /// at most [`MAX_QUOTE_CHARS`] characters), empty without one.
    pub text: String,
    /// What is wrong and, where it helps, what to do instead.
    pub message: String,
}

impl ScenarioError {
    /// An error located at the byte `span` of `source`.
    pub(crate) fn at(file: &str, source: &str, span: Range<usize>, message: String) -> Self {
        let start = span.start.min(source.len());
        let end = span.end.clamp(start, source.len());
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let text = bounded(
            source[start..end].lines().next().unwrap_or(""),
            MAX_QUOTE_CHARS,
        );
        ScenarioError {
            file: file.to_string(),
            line,
            col,
            text,
            message,
        }
    }

    /// A TOML or serde error of `source`, located where the parser says
    /// (scenario and suite files alike).
    /// The parser's message is cut to a few hundred characters (it may
    /// quote a huge key), and a nesting too deep that the parser cannot place is
    /// placed at the line with the most deeply dotted key.
    pub(crate) fn from_toml(file: &str, source: &str, e: toml::de::Error) -> Self {
        let message = bounded(e.message().trim(), MAX_MESSAGE_CHARS);
        match e.span() {
            Some(span) => ScenarioError::at(file, source, span, message),
            None if message.contains("recursion") => {
                let (line, col, text) = deepest_key(source);
                ScenarioError {
                    file: file.to_string(),
                    line,
                    col,
                    text: bounded(text, MAX_QUOTE_CHARS),
                    message: "keys or tables nest too deeply (the parser's recursion limit); \
                              write the key with fewer dots or the value with fewer levels"
                        .into(),
                }
            }
            None => ScenarioError::plain(file, message),
        }
    }

    /// An error about the file as a whole (unreadable, unknown name).
    pub(crate) fn plain(file: &str, message: String) -> Self {
        ScenarioError {
            file: file.to_string(),
            line: 0,
            col: 0,
            text: String::new(),
            message,
        }
    }
}

/// The 1-based line and column, and the text, of the line of `source`
/// whose key (before `=`, or in a `[table]` header) has the most dots: where
/// a dotted key nests too deeply. Line 1, column 1 when no line has a key.
fn deepest_key(source: &str) -> (usize, usize, &str) {
    let dots = |l: &str| {
        let t = l.trim_start();
        let key = if t.starts_with('[') {
            t
        } else {
            t.split('=').next().unwrap_or("")
        };
        key.matches('.').count()
    };
    source
        .lines()
        .enumerate()
        .max_by_key(|(i, l)| (dots(l), std::cmp::Reverse(*i)))
        .map_or((1, 1, ""), |(i, l)| {
            let indent = l.chars().take_while(|c| c.is_whitespace()).count();
            (i + 1, indent + 1, l.trim())
        })
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if !self.text.is_empty() {
            write!(f, "\n  | {}", self.text)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}
