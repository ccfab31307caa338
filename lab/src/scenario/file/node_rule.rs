//! A `[nodes.SELECTOR]` table of a scenario file, checked field by field
//! into a [`NodeRule`].

use std::time::Duration;

use crate::scenario::{
    AttendantAction, Hazard, NodeRule, ReadDiscipline, ScenarioError, MAX_COMMAND_ARGS,
    MAX_SIGNAL_LIST,
};
use crate::signal::Sig;

use super::ctx::Ctx;
use super::RawNode;

/// Where a node table sets `env` or `cwd`, if it does.
pub(super) fn raw_rule_env_span(n: &RawNode) -> Option<std::ops::Range<usize>> {
    n.env
        .as_ref()
        .map(|e| e.span())
        .or_else(|| n.cwd.as_ref().map(|c| c.span()))
}

/// A `[nodes.SELECTOR]` table as a [`NodeRule`]: every field it sets,
/// checked in the order of the table's fields.
pub(super) fn node_rule(cx: &Ctx<'_>, n: &RawNode) -> Result<NodeRule, ScenarioError> {
    let exit_code = exit_code(cx, n)?;
    let expect_exit = expect_exit(cx, n)?;
    let exit_delay = exit_delay(cx, n)?;
    let command = command(cx, n)?;
    let startup = startup(cx, n)?;
    let env = env(cx, n)?;
    let cwd = cwd(cx, n)?;
    let threads = threads(cx, n)?;
    let hazard = hazard(cx, n)?;
    let attendant = attendant(cx, n)?;
    let hold_permille = hold_permille(cx, n)?;
    let read = read(cx, n)?;
    let output_bytes = output_bytes(cx, n)?;
    let dup_stdout = dup_stdout(cx, n)?;
    let ignore = ignore(cx, n)?;
    Ok(NodeRule {
        linger: n.linger,
        exit_code,
        expect_exit,
        exit_delay,
        exec: n.exec,
        startup,
        command,
        env,
        cwd,
        threads,
        hazard,
        attendant,
        hold_permille,
        spawn_from_thread: n.spawn_from_thread,
        capture: n.capture,
        log: n.log,
        read,
        output_bytes,
        dup_stdout,
        helper: n.helper,
        daemon: n.daemon,
        spin: n.spin,
        ignore,
        pid_reuse: n.pid_reuse,
    })
}

