//! The wrap's judgement (pure): from the trial's [`Outcome`] and the
//! options of `lab wrap` to its exit status, its verdict and the short
//! report on stderr.
//!
//! Exit statuses, in order:
//! - the lab could not run the trial: 3 (`error`);
//! - the program was still running at `--deadline`: [`DEADLINE_EXIT`]
//!   (124, as `timeout(1)`), after its diagnosis;
//! - it left processes alive that no `--allow` lets go (`orphan`), or with
//!   `--leak` some process held its stdout or stderr open (`leak`): its own
//!   status when it failed, else `--orphan-exit` ([`DEFAULT_ORPHAN_EXIT`]);
//! - else its own status, or 128 + N when signal N ended it, as a shell
//!   reports it.

use crate::forensics::Diagnosis;
use crate::text::bounded;
use crate::trial::wrap_control::TERM_SUBJECT;
use crate::verdict::{NamedProcess, Outcome, Verdict};

/// The default of `--orphan-exit`: 99. Not a status any runner gives a
/// meaning of its own: Rust's test harness fails with 101, pytest uses 1
/// to 5, make 2, a shell 126 and 127 and 128 + N, `timeout(1)` 124; and
/// below 126, so no shell mistakes it for a signal.
pub const DEFAULT_ORPHAN_EXIT: u8 = 99;
/// The exit status when the program was still running at `--deadline`:
/// 124, as `timeout(1)` gives it.
pub const DEADLINE_EXIT: i32 = 124;
/// The exit status when the lab could not run the trial.
pub const LAB_EXIT: i32 = 3;

/// What `lab wrap` judges with.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `--allow` patterns: a survivor whose command line matches one goes
    /// unreported (`*` any characters, `?` one; the whole line).
    pub allow: Vec<String>,
    /// `--leak`: a survivor, allowed or not, that holds the wrap's stdout
    /// or stderr open fails the wrap.
    pub leak: bool,
    /// `--orphan-exit`.
    pub orphan_exit: u8,
    /// The targets of the wrap's own stdout and stderr (`pipe:[N]`,
    /// `/dev/pts/0`, a path), as `/proc/PID/fd` shows them: `(name,
    /// target)`.
    pub stdio: Vec<(&'static str, String)>,
}

/// The wrap's judgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// `lab wrap`'s exit status.
    pub status: i32,
    /// The verdict of the wrap (the CSV row's).
    pub verdict: Verdict,
    /// Why, for a verdict other than `pass` (the CSV row's reason).
    pub reason: Option<String>,
    /// The report on stderr: one line when clean, a paragraph per
    /// survivor otherwise (each line ends with a line break).
    pub text: String,
    /// The survivors let go by `--allow` (their descriptions).
    pub allowed: Vec<String>,
    /// The program left nothing behind (or only what `--allow` lets go)
    /// and no diagnosis was taken, whatever its exit status: `--quiet`
    /// then prints nothing.
    pub clean: bool,
}

/// A shell's status for [`Outcome::root_exit`]: the exit status, or 128 +
/// the signal.
pub fn shell_status(exit: i64) -> i32 {
    if exit >= 256 {
        128 + (exit - 256) as i32
    } else {
        exit as i32
    }
}

/// How the program ended, in words: `exited with status 3`, `was ended
/// by signal 15`.
fn ended(exit: Option<i64>) -> String {
    match exit {
        Some(e) if e >= 256 => format!("was ended by signal {}", e - 256),
        Some(e) => format!("exited with status {e}"),
        None => "was not reaped".into(),
    }
}

