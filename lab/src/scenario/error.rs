//! [`ScenarioError`]: `file:line:col`, the offending text, and what is wrong.

use std::fmt;
use std::ops::Range;

/// The most characters of offending text an error quotes; longer text is
/// cut there and ends in `…`.
pub const MAX_QUOTE_CHARS: usize = 200;

/// The most characters of a message taken from the TOML parser (which may
/// quote a key or value of the file); longer messages are cut there.
const MAX_MESSAGE_CHARS: usize = 400;

/// `s` cut to at most `max` characters, with `…` where it was cut, and its
/// control characters (a NUL, an escape) shown escaped (`\u{0}`), so that a
/// quote can neither flood nor drive the terminal.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A message of serde or the TOML parser in the user's words: the names of
/// the lab's internal types (`struct RawTree`) and of Rust's integer types
/// (`i64`) become what the file should hold.
fn plain_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: integer `") {
        if let Some((number, tail)) = rest.split_once("` as i128") {
            return format!(
                "the integer {number} is too large (integers are at most {}){}",
                i64::MAX,
                tail.strip_prefix(", expected i64").unwrap_or(tail)
            );
        }
    }
    let mut out = message
        .replace("expected i64", "expected an integer")
        .replace("expected u64", "expected an integer of at least 0")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a table");
    while let Some(at) = out.find("struct Raw") {
        let name = at + "struct ".len();
        let end = out[name..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(out.len(), |e| name + e);
        out.replace_range(at..end, "a table");
    }
    out
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
        let message = bounded(&plain_words(e.message().trim()), MAX_MESSAGE_CHARS);
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
