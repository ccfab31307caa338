//! `lab merge DIR... --out DIR`: join the CSVs of soak shards (or of any
//! result directories) into one, in a fixed order, so that the shards of a
//! soak merge to the same rows as the unsharded soak of the same seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::LabError;
use crate::record::csv::{read_rows, TRIALS_CSV};
use crate::record::trust::{Missing, OwnDir};
use crate::record::TrialRow;
use crate::record::{GroupSummary, Tally};

/// The identity of a trial: scenario, swept key and value, strategy, index.
type Key = (String, String, String, String, u64);

/// What `lab merge` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Merged {
    /// The CSV written.
    pub csv: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// Rows found twice with the same seed and plan (the same trial in two
    /// inputs), written once. (A trial twice in one input is refused.)
    pub duplicates: u64,
    /// The counts, rates and percentiles of the merged rows (also written to
    /// `out/summary.json`).
    pub groups: Vec<GroupSummary>,
}

/// Read `DIR/trials.csv` of every input, order the rows by scenario, swept
/// key and value, strategy and trial index, and write them to
/// `out/trials.csv`.
///
/// # Errors
/// [`LabError::Input`] for an input without a readable CSV of this schema,
/// an input or `out` that is not the caller's ([`OwnDir`]),
/// a trial twice in one input's CSV, or two rows of the same trial with
/// different seeds or plans (inputs of different soaks); [`LabError::Lab`] when the output cannot be written.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<Merged, LabError> {
    if inputs.is_empty() {
        return Err(LabError::Input(
            "give the result directories to merge".into(),
        ));
    }
    let mut rows: BTreeMap<Key, TrialRow> = BTreeMap::new();
    let mut duplicates = 0;
    for dir in inputs {
        let path = dir.join(TRIALS_CSV);
        // Read only what no other user can change.
        OwnDir::open(dir, Missing::Refuse)?.check_file(TRIALS_CSV)?;
        let read =
            read_rows(&path).map_err(|e| LabError::Input(format!("{}: {e}", path.display())))?;
        let mut here = std::collections::HashSet::new();
        for row in read {
            let key = (
                row.scenario.clone(),
                row.sweep_key.clone(),
                row.sweep_value.clone(),
                row.strategy.clone(),
                row.trial,
            );
            if !here.insert(key.clone()) {
                return Err(LabError::Input(format!(
                    "{}: trial {} of {} under {} appears twice in this file (two writers at \
                     once?): it is not one soak's result",
                    path.display(),
                    row.trial,
                    row.scenario,
                    row.strategy
                )));
            }
            match rows.get(&key) {
                Some(old) if (old.seed, &old.plan_hash) == (row.seed, &row.plan_hash) => {
                    duplicates += 1
                }
                Some(old) => {
                    return Err(LabError::Input(format!(
                        "{}: trial {} of {} under {} has seed {} here and seed {} in an earlier input: \
                         these are not shards of one soak",
                        path.display(),
                        row.trial,
                        row.scenario,
                        row.strategy,
                        row.seed,
                        old.seed
                    )))
                }
                None => {
                    rows.insert(key, row);
                }
            }
        }
    }
    // Written whole and renamed into place under the handle of a directory
    // of the caller's: a merge may replace an earlier merge's CSV, and never
    // writes through a symlink.
    let own = OwnDir::open(out, Missing::Create)?;
    let csv_path = out.join(TRIALS_CSV);
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows.values() {
        writer.serialize(row).expect("a row serializes");
    }
    let bytes = writer.into_inner().expect("a Vec takes every write");
    own.replace(TRIALS_CSV, &bytes)
        .map_err(|e| LabError::io(format!("cannot write {}", csv_path.display()), e))?;
    let mut tally = Tally::default();
    rows.values().for_each(|r| tally.add(r));
    let merged = Merged {
        csv: csv_path,
        rows: rows.len() as u64,
        duplicates,
        groups: tally.summaries(),
    };
    let summary = out.join("summary.json");
    own.replace(
        "summary.json",
        crate::json::to_string_pretty(&merged)
            .expect("a struct serializes")
            .as_bytes(),
    )
    .map_err(|e| LabError::io(format!("cannot write {}", summary.display()), e))?;
    Ok(merged)
}