/// Whether `line` matches `pattern` as a whole (`*`: any characters, `?`:
/// one).
pub fn matches(pattern: &str, line: &str) -> bool {
    let (p, l): (Vec<char>, Vec<char>) = (pattern.chars().collect(), line.chars().collect());
    // Classic wildcard matching with one backtrack point.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < l.len() {
        if i < p.len() && (p[i] == '?' || p[i] == l[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Judge the trial of `command` that ended in `o`.
pub fn judge(command: &str, o: &Outcome, rules: &Rules) -> Judgement {
    let cmd = bounded(command, 120);
    let own = o.root_exit.map(shell_status);
    match o.verdict {
        Verdict::Error => {
            let why = o.reason.clone().unwrap_or_default();
            return Judgement {
                status: LAB_EXIT,
                verdict: Verdict::Error,
                text: format!("lab wrap: cannot run `{cmd}`: {why}\n"),
                reason: Some(why),
                allowed: Vec::new(),
                clean: false,
            };
        }
        Verdict::Hang => return hang(&cmd, o),
        _ => {}
    }
    let (allowed, reported): (Vec<&NamedProcess>, Vec<&NamedProcess>) = o
        .named
        .iter()
        .partition(|p| rules.allow.iter().any(|a| matches(a, &p.command)));
    let held = if rules.leak {
        holders(o.diagnosis.as_ref(), &rules.stdio)
    } else {
        Vec::new()
    };
    let allowed: Vec<String> = allowed.iter().map(|p| p.description.clone()).collect();
    let how = ended(o.root_exit);
    let at_term = term_diagnosis(o);
    if reported.is_empty() && held.is_empty() {
        let status = own.unwrap_or(LAB_EXIT);
        let mut text = format!("lab wrap: `{cmd}` {how}; nothing left behind\n");
        if !allowed.is_empty() {
            text = format!(
                "lab wrap: `{cmd}` {how}; left only what --allow lets go, ended with the trial: {}\n",
                allowed.join("; ")
            );
        }
        let clean = at_term.is_empty();
        text.push_str(&at_term);
        let verdict = if status == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        return Judgement {
            status,
            verdict,
            reason: (verdict != Verdict::Pass).then(|| format!("`{cmd}` {how}")),
            text,
            allowed,
            clean,
        };
    }
    let status = match own {
        Some(s) if s != 0 => s,
        _ => i32::from(rules.orphan_exit),
    };
    let verdict = if held.is_empty() {
        Verdict::Orphan
    } else {
        Verdict::Leak
    };
    let evidence = o
        .reason
        .as_deref()
        .and_then(evidence)
        .unwrap_or("alive after it exited");
    let mut text = format!(
        "lab wrap: {verdict}: `{cmd}` {how} and left {} behind (all ended now); exit status {status}\n",
        crate::text::plural(o.named.len().max(reported.len()) as u64, "process"),
    );
    let mut reasons = Vec::new();
    for p in &reported {
        text.push_str(&format!("  orphan: {}\n    {evidence}\n", p.description));
        if let Some(line) = state_line(o.diagnosis.as_ref(), &p.description) {
            text.push_str(&format!("    {line}\n"));
        }
        reasons.push(p.description.clone());
    }
    for h in &held {
        text.push_str(&format!("  leak: {h}\n"));
        reasons.push(h.clone());
    }
    if !allowed.is_empty() {
        text.push_str(&format!("  allowed (--allow): {}\n", allowed.join("; ")));
    }
    text.push_str(&at_term);
    Judgement {
        status,
        verdict,
        reason: Some(format!("{evidence}: {}", reasons.join("; "))),
        text,
        allowed,
        clean: false,
    }
}

/// The program was still running at `--deadline`: its diagnosis, then
/// [`DEADLINE_EXIT`].
fn hang(cmd: &str, o: &Outcome) -> Judgement {
    let why = o.reason.clone().unwrap_or_default();
    let mut text = format!(
        "lab wrap: hang: `{cmd}` was still running at its --deadline; diagnosed, then ended; \
         exit status {DEADLINE_EXIT}\n  {why}\n"
    );
    if let Some(d) = &o.diagnosis {
        for line in d.summary().lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    Judgement {
        status: DEADLINE_EXIT,
        verdict: Verdict::Hang,
        reason: Some(why),
        text,
        allowed: Vec::new(),
        clean: false,
    }
}

/// The diagnosis taken when a SIGTERM (a runner's timeout) found the
/// program running, before it got it, as lines of the report; empty when
/// none was.
fn term_diagnosis(o: &Outcome) -> String {
    let Some(d) = o
        .diagnosis
        .as_ref()
        .filter(|d| d.subject.verdict == TERM_SUBJECT)
    else {
        return String::new();
    };
    let mut text = "  diagnosed at SIGTERM, before the program got it:\n".to_string();
    for line in d.summary().lines().skip(1) {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

/// The evidence of an orphan reason (`alive after `X` exited once the
/// trial was quiescent (...)`): the reason up to its list of processes.
fn evidence(reason: &str) -> Option<&str> {
    let list = reason.find(" outside the plan: ")?;
    let head = &reason[..list];
    let cut = head.rfind(": ")?;
    // After a `fail` it outranks, the orphan's own words.
    let from = head.find("alive after").unwrap_or(0);
    Some(&reason[from.min(cut)..cut])
}

/// The diagnosis's line on the survivor `description` names (`pid N`):
/// its state, where it waits and how.
fn state_line(d: Option<&Diagnosis>, description: &str) -> Option<String> {
    let pid: i32 = description
        .strip_prefix("pid ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let line = d?
        .summary()
        .lines()
        .find(|l| l.contains(&format!("pid {pid} ")))?
        .trim()
        .to_string();
    Some(line)
}

/// The processes of the diagnosis that hold the wrap's stdout or stderr
/// open for writing: `fd 1 of pid N (`cmd`) holds the stdout (pipe:[M])`.
fn holders(d: Option<&Diagnosis>, stdio: &[(&'static str, String)]) -> Vec<String> {
    let Some(d) = d else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in &d.processes {
        for f in &p.fds {
            if let Some((name, target)) = stdio
                .iter()
                .find(|(_, t)| *t == f.target && f.mode.contains('w'))
            {
                let cmd = if p.cmdline.is_empty() {
                    &p.comm
                } else {
                    &p.cmdline
                };
                out.push(format!(
                    "fd {} of pid {} (`{}`) holds the {name} ({target}) open",
                    f.fd,
                    p.pid,
                    bounded(cmd, 120)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            orphan_exit: DEFAULT_ORPHAN_EXIT,
            ..Rules::default()
        }
    }

    fn ended_with(exit: i64, named: &[&str]) -> Outcome {
        let mut o = Outcome::error(String::new(), 0);
        o.verdict = if named.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Orphan
        };
        o.reason = (!named.is_empty()).then(|| {
            "alive after `t` exited once the trial was quiescent (x): 1 process outside the plan: y"
                .to_string()
        });
        o.root_exit = Some(exit);
        o.named = named
            .iter()
            .map(|c| NamedProcess {
                command: c.to_string(),
                description: format!("pid 7 (`{c}`)"),
            })
            .collect();
        o
    }

    #[test]
    fn patterns_match_whole_command_lines() {
        assert!(matches("sleep *", "sleep 30"));
        assert!(matches("*daemon*", "/usr/bin/my-daemon --fg"));
        assert!(matches("sleep 3?", "sleep 30"));
        assert!(!matches("sleep", "sleep 30"));
        assert!(!matches("sleep 3?", "sleep 300"));
        assert!(matches("*", ""));
    }

    #[test]
    fn the_status_is_the_programs_unless_it_left_something() {
        assert_eq!(shell_status(256 + 15), 143);
        let j = judge("t", &ended_with(0, &[]), &rules());
        assert_eq!((j.status, j.verdict, j.clean), (0, Verdict::Pass, true));
        assert_eq!(j.text.lines().count(), 1);
        // Failed, but left nothing: --quiet says nothing of it either.
        let j = judge("t", &ended_with(256 + 9, &[]), &rules());
        assert_eq!((j.status, j.verdict, j.clean), (137, Verdict::Fail, true));
        let j = judge("t", &ended_with(0, &["sleep 30"]), &rules());
        assert_eq!((j.status, j.verdict, j.clean), (99, Verdict::Orphan, false));
        assert!(j.text.contains("orphan: pid 7 (`sleep 30`)"), "{}", j.text);
        assert!(j
            .text
            .contains("    alive after `t` exited once the trial was quiescent (x)\n"));
        let j = judge("t", &ended_with(4, &["sleep 30"]), &rules());
        assert_eq!((j.status, j.verdict), (4, Verdict::Orphan));
        let mut allow = rules();
        allow.allow = vec!["sleep *".into()];
        let j = judge("t", &ended_with(0, &["sleep 30"]), &allow);
        assert_eq!(
            (j.status, j.verdict, j.allowed.len(), j.clean),
            (0, Verdict::Pass, 1, true)
        );
        let mut o = ended_with(0, &[]);
        o.verdict = Verdict::Error;
        assert_eq!(judge("t", &o, &rules()).status, LAB_EXIT);
        o.verdict = Verdict::Hang;
        let j = judge("t", &o, &rules());
        assert_eq!((j.status, j.clean), (DEADLINE_EXIT, false));
    }
}
