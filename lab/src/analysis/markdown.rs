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
/// with backticks gets a double-backtick fence).
pub fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}
