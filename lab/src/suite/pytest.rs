//! pytest as a suite source: collect with `python3 -m pytest --collect-only
//! -q ARGS`, run exactly the given node ids in the given order.

use std::collections::BTreeMap;
use std::time::Duration;

use super::runner::TestResult;
use crate::error::LabError;

/// The node ids pytest collects from `args`.
///
/// # Errors
/// [`LabError::Input`]: not yet supported.
pub fn list(args: &[String], _deadline: Duration) -> Result<Vec<String>, LabError> {
    Err(LabError::Input(format!(
        "--pytest {}: not supported yet",
        args.join(" ")
    )))
}

/// The test process that runs `names` in this order.
pub fn run_argv(args: &[String], names: &[&str]) -> Vec<String> {
    let mut v = vec!["python3".to_string(), "-m".into(), "pytest".into()];
    v.extend(args.iter().cloned());
    v.extend(names.iter().map(|n| n.to_string()));
    v
}

/// What pytest's `-v` output says of each test.
pub fn results(_stdout: &str) -> BTreeMap<String, TestResult> {
    BTreeMap::new()
}
