//! `lab`: parse the command line, run the command, and exit with the status
//! its result maps to (see [`lab::error::Exit`]): 0 clean (every strategy as
//! expected), 1 something was found (a verdict its scenario does not
//! expect), 2 bad input, 3 the lab could not work (also when standard
//! output failed and the command's output was lost; a closed pipe is not a
//! failure).

use std::process::ExitCode;

use clap::Parser;
use lab::error::Exit;

fn main() -> ExitCode {
    // Before any thread starts (the signal watch, the workers).
    lab::session::grow_fd_table();
    let result = lab::cli::execute(lab::cli::Cli::parse());
    if let Err(e) = &result {
        lab::output::write_err(format_args!("lab: {}\n", e.chain()));
    }
    match Exit::of(&result) {
        // Output lost to a failed standard output (not a closed pipe).
        Exit::Clean | Exit::Found if lab::output::stdout_failed() => Exit::Lab.into(),
        exit => exit.into(),
    }
}
