//! Range checks of the options every command shares: `-j`, counts
//! (`--trials`, `--repeat`), `--deadline`, `lab exec --grace` and `lab soak
//! --duration`, as clap value parsers whose errors name the range.

use std::time::Duration;

/// The most parallel supervisors (`-j`) a command runs.
pub const MAX_JOBS: usize = 1024;
/// The longest `--deadline` of a trial.
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);
/// The shortest `--deadline` of a trial.
pub const MIN_DEADLINE: Duration = Duration::from_millis(1);
/// The longest `lab exec --grace`: the wait between the signals of a
/// ladder, no longer than the longest deadline.
pub const MAX_GRACE: Duration = MAX_DEADLINE;
/// The shortest `lab exec --grace` (a scenario's `grace` must be longer
/// than zero).
pub const MIN_GRACE: Duration = Duration::from_millis(1);
/// The longest `lab soak --duration` (30 days).
pub const MAX_SOAK_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most trials (`--trials`) or runs (`--repeat`) a command is asked for.
pub const MAX_TRIALS: u64 = 100_000_000;

/// An option value out of its range, or not a value of its kind.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// `-j 0`.
    #[error("-j must be at least 1 (the number of parallel supervisors)")]
    NoJobs,
    /// `-j` above [`MAX_JOBS`] or not a number.
    #[error("-j is a number of parallel supervisors, 1..={MAX_JOBS}")]
    Jobs,
    /// A count of 0.
    #[error("must be at least 1")]
    NoCount,
    /// A count above [`MAX_TRIALS`] or not a number.
    #[error("a count is 1..={MAX_TRIALS}")]
    Count,
    /// Not a duration.
    #[error("{source}; write a duration like 400ms, 2s or 1h (at most {})", humantime::format_duration(*.max))]
    NotDuration {
        /// The parser's complaint.
        source: humantime::DurationError,
        /// The longest allowed.
        max: Duration,
    },
    /// A duration out of its range.
    #[error("must be {}..={}", humantime::format_duration(*.min), humantime::format_duration(*.max))]
    DurationRange {
        /// The shortest allowed.
        min: Duration,
        /// The longest allowed.
        max: Duration,
    },
    /// A soak duration with a fraction of a second.
    #[error("a soak runs for whole seconds (like 90s, 30m or 8h)")]
    WholeSeconds,
}

/// `-j N`: 1..=[`MAX_JOBS`].
pub(super) fn parse_jobs(s: &str) -> Result<usize, OptionError> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(OptionError::NoJobs),
        Ok(n) if n <= MAX_JOBS => Ok(n),
        _ => Err(OptionError::Jobs),
    }
}

/// `--trials N`, `--repeat K`: 1..=[`MAX_TRIALS`].
pub(super) fn parse_count(s: &str) -> Result<u64, OptionError> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(OptionError::NoCount),
        Ok(n) if n <= MAX_TRIALS => Ok(n),
        _ => Err(OptionError::Count),
    }
}

/// A duration as humantime writes it, within `min..=max`.
fn duration_within(s: &str, min: Duration, max: Duration) -> Result<Duration, OptionError> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|source| OptionError::NotDuration { source, max })?;
    if d < min || d > max {
        return Err(OptionError::DurationRange { min, max });
    }
    Ok(d)
}

/// `--deadline`: [`MIN_DEADLINE`]..=[`MAX_DEADLINE`].
pub(super) fn parse_deadline(s: &str) -> Result<Duration, OptionError> {
    duration_within(s, MIN_DEADLINE, MAX_DEADLINE)
}

/// `lab exec --grace`: [`MIN_GRACE`]..=[`MAX_GRACE`].
pub(super) fn parse_grace(s: &str) -> Result<Duration, OptionError> {
    duration_within(s, MIN_GRACE, MAX_GRACE)
}

/// `lab soak --duration`: whole seconds, 1s..=[`MAX_SOAK_DURATION`].
pub(super) fn parse_soak_duration(s: &str) -> Result<Duration, OptionError> {
    let d = duration_within(s, Duration::from_secs(1), MAX_SOAK_DURATION)?;
    if d.subsec_nanos() != 0 {
        return Err(OptionError::WholeSeconds);
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_bounded_like_the_deadline() {
        assert_eq!(parse_grace("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_grace("1ms").unwrap(), MIN_GRACE);
        assert_eq!(parse_grace("1h").unwrap(), MAX_GRACE);
        for out in ["0s", "999us", "2h"] {
            let e = parse_grace(out).unwrap_err().to_string();
            assert_eq!(e, "must be 1ms..=1h", "--grace {out}");
        }
        // Not a duration at all (it overflows): the message still says the most.
        let e = parse_grace("99999999999999999999999h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 1h"), "{e}");
    }
}
