//! Words for the lab's sentences: a count with its noun in the right number.
//! A ground floor: it imports nothing of the lab.

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

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "trial"), "1 trial");
        assert_eq!(plural(0, "process"), "0 processes");
        assert_eq!(plural(1, "process"), "1 process");
        assert_eq!(plural(3, "case"), "3 cases");
    }
}
