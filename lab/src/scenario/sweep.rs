//! The values of a swept parameter (`kill_delay=5ms`, see
//! [`overrides::Sweep`](super::overrides::Sweep)), as written and as
//! numbers, their unit and their order: one order for every summary that
//! lists swept values (`lab report`, `lab plot`, the soak's summary).

/// The unit of a swept parameter's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepUnit {
    /// Durations (`5ms`, `1s`), as milliseconds.
    Millis,
    /// Plain numbers (`4`, `0.5`), or a number leading the text (`4x`).
    Number,
}

/// One value of a swept parameter, as written and as a number.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepValue {
    /// The parameter (`kill_delay`).
    pub key: String,
    /// The value as written in the CSV (`5ms`).
    pub text: String,
    /// The value as a number: a duration in ms, else the leading number;
    /// `None` when the text has no number.
    pub number: Option<(f64, SweepUnit)>,
}

impl SweepValue {
    /// Parse `text`: a plain number (`4`, `0.5`), a duration (`5ms`, `1.5s`,
    /// in ms), or text with a leading number (`4x`: 4). A kill time's
    /// prefix (`spawn+`, `child+`) is left out: `child+10ms` is 10 ms.
    pub fn parse(key: &str, text: &str) -> SweepValue {
        let t = text.trim();
        let t = ["spawn+", "child+"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        let number = if let Ok(x) = t.parse::<f64>() {
            Some((x, SweepUnit::Number))
        } else if let Ok(d) = humantime::parse_duration(t) {
            Some((d.as_secs_f64() * 1000.0, SweepUnit::Millis))
        } else {
            // The longest leading prefix that is a number.
            (1..=t.len())
                .rev()
                .filter(|&i| t.is_char_boundary(i))
                .find_map(|i| t[..i].parse::<f64>().ok())
                .map(|x| (x, SweepUnit::Number))
        };
        SweepValue {
            key: key.into(),
            text: text.into(),
            number: number.filter(|(x, _)| x.is_finite()),
        }
    }

    /// The value as a number (see [`SweepValue::number`]).
    pub fn value(&self) -> Option<f64> {
        self.number.map(|(x, _)| x)
    }

    /// Order: values with a number by that number, then the rest by text.
    pub fn order(a: &SweepValue, b: &SweepValue) -> std::cmp::Ordering {
        match (a.value(), b.value()) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.text.cmp(&b.text)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.text.cmp(&b.text),
        }
    }
}

/// The unit shared by `values`: [`SweepUnit::Millis`] when every value is a
/// duration (a plain `0` counts as one), [`SweepUnit::Number`] when every
/// value has a number, `None` when some value has none.
pub fn sweep_unit(values: &[SweepValue]) -> Option<SweepUnit> {
    if values.iter().any(|v| v.number.is_none()) {
        return None;
    }
    let millis = values.iter().all(|v| match v.number {
        Some((_, SweepUnit::Millis)) => true,
        Some((x, SweepUnit::Number)) => x == 0.0,
        None => false,
    }) && values
        .iter()
        .any(|v| matches!(v.number, Some((_, SweepUnit::Millis))));
    Some(if millis {
        SweepUnit::Millis
    } else {
        SweepUnit::Number
    })
}
