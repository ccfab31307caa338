//! [`ScenarioError`]: `file:line:col`, the offending text, and what is wrong.

use std::fmt;
use std::ops::Range;

/// An error in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given (a path, or `scenarios/NAME.toml` for a built-in).
    pub file: String,
    /// 1-based line, 0 when the error has no position.
    pub line: usize,
    /// 1-based column (in characters), 0 when the error has no position.
    pub col: usize,
    /// The offending text (the source slice of the span), empty without one.
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
        let text = source[start..end].lines().next().unwrap_or("").to_string();
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
    pub(crate) fn from_toml(file: &str, source: &str, e: toml::de::Error) -> Self {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => ScenarioError::at(file, source, span, message),
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
