//! Statistics: Wilson score intervals (from the `bpci` crate) and medians.

use bpci::{Interval, NSuccessesSample, WilsonScore};
use serde::Serialize;

/// z for a two-sided 95% interval.
const Z95: f64 = 1.959_963_985;

/// A rate `count/trials` with its 95% Wilson score interval, as fractions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate {
    /// Trials with the outcome.
    pub count: u64,
    /// All trials.
    pub trials: u64,
    /// `count / trials` (0 when there are no trials).
    pub rate: f64,
    /// Lower bound of the 95% interval.
    pub low: f64,
    /// Upper bound of the 95% interval.
    pub high: f64,
}

impl Rate {
    /// The rate of `count` in `trials` with its 95% Wilson interval.
    pub fn wilson(count: u64, trials: u64) -> Rate {
        let (low, high) = match NSuccessesSample::new(trials as f64, count as f64) {
            Ok(s) if trials > 0 => {
                let i = s.wilson_score(Z95);
                (i.lower().clamp(0.0, 1.0), i.upper().clamp(0.0, 1.0))
            }
            _ => (0.0, 1.0),
        };
        Rate {
            count,
            trials,
            rate: if trials == 0 {
                0.0
            } else {
                count as f64 / trials as f64
            },
            low,
            high,
        }
    }

    /// `20/20 100.0% [83.9%, 100.0%]`, or for zero
    /// `0/20 (95% upper bound 16.1%)`.
    pub fn render(&self) -> String {
        if self.count == 0 {
            format!(
                "{}/{} (95% upper bound {:.1}%)",
                self.count,
                self.trials,
                self.high * 100.0
            )
        } else {
            format!(
                "{}/{} {:.1}% [{:.1}%, {:.1}%]",
                self.count,
                self.trials,
                self.rate * 100.0,
                self.low * 100.0,
                self.high * 100.0
            )
        }
    }
}

/// The median of `values` (the lower middle for an even count); 0 when empty.
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        let r = Rate::wilson(25, 100);
        assert!(
            (r.low - 0.1754).abs() < 1e-3 && (r.high - 0.3430).abs() < 1e-3,
            "{r:?}"
        );
        let zero = Rate::wilson(0, 20);
        assert_eq!(zero.low, 0.0);
        assert!((zero.high - 0.1611).abs() < 1e-3, "{zero:?}");
        let all = Rate::wilson(20, 20);
        assert!(
            (all.low - 0.8389).abs() < 1e-3 && all.high == 1.0,
            "{all:?}"
        );
        assert!(zero.render().contains("95% upper bound 16.1%"));
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[5, 1, 3]), 3);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median(&[]), 0);
    }
}
