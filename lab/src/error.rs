//! [`LabError`]: bad input (exit 2) or a lab that could not work (exit 3).

use std::fmt;

/// Why a command could not run.
#[derive(Debug)]
pub enum LabError {
    /// The user asked for something invalid or impossible (exit status 2).
    Input(String),
    /// The lab itself could not work (exit status 3), with the reason.
    Lab(String),
}

impl LabError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Input(_) => 2,
            LabError::Lab(_) => 3,
        }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Input(m) | LabError::Lab(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LabError {}

impl From<crate::scenario::ScenarioError> for LabError {
    fn from(e: crate::scenario::ScenarioError) -> Self {
        LabError::Input(e.to_string())
    }
}
