//! Markdown text for `lab report` and the chart index of `lab plot`:
//! escaped prose and code spans.

/// Escape what markdown would read as markup in table cells and prose.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '*' | '_' | '`' | '<' | '\\' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a markdown code span (no escaping needed inside one; a text
/// with backticks gets a double-backtick fence). For a text that carries
/// code spans of its own (a verdict's reason), see [`quote`].
pub fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A text that may carry code spans of its own (a verdict's reason naming
/// `` `sleep 30` ``), quoted in markdown prose: a text without backticks as
/// one [`code`] span; else as prose, its own spans kept and the rest
/// escaped ([`md`]), rather than inside a double-backtick fence that reads
/// as an empty pair (`` `` alive after `sh` ... `` ``). Unbalanced backticks
/// are escaped with the rest.
pub fn quote(text: &str) -> String {
    if !text.contains('`') {
        return code(text);
    }
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len() % 2 == 0 {
        return md(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(&md(part));
        } else if part.is_empty() {
            out.push_str("\\`\\`");
        } else {
            out.push_str(&code(part));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn a_reason_with_code_spans_is_quoted_as_prose_with_them() {
        assert_eq!(quote("pid N stuck"), "`pid N stuck`");
        assert_eq!(
            quote("alive after `sh -c x &` exited: pid N (`sleep 30`)"),
            "alive after `sh -c x &` exited: pid N (`sleep 30`)"
        );
        assert_eq!(quote("a * b `c`"), "a \\* b `c`");
        assert_eq!(quote("one ` tick"), "one \\` tick");
        assert!(!quote("x `a` y").contains("``"));
    }
}
