//! The `out!`, `outln!` and `errln!` macros of the commands: `print!`,
//! `println!` and `eprintln!` that never panic, over
//! [`crate::output::write_out`] and [`crate::output::write_err`] (see
//! `output` for what happens when a stream fails).

/// `print!` that never panics: [`crate::output::write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `println!` that never panics: [`crate::output::write_out`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: [`crate::output::write_err`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}
