//! What one test did in one run of its test process, as its runner's
//! output says (libtest's `test NAME ... ok`, pytest's `-v` lines): the
//! vocabulary of [`super::libtest`] and [`super::pytest`], read by
//! [`super::runner`].

/// What one test did in one run of the test process, from its runner's
/// output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestResult {
    /// It passed.
    Ok,
    /// It failed, with the runner's message (may be empty).
    Failed(String),
    /// It was skipped (ignored): not counted.
    Skipped,
    /// It started and did not finish: it was running when the process
    /// hung or died.
    Running,
}
