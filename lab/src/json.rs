//! The lab's JSON: one schema number for every command's `--format json`
//! (and the `summary.json` files, which hold the same), and the serde
//! helpers that keep every object key snake_case.
//!
//! The rules (docs/results-format.md, "JSON output"): every key is
//! snake_case; a map keyed by verdict (`rates`, `verdicts`, `reasons`) writes
//! the verdict's name in snake_case (`early_death`, as the count fields of
//! `lab run` do), while a verdict or signature as a *value* keeps its name
//! (`"early-death"`); a map keyed by free text (signatures, reasons, panic
//! sites) is written as a list of `{"name": ..., "trials": N}`; seeds are
//! strings.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// The version of the lab's JSON outputs, the top-level `schema` of each.
/// Raised when a key is renamed or removed, or changes meaning.
pub const SCHEMA: u32 = 1;

/// `value` with the `schema` key first.
#[derive(Serialize)]
struct Versioned<'a, T: ?Sized> {
    schema: u32,
    #[serde(flatten)]
    value: &'a T,
}

/// `value` as pretty JSON with the top-level `schema` key.
///
/// # Errors
/// When `value` does not serialize as an object (every output of the lab
/// does: the `json` integration test runs each command).
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Versioned {
        schema: SCHEMA,
        value,
    })
}

/// A key written as JSON writes it: `early-death` as `early_death`.
pub fn snake_case(key: &str) -> String {
    key.replace('-', "_")
}

/// A map keyed by verdict name, with the keys in snake_case
/// (`#[serde(serialize_with = "crate::json::verdict_keys")]`).
///
/// # Errors
/// The serializer's.
pub fn verdict_keys<S: Serializer, V: Serialize>(
    map: &BTreeMap<String, V>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (snake_case(k), v)))
}

/// One entry of a count keyed by free text.
#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    trials: u64,
}

/// A count keyed by free text (a signature, a reason, a site) as a list of
/// `{"name": ..., "trials": N}`, in the map's order
/// (`#[serde(serialize_with = "crate::json::named_counts")]`).
///
/// # Errors
/// The serializer's.
pub fn named_counts<S: Serializer>(map: &BTreeMap<String, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.iter().map(|(name, &trials)| Named { name, trials }))
}

/// Counts keyed by verdict, then by free text: the verdicts in snake_case,
/// each with its list of [`named_counts`]
/// (`#[serde(serialize_with = "crate::json::named_counts_by_verdict")]`).
///
/// # Errors
/// The serializer's.
pub fn named_counts_by_verdict<S: Serializer>(
    map: &BTreeMap<String, BTreeMap<String, u64>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    /// One verdict's counts.
    struct List<'a>(&'a BTreeMap<String, u64>);
    impl Serialize for List<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            named_counts(self.0, s)
        }
    }
    s.collect_map(map.iter().map(|(k, v)| (snake_case(k), List(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Out {
        #[serde(serialize_with = "verdict_keys")]
        rates: BTreeMap<String, u64>,
        #[serde(serialize_with = "named_counts")]
        signatures: BTreeMap<String, u64>,
        #[serde(serialize_with = "named_counts_by_verdict")]
        reasons: BTreeMap<String, BTreeMap<String, u64>>,
    }

    #[test]
    fn schema_comes_first_and_keys_are_snake_case() {
        let out = Out {
            rates: BTreeMap::from([("early-death".to_string(), 1)]),
            signatures: BTreeMap::from([("writer-elsewhere".to_string(), 2)]),
            reasons: BTreeMap::from([(
                "innocent-kill".to_string(),
                BTreeMap::from([("killed pid N".to_string(), 3)]),
            )]),
        };
        let json = to_string_pretty(&out).unwrap();
        assert!(json.starts_with("{\n  \"schema\": 1,"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["rates"]["early_death"], 1);
        assert_eq!(
            v["signatures"],
            serde_json::json!([{"name": "writer-elsewhere", "trials": 2}])
        );
        assert_eq!(
            v["reasons"]["innocent_kill"],
            serde_json::json!([{"name": "killed pid N", "trials": 3}])
        );
    }

    #[test]
    fn a_value_that_is_no_object_is_an_error_not_a_panic() {
        assert!(to_string_pretty(&[1, 2]).is_err());
    }
}
