//! `lab`: parse the command line, run the command, and exit with the status
//! its result maps to (see [`lab::error::Exit`]): 0 clean (every strategy as
//! expected), 1 something was found (a verdict its scenario does not
//! expect), 2 bad input, 3 the lab could not work.

use std::process::ExitCode;

use clap::Parser;
use lab::error::Exit;

fn main() -> ExitCode {
    let result = lab::cli::execute(lab::cli::Cli::parse());
    if let Err(e) = &result {
        lab::output::write_err(format_args!("lab: {}\n", e.chain()));
    }
    Exit::of(&result).into()
}
