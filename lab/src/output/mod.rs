//! Writing the lab's output without ever panicking: `print!` and
//! `eprint!` panic when their stream fails (`lab list | head -1` closes the
//! pipe). Through [`write_out`] and [`write_err`] (and the `out!`, `outln!`
//! and `errln!` macros of `cli` over them), a stream that is closed
//! (`EPIPE`) or fails is written no more: the command goes on to its usual
//! exit status, quietly, when the reader left (a closed pipe is how a
//! reader says "enough"); any other failure of standard output (`>
//! /dev/full`, a full disk) is said in one line on standard error and makes
//! the exit status 3 ([`stdout_failed`]): the command's output is lost.
//!
//! This is a ground floor: the commands (`cli`) and the library under them
//! (`run`, `soak`, `fuzz`, `session`) write through it; it imports nothing
//! of the lab.
//!
//! - [`progress`]: the progress bar of a run, a soak or a fuzz.

pub mod progress;

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output failed or was closed: nothing more is written to it.
static STDOUT_DONE: AtomicBool = AtomicBool::new(false);
/// Standard output failed other than by a closed pipe: output was lost.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// Standard error failed or was closed: nothing more is written to it.
static STDERR_DONE: AtomicBool = AtomicBool::new(false);

/// Write `args` to standard output and flush, unless it has failed before;
/// a failure ends the output (see the module's doc).
pub fn write_out(args: fmt::Arguments<'_>) {
    if STDOUT_DONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_DONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            write_err(format_args!(
                "lab: cannot write to standard output ({e}); no more output\n"
            ));
        }
    }
}

/// Whether a write to standard output failed other than by a closed pipe
/// (`EPIPE`): some of the command's output was lost, and `lab` exits with
/// status 3 (the lab could not work) where it would have exited 0 or 1.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// Write `args` to standard error, unless it has failed before; a failure
/// ends it quietly (there is nowhere left to say so).
pub fn write_err(args: fmt::Arguments<'_>) {
    if STDERR_DONE.load(Ordering::Relaxed) {
        return;
    }
    let mut err = io::stderr().lock();
    if err.write_fmt(args).and_then(|()| err.flush()).is_err() {
        STDERR_DONE.store(true, Ordering::Relaxed);
    }
}
