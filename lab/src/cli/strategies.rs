//! `lab strategies`: the strategy presets and their axes.

use crate::error::{Exit, LabError};
use crate::strategy::{Strategy, AUTOKILL, AUTOKILL_ABOUT, PRESETS};

/// Print each preset's axes and guards switch, and the axis syntax.
pub(super) fn execute() -> Result<Exit, LabError> {
    for &(name, c, d, o, about) in PRESETS {
        let guards = if Strategy::canonical_axes(c, d, o) {
            "on"
        } else {
            "off"
        };
        outln!(
            "{name:<18} create={} death={} observe={} guards={guards}  {about}",
            c.name(),
            d.name(),
            o.name()
        );
    }
    let have = if lifeline::probe::autokill_supported() {
        "available here"
    } else {
        "not on this kernel"
    };
    outln!("{AUTOKILL:<18} ({have})  {AUTOKILL_ABOUT}");
    outln!(
        "{:<18} create=..,death=..,observe=..[,guards=on|off]  any axes; guards default to on exactly with canonical's axes",
        "(axes)"
    );
    Ok(Exit::Clean)
}
