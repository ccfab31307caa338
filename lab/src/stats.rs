//! Statistics: Wilson score intervals (from the `bpci` crate), medians and
//! percentiles, of a list or of a stream in bounded memory ([`Quantiles`]).

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
                // At the edges the bound is exact: all trials give an upper
                // bound of 1, none a lower bound of 0 (the closed form
                // misses them by a rounding error, printed 99.999999999999986%).
                let low = if count == 0 {
                    0.0
                } else {
                    i.lower().clamp(0.0, 1.0)
                };
                let high = if count == trials {
                    1.0
                } else {
                    i.upper().clamp(0.0, 1.0)
                };
                (low, high)
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
    /// `0/20 (95% upper bound 16.1%)`; each figure with the precision it
    /// needs ([`percent`]): `0/100000 (95% upper bound 0.0038%)`.
    pub fn render(&self) -> String {
        if self.count == 0 {
            format!(
                "{}/{} (95% upper bound {}%)",
                self.count,
                self.trials,
                percent(self.high)
            )
        } else {
            format!(
                "{}/{} {}% [{}%, {}%]",
                self.count,
                self.trials,
                percent(self.rate),
                percent(self.low),
                percent(self.high)
            )
        }
    }
}

/// `fraction` as a percentage, with one decimal (`16.1`), or with two
/// significant digits of its distance from 0% or from 100% when one
/// decimal would round that away: `0.0038` (not `0.0`), `99.9962` (not
/// `100.0`). Exactly 0 and 1 are `0.0` and `100.0`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let edge = p.min(100.0 - p);
    // Below 1e-9 % is a rounding error, not a figure.
    if edge <= 1e-9 || edge >= 0.1 {
        return format!("{p:.1}");
    }
    let decimals = (-edge.log10()).ceil() as usize + 1;
    format!("{p:.decimals$}")
}

#[cfg(test)]
/// The median of `values` (the lower middle for an even count); 0 when empty.
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// The `p`-th percentile of `values` (`p` in percent, clamped to 0..=100)
/// by the nearest-rank method: the smallest value such that at least `p`% of
/// `values` are at or below it. Always one of `values` (no interpolation);
/// `percentile(v, 50.0) == median(v)`, `percentile(v, 100.0)` is the maximum;
/// 0 when empty.
pub fn percentile(values: &[u64], p: f64) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    percentile_sorted(&v, p)
}

/// [`percentile`] of `sorted`, which must be in ascending order (not
/// checked; an unsorted slice gives a meaningless value).
pub fn percentile_sorted(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    if n == 0 {
        return 0;
    }
    sorted[rank(n as u64, p) as usize - 1]
}

