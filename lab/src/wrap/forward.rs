//! The signals a runner sends `lab wrap` (SIGINT for Ctrl-C, SIGTERM for a
//! slow-timeout, SIGHUP, SIGQUIT), caught from the start and written, one
//! byte each ([`control_byte`]), to the control pipe of the wrap
//! supervisor, which sends them on to the program. A signal that comes
//! before the program runs waits (in signal-hook's self-pipe, then in the
//! control pipe) and reaches it as it starts.

use std::os::fd::OwnedFd;

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::signal::Sig;
use crate::trial::protocol::control_byte;

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT caught ([`catch`]), not yet
/// forwarded ([`Caught::forward`]).
#[derive(Debug)]
pub struct Caught {
    signals: Signals,
    control: OwnedFd,
}

/// Catch SIGINT, SIGTERM, SIGHUP and SIGQUIT from now on (signal-hook's
/// self-pipe: the handler only writes a byte), to be forwarded to
/// `control`, the write end of the control pipe. No thread starts yet: the
/// wrap forks its supervisor while it has one thread.
///
/// # Errors
/// The kernel's error when the handlers cannot be installed.
pub fn catch(control: OwnedFd) -> std::io::Result<Caught> {
    Ok(Caught {
        signals: Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])?,
        control,
    })
}

impl Caught {
    /// Forward each signal caught, from now on and since [`catch`], to the
    /// control pipe, from a thread of its own.
    ///
    /// # Errors
    /// The kernel's error when the thread cannot be made.
    pub fn forward(self) -> std::io::Result<()> {
        let Caught {
            mut signals,
            control,
        } = self;
        std::thread::Builder::new()
            .name("lab-wrap-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    let sig = match sig {
                        SIGINT => Sig::Int,
                        SIGTERM => Sig::Term,
                        SIGHUP => Sig::Hup,
                        _ => Sig::Quit,
                    };
                    // A full pipe (a runner sending thousands) loses the rest.
                    let _ = rustix::io::write(&control, &[control_byte(sig)]);
                }
            })?;
        Ok(())
    }
}
