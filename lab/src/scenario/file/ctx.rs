//! Reading one value of a scenario file with its span: the [`Ctx`] of a
//! parse, whose readers (signals, durations, sizes, attendant actions,
//! selectors) turn a bad value into a [`ScenarioError`] at its place.

use std::time::Duration;

use crate::scenario::{AttendantAction, ScenarioError, Selector, Sp};
use crate::signal::Sig;

use super::MAX_DURATION;

/// The file being read: its name and text, for the spans of its errors.
pub(super) struct Ctx<'a> {
    /// The file's name, as errors print it.
    pub(super) file: &'a str,
    /// The file's text.
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// An error at `span` of the file.
    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ScenarioError> {
        Err(ScenarioError::at(
            self.file,
            self.text,
            span,
            message.into(),
        ))
    }

    /// A signal name (`KILL`, `SIGTERM`, ...).
    pub(super) fn signal(&self, s: &Sp<String>) -> Result<Sig, ScenarioError> {
        Sig::parse(s.get_ref()).map_or_else(
            || {
                self.err(
                    s.span(),
                    "unknown signal; use one of KILL, TERM, INT, HUP, QUIT, USR1, USR2",
                )
            },
            Ok,
        )
    }

    /// A duration (`5ms`, `200us`, `1s`), at most 24 hours.
    pub(super) fn duration(
        &self,
        s: &str,
        span: std::ops::Range<usize>,
    ) -> Result<Duration, ScenarioError> {
        let d = humantime::parse_duration(s.trim()).or_else(|e| {
            self.err(
                span.clone(),
                format!("not a duration ({e}); write it like \"5ms\", \"200us\" or \"1s\""),
            )
        })?;
        if d > MAX_DURATION {
            return self.err(span, "durations are at most 24h");
        }
        Ok(d)
    }

    /// A size in bytes: an integer, or a string parsed by `bytesize`:
    /// "64KiB", "1MiB", "1.5 MiB", "100B" (binary units `KiB`/`MiB`/`GiB`,
    /// decimal `KB`/`MB`/`GB`, any case); at most 1 GiB.
    pub(super) fn size(&self, v: &Sp<toml::Value>) -> Result<u64, ScenarioError> {
        const MAX: u64 = 1 << 30;
        let bytes = match v.get_ref() {
            toml::Value::Integer(i) if *i >= 0 => Some(*i as u64),
            toml::Value::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .ok()
                .map(|b| b.as_u64()),
            _ => None,
        };
        match bytes {
            Some(b) if b <= MAX => Ok(b),
            Some(_) => self.err(v.span(), "output is at most 1GiB"),
            None => self.err(
                v.span(),
                "a size is a number of bytes or a string like \"64KiB\", \"1MiB\", \"1GiB\"",
            ),
        }
    }

    /// An attendant action: `"none"`, `"init"`, `"start"` or `"use"`.
    pub(super) fn attendant(&self, a: &Sp<String>) -> Result<AttendantAction, ScenarioError> {
        Ok(match a.get_ref().as_str() {
            "none" => AttendantAction::None,
            "init" => AttendantAction::Init,
            "start" => AttendantAction::Start,
            "use" => AttendantAction::Use,
            _ => {
                return self.err(
                    a.span(),
                    "attendant is \"none\", \"init\" (create the global), \"start\" (start its worker) or \"use\" (ask it, creating and starting it if needed)",
                )
            }
        })
    }

    /// A node selector that names at least one node of a tree of `shape`.
    pub(super) fn selector(
        &self,
        s: &Sp<String>,
        shape: &[u32],
    ) -> Result<Selector, ScenarioError> {
        let Some(sel) = Selector::parse(s.get_ref()) else {
            return self.err(
                s.span(),
                "unknown node selector; use root, leaves, interior, depth:N, a path like 0.1, or *",
            );
        };
        if !sel.fits(shape) {
            return self.err(
                s.span(),
                format!("`{sel}` names no node of this tree (breadths per level: {shape:?})"),
            );
        }
        Ok(sel)
    }
}