/// The nearest rank of the `p`-th percentile among `n` values (1..=n; `n`
/// at least 1).
fn rank(n: u64, p: f64) -> u64 {
    // p * n / 100 rather than p / 100 * n: exact for whole p, so p99 of
    // 100 values is the 99th, not the 100th.
    ((p.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as u64).clamp(1, n)
}

/// Values [`Quantiles`] keeps as they are before it counts them in buckets.
pub const EXACT_KEPT: usize = 4096;

/// Bits below the leading one of a value that its bucket keeps: values
/// below `2^(SUB_BITS + 1)` (4096) have a bucket each; above, a bucket
/// spans `2^-SUB_BITS` of its values (1/2048).
const SUB_BITS: u32 = 11;

/// The values of a stream (a group's trial times, in µs) for its median
/// and percentiles, in memory that does not grow with the count: the first
/// [`EXACT_KEPT`] values as they are (then [`Quantiles::percentile`] is
/// [`percentile`], exactly); beyond, a count per bucket of a log-linear
/// histogram (HdrHistogram's layout) with the least and greatest value
/// exactly. Values below 4096 then still come out exactly; a greater one
/// as the middle of its bucket, within 1/4096 (0.025%) of the value the
/// nearest rank picks (at 50 ms, within 12 µs). At most one bucket per
/// distinct value, 110,000 at most (values up to `u64::MAX`); a soak's
/// times fill a few thousand.
#[derive(Clone, Debug, Default)]
pub struct Quantiles {
    /// The values, while at most [`EXACT_KEPT`] were added.
    exact: Vec<u64>,
    /// Counts by bucket ([`bucket_of`]), once more were added.
    buckets: std::collections::BTreeMap<u32, u64>,
    /// Values counted in `buckets`.
    counted: u64,
    /// The least and greatest value counted in `buckets`.
    min: u64,
    max: u64,
}

/// The bucket of `v`: `v` itself below `2^(SUB_BITS + 1)`; above, its
/// power of two and its `SUB_BITS` bits below the leading one.
fn bucket_of(v: u64) -> u32 {
    let exact = 1u64 << (SUB_BITS + 1);
    if v < exact {
        return v as u32;
    }
    let octave = 63 - v.leading_zeros();
    let shift = octave - SUB_BITS;
    let sub = (v >> shift) as u32 - (1 << SUB_BITS);
    exact as u32 + (octave - SUB_BITS - 1) * (1 << SUB_BITS) + sub
}

/// The middle of bucket `b` ([`bucket_of`]): the value itself below
/// `2^(SUB_BITS + 1)`.
fn middle_of(b: u32) -> u64 {
    let exact = 1u32 << (SUB_BITS + 1);
    if b < exact {
        return u64::from(b);
    }
    let above = b - exact;
    let octave = above / (1 << SUB_BITS) + SUB_BITS + 1;
    let sub = u64::from(above % (1 << SUB_BITS)) + (1 << SUB_BITS);
    let shift = octave - SUB_BITS;
    (sub << shift) + (1u64 << shift) / 2
}

impl Quantiles {
    /// Add one value.
    pub fn add(&mut self, v: u64) {
        if self.counted == 0 && self.exact.len() < EXACT_KEPT {
            self.exact.push(v);
            return;
        }
        if self.counted == 0 {
            self.min = v;
            self.max = v;
            for x in std::mem::take(&mut self.exact) {
                self.count(x);
            }
        }
        self.count(v);
    }

    fn count(&mut self, v: u64) {
        *self.buckets.entry(bucket_of(v)).or_insert(0) += 1;
        self.counted += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Values added.
    pub fn len(&self) -> u64 {
        self.counted + self.exact.len() as u64
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `p`-th percentile by the nearest rank, as [`percentile`] (0 when
    /// empty); beyond [`EXACT_KEPT`] values, within 0.025% of it (exact
    /// below 4096, for the least and for the greatest value).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.counted == 0 {
            return percentile(&self.exact, p);
        }
        let r = rank(self.counted, p);
        if r == self.counted {
            return self.max;
        }
        if r == 1 {
            return self.min;
        }
        let mut below = 0;
        for (&b, &n) in &self.buckets {
            below += n;
            if below >= r {
                return middle_of(b).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// The median: [`Quantiles::percentile`] at 50 (the lower middle for
    /// an even count, as [`median`]).
    pub fn median(&self) -> u64 {
        self.percentile(50.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The Wilson score interval from its closed form, computed here
    /// independently of `bpci`: centre `(p + z²/2n) / (1 + z²/n)`,
    /// half-width `z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)`.
    fn closed_form(k: u64, n: u64) -> (f64, f64) {
        let (k, n, z2) = (k as f64, n as f64, Z95 * Z95);
        let p = k / n;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        ((centre - half).max(0.0), (centre + half).min(1.0))
    }

    #[test]
    fn all_or_none_has_an_exact_edge() {
        let all = Rate::wilson(200, 200);
        assert_eq!(
            (all.high, all.render()),
            (1.0, "200/200 100.0% [98.1%, 100.0%]".to_string())
        );
        assert_eq!(Rate::wilson(0, 200).low, 0.0);
        assert_eq!(percent(1.0 - 1e-16), "100.0");
    }

    #[test]
    fn wilson_matches_known_values_and_the_closed_form() {
        // Known values (95%, z = 1.96): 0/10 upper 27.75%, 5/10
        // [23.66%, 76.34%], 10/10 lower 72.25%.
        let zero = Rate::wilson(0, 10);
        assert_eq!(zero.low, 0.0);
        assert!((zero.high - 0.2775).abs() < 5e-5, "{zero:?}");
        let half = Rate::wilson(5, 10);
        assert!(
            (half.low - 0.2366).abs() < 5e-5 && (half.high - 0.7634).abs() < 5e-5,
            "{half:?}"
        );
        let all = Rate::wilson(10, 10);
        assert!(
            (all.low - 0.7225).abs() < 5e-5 && all.high == 1.0,
            "{all:?}"
        );
        // Zero in 1000: the upper bound is z²/(n + z²), not 3/n (the rule
        // of three, 0.30%), and the render says it is a bound.
        let none = Rate::wilson(0, 1000);
        assert!((none.high - 0.003_827).abs() < 5e-7, "{none:?}");
        assert_eq!(none.render(), "0/1000 (95% upper bound 0.4%)");
        // A soak's figure keeps its digits: not "0.0%", not "100.0%".
        let none = Rate::wilson(0, 100_000);
        assert_eq!(none.render(), "0/100000 (95% upper bound 0.0038%)");
        let all = Rate::wilson(100_000, 100_000);
        assert_eq!(all.render(), "100000/100000 100.0% [99.9962%, 100.0%]");
        assert_eq!(percent(0.0005), "0.050");
        assert_eq!(percent(0.5), "50.0");
        assert_eq!(half.render(), "5/10 50.0% [23.7%, 76.3%]");
        for (k, n) in [
            (0, 10),
            (5, 10),
            (10, 10),
            (1, 3),
            (0, 1000),
            (999, 1000),
            (37, 1234),
        ] {
            let r = Rate::wilson(k, n);
            let (low, high) = closed_form(k, n);
            assert!(
                (r.low - low).abs() < 1e-9 && (r.high - high).abs() < 1e-9,
                "{k}/{n}: bpci {r:?}, closed form [{low}, {high}]"
            );
        }
        // No trials: the interval is everything.
        let empty = Rate::wilson(0, 0);
        assert_eq!((empty.rate, empty.low, empty.high), (0.0, 0.0, 1.0));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&v, 50.0), 50);
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&[7, 3, 400], 99.0), 400);
        assert_eq!(percentile(&[5], 99.0), 5);
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(percentile_sorted(&[1, 2, 3, 4], 75.0), 3);
    }

    #[test]
    fn buckets_hold_their_values_and_their_middles_are_near() {
        for v in (0..5000).chain([4095, 4096, 8191, 8192, 50_000, 1 << 40, u64::MAX]) {
            let b = bucket_of(v);
            let m = middle_of(b);
            assert_eq!(bucket_of(m), b, "{v}");
            assert!(m.abs_diff(v) as f64 <= v as f64 / 4096.0, "{v} {m}");
            if v < 4096 {
                assert_eq!(m, v);
            }
            assert!(bucket_of(v.saturating_add(1)) >= b);
        }
    }

    #[test]
    fn quantiles_are_exact_within_the_kept_values_and_below_4096() {
        let mut q = Quantiles::default();
        let mut all = Vec::new();
        for i in 0..20_000u64 {
            let v = (i * 7919) % 4000;
            q.add(v);
            all.push(v);
            if i % 997 == 0 || i == 19_999 {
                for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
                    assert_eq!(q.percentile(p), percentile(&all, p), "{i} p{p}");
                }
            }
        }
        assert_eq!(q.len(), 20_000);
        assert_eq!(q.median(), median(&all));
    }

    proptest! {
        #[test]
        fn quantiles_stay_within_a_4096th(
            v in proptest::collection::vec(0u64..10_000_000, 1..12_000),
            p in 0.0f64..=100.0,
        ) {
            let mut q = Quantiles::default();
            v.iter().for_each(|&x| q.add(x));
            let exact = percentile(&v, p);
            let got = q.percentile(p);
            prop_assert!(got.abs_diff(exact) as f64 <= exact as f64 / 4096.0, "{got} {exact}");
            if v.len() <= EXACT_KEPT {
                prop_assert_eq!(got, exact);
            }
            prop_assert_eq!(q.percentile(100.0), *v.iter().max().unwrap());
            prop_assert_eq!(q.percentile(0.0), *v.iter().min().unwrap());
        }

        #[test]
        fn the_50th_percentile_is_the_median(v in proptest::collection::vec(0u64..1000, 0..50)) {
            prop_assert_eq!(percentile(&v, 50.0), median(&v));
        }
    }

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
