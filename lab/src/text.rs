//! Words for the lab's sentences: a count with its noun in the right
//! number, a text cut short at a word. A ground floor: it imports nothing
//! of the lab.

/// `n word` with `word` in the plural unless `n` is 1: `1 trial`,
/// `2 trials`, `0 processes` (`-es` after `s`, `x`, `ch`, `sh`).
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else if ["s", "x", "ch", "sh"].iter().any(|e| word.ends_with(e)) {
        format!("{n} {word}es")
    } else {
        format!("{n} {word}s")
    }
}

/// `text` cut to at most `max` characters at a word boundary, with `...`
/// when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > max.saturating_sub(3) {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::{bounded, plural};

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "trial"), "1 trial");
        assert_eq!(plural(0, "process"), "0 processes");
        assert_eq!(plural(1, "process"), "1 process");
        assert_eq!(plural(3, "case"), "3 cases");
    }

    #[test]
    fn a_long_text_is_cut_at_a_word() {
        assert_eq!(bounded("short", 20), "short");
        assert!(bounded(&"word ".repeat(100), 20).ends_with("..."));
        assert!(bounded(&"word ".repeat(100), 20).chars().count() <= 20);
    }
}