/// `exit_code`: 0..=255.
fn exit_code(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<u8>, ScenarioError> {
    Ok(match &n.exit_code {
        Some(c) => Some(
            u8::try_from(*c.get_ref()).or_else(|_| cx.err(c.span(), "an exit code is 0..=255"))?,
        ),
        None => None,
    })
}

/// `expect_exit`: 0..=255.
fn expect_exit(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<u8>, ScenarioError> {
    Ok(match &n.expect_exit {
        Some(c) => Some(
            u8::try_from(*c.get_ref())
                .or_else(|_| cx.err(c.span(), "an expected exit status is 0..=255"))?,
        ),
        None => None,
    })
}

/// `exit_delay`: a duration.
fn exit_delay(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Duration>, ScenarioError> {
    Ok(match &n.exit_delay {
        Some(d) => Some(cx.duration(d.get_ref(), d.span())?),
        None => None,
    })
}

/// `startup`: a duration, not on a table that sets `command` too (an
/// external program's start-up is its own).
fn startup(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Duration>, ScenarioError> {
    Ok(match &n.startup {
        Some(d) if n.command.is_some() => {
            return cx.err(
                d.span(),
                "startup is the start-up work of the lab's node program before it arms its parent-death detection; a command node runs an external program, whose start-up is its own",
            )
        }
        Some(d) => {
            let t = cx.duration(d.get_ref(), d.span())?;
            if t > MAX_STARTUP {
                return cx.err(d.span(), "startup is at most 10s");
            }
            Some(t)
        }
        None => None,
    })
}

/// The longest `startup`: a start-up, not a course of its own.
const MAX_STARTUP: Duration = Duration::from_secs(10);

/// `command`: a non-empty list of at most `MAX_COMMAND_ARGS` arguments without NUL.
fn command(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Vec<String>>, ScenarioError> {
    Ok(match &n.command {
        Some(c) if c.get_ref().is_empty() || c.get_ref()[0].is_empty() => {
            return cx.err(
                c.span(),
                "a command is a non-empty list: [\"program\", \"arg\", ...]",
            )
        }
        Some(c) if c.get_ref().len() > MAX_COMMAND_ARGS => {
            return cx.err(
                c.span(),
                format!("a command has at most {MAX_COMMAND_ARGS} arguments, the program included"),
            )
        }
        Some(c) if c.get_ref().iter().any(|a| a.contains('\0')) => {
            return cx.err(c.span(), "a command argument may not contain NUL")
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    })
}

/// `env`: at most `MAX_COMMAND_ARGS` `NAME=VALUE` strings without NUL.
fn env(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Vec<String>>, ScenarioError> {
    Ok(match &n.env {
        Some(e) if e.get_ref().len() > MAX_COMMAND_ARGS => {
            return cx.err(
                e.span(),
                format!("env has at most {MAX_COMMAND_ARGS} variables"),
            )
        }
        Some(e) => {
            for v in e.get_ref() {
                let key = v.split_once('=').map_or("", |(k, _)| k);
                if key.is_empty() || v.contains('\0') {
                    return cx.err(
                        e.span(),
                        "env is a list of \"NAME=VALUE\" strings, without NUL",
                    );
                }
            }
            Some(e.get_ref().clone())
        }
        None => None,
    })
}

/// `cwd`: a directory path without NUL.
fn cwd(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<String>, ScenarioError> {
    Ok(match &n.cwd {
        Some(c) if c.get_ref().is_empty() || c.get_ref().contains('\0') => {
            return cx.err(c.span(), "cwd is a directory path, without NUL")
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    })
}

/// `threads`: 0..=64.
fn threads(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<u32>, ScenarioError> {
    Ok(match &n.threads {
        Some(t) if !(0..=64).contains(t.get_ref()) => return cx.err(t.span(), "threads is 0..=64"),
        Some(t) => Some(*t.get_ref() as u32),
        None => None,
    })
}

/// `hazard`: `none`, `mutex` or `attendant`.
fn hazard(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Hazard>, ScenarioError> {
    Ok(match &n.hazard {
        Some(h) => Some(match h.get_ref().as_str() {
            "none" => Hazard::None,
            "mutex" => Hazard::Mutex,
            "attendant" => Hazard::Attendant,
            _ => return cx.err(h.span(), "a hazard is \"none\", \"mutex\" or \"attendant\""),
        }),
        None => None,
    })
}

/// `attendant`: an attendant action.
fn attendant(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<AttendantAction>, ScenarioError> {
    Ok(match &n.attendant {
        Some(a) => Some(cx.attendant(a)?),
        None => None,
    })
}

/// `hold` (a fraction 0.0..=1.0) in permille.
fn hold_permille(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<u32>, ScenarioError> {
    Ok(match &n.hold {
        Some(h) if !(0.0..=1.0).contains(h.get_ref()) => {
            return cx.err(
                h.span(),
                "hold is the fraction of time the lock is held, 0.0..=1.0",
            )
        }
        Some(h) => Some((h.get_ref() * 1000.0).round() as u32),
        None => None,
    })
}

/// `read`: `to-eof` or `after-exit`.
fn read(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<ReadDiscipline>, ScenarioError> {
    Ok(match &n.read {
        Some(r) => Some(match r.get_ref().as_str() {
            "to-eof" => ReadDiscipline::ToEof,
            "after-exit" => ReadDiscipline::AfterExit,
            _ => return cx.err(
                r.span(),
                "read is \"to-eof\" (read to EOF, then wait) or \"after-exit\" (wait, then read)",
            ),
        }),
        None => None,
    })
}

/// `output`: a size in bytes.
fn output_bytes(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<u64>, ScenarioError> {
    Ok(match &n.output {
        Some(o) => Some(cx.size(o)?),
        None => None,
    })
}

/// `dup_stdout`: an fd 3..=255.
fn dup_stdout(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<i32>, ScenarioError> {
    Ok(match &n.dup_stdout {
        Some(d) if !(3..=255).contains(d.get_ref()) => {
            return cx.err(
                d.span(),
                "dup_stdout is an fd number 3..=255 (the lab's own fds sit at 256 and above)",
            )
        }
        Some(d) => Some(*d.get_ref() as i32),
        None => None,
    })
}

/// `ignore`: at most `MAX_SIGNAL_LIST` signals, never KILL.
fn ignore(cx: &Ctx<'_>, n: &RawNode) -> Result<Option<Vec<Sig>>, ScenarioError> {
    Ok(match &n.ignore {
        Some(list) if list.len() > MAX_SIGNAL_LIST => {
            return cx.err(
                list[MAX_SIGNAL_LIST].span(),
                format!("ignore lists at most {MAX_SIGNAL_LIST} signals"),
            )
        }
        Some(list) => {
            let mut sigs = Vec::new();
            for s in list {
                let sig = cx.signal(s)?;
                if sig == Sig::Kill {
                    return cx.err(s.span(), "SIGKILL cannot be ignored");
                }
                sigs.push(sig);
            }
            Some(sigs)
        }
        None => None,
    })
}
