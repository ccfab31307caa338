//! The property `lab fuzz` checks: a trial of a generated scenario fails
//! when its verdict is one a user of a spawn primitive does not want to
//! see. Pure, and unit-tested here.
//!
//! Failing: `orphan`, `hang`, `leak`, `fail`, `error` (the brief's list),
//! and `early-death` and `innocent-kill` (a child killed while its parent
//! lives, a bystander killed by a stale PID: bugs of the strategy as much
//! as an orphan is). Not failing: `pass`, and `panic`: the canonical
//! strategy turns every deadlock it sees coming into a `panic` with a
//! diagnosis, in milliseconds, which is its intended answer (the casebook's
//! `[expect]` lists `panic` for canonical). A plan the strategy refuses at
//! plan time (the canonical primitive never copies a threaded process) is
//! run like any other: its trials are `panic` verdicts, so a refusal is not
//! a failure either.
//!
//! A failing trial falls in a [`FailureClass`]: its verdict together with
//! the set of signatures its forensics named (`docs/design.md`, "failure
//! class"). Two trials fail *the same way* when their classes are equal;
//! shrinking accepts a candidate only when it fails the same way as the
//! case it started from ([`same_failure`]), and the exploration shrinks one
//! case per class.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::forensics::Signature;
use crate::verdict::{Outcome, Verdict};

/// Whether a trial with `verdict` fails the property.
pub fn fails(verdict: Verdict) -> bool {
    match verdict {
        Verdict::Pass | Verdict::Panic => false,
        Verdict::Orphan
        | Verdict::Hang
        | Verdict::Leak
        | Verdict::Fail
        | Verdict::Error
        | Verdict::EarlyDeath
        | Verdict::InnocentKill => true,
    }
}

/// How a trial failed: its verdict and the signatures named in it
/// ([`Outcome::signatures`]: found by the forensics of a hang or orphan,
/// or by the supervisor for a spinning process). Ordered by verdict, then
/// by signature set (report order).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FailureClass {
    /// The verdict.
    pub verdict: Verdict,
    /// The signatures named, each once, in report order (empty when the
    /// forensics named none).
    pub signatures: BTreeSet<Signature>,
}

impl FailureClass {
    /// The class of `outcome`; `None` when it holds the property.
    pub fn of(outcome: &Outcome) -> Option<FailureClass> {
        fails(outcome.verdict).then(|| FailureClass {
            verdict: outcome.verdict,
            signatures: outcome.signatures.iter().copied().collect(),
        })
    }
}

impl fmt::Display for FailureClass {
    /// `hang (lone-futex-waiter)`, `hang (full-pipe, spinning)`, or the
    /// verdict alone when no signature was named (`orphan`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.verdict)?;
        if !self.signatures.is_empty() {
            let names: Vec<&str> = self.signatures.iter().map(|g| g.name()).collect();
            write!(f, " ({})", names.join(", "))?;
        }
        Ok(())
    }
}

/// Whether `outcome` fails the same way as `class`: it fails, with the
/// same verdict and the same set of signatures (equal sets: a signature
/// lost or gained is another shape of stuck state, so another bug).
pub fn same_failure(class: &FailureClass, outcome: &Outcome) -> bool {
    FailureClass::of(outcome).as_ref() == Some(class)
}

/// The first of a shrink candidate's trials that fails the same way as
/// `class` ([`same_failure`]), if any: one of its K trials is enough, so a
/// flaky failure is not lost, and a candidate whose trials fail only in
/// other ways is not the same bug.
pub fn first_same_failure<'a>(
    class: &FailureClass,
    outcomes: impl IntoIterator<Item = &'a Outcome>,
) -> Option<&'a Outcome> {
    outcomes.into_iter().find(|o| same_failure(class, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outcome with `verdict` and `signatures`.
    fn outcome(verdict: Verdict, signatures: &[Signature]) -> Outcome {
        let mut o = Outcome::error(String::new(), 0);
        o.verdict = verdict;
        o.signatures = signatures.to_vec();
        o
    }

    #[test]
    fn a_shrink_step_keeps_the_verdict_and_the_signatures() {
        use Signature::*;
        let hang = outcome(Verdict::Hang, &[LoneFutexWaiter]);
        let class = FailureClass::of(&hang).unwrap();
        assert_eq!(class.to_string(), "hang (lone-futex-waiter)");
        // A hang that shrinks to a daemon orphan is another bug: rejected.
        let orphan = outcome(Verdict::Orphan, &[]);
        assert!(!same_failure(&class, &orphan));
        // The same verdict with another signature, none, or one more:
        // rejected too.
        assert!(!same_failure(&class, &outcome(Verdict::Hang, &[FullPipe])));
        assert!(!same_failure(&class, &outcome(Verdict::Hang, &[])));
        let more = outcome(Verdict::Hang, &[LoneFutexWaiter, WriterElsewhere]);
        assert!(!same_failure(&class, &more));
        // The same verdict and signature: accepted.
        assert!(same_failure(
            &class,
            &outcome(Verdict::Hang, &[LoneFutexWaiter])
        ));
        // A class without signatures keeps its verdict and its lack of one.
        let bare = FailureClass::of(&orphan).unwrap();
        assert_eq!(bare.to_string(), "orphan");
        assert!(same_failure(&bare, &outcome(Verdict::Orphan, &[])));
        assert!(!same_failure(&bare, &hang));
        // A passing trial has no class and is never the same failure.
        assert_eq!(FailureClass::of(&outcome(Verdict::Pass, &[])), None);
        assert!(!same_failure(
            &class,
            &outcome(Verdict::Panic, &[LoneFutexWaiter])
        ));
        // Of K trials, the first that fails the same way is kept.
        let trials = [orphan.clone(), outcome(Verdict::Pass, &[]), hang.clone()];
        assert_eq!(first_same_failure(&class, &trials), Some(&trials[2]));
        assert_eq!(first_same_failure(&class, &trials[..2]), None);
    }

    #[test]
    fn pass_and_panic_hold_the_property_and_the_rest_fail_it() {
        let holding: Vec<Verdict> = Verdict::ALL.into_iter().filter(|v| !fails(*v)).collect();
        assert_eq!(holding, vec![Verdict::Pass, Verdict::Panic]);
        for v in [
            Verdict::Orphan,
            Verdict::Hang,
            Verdict::Leak,
            Verdict::Fail,
            Verdict::Error,
            Verdict::EarlyDeath,
            Verdict::InnocentKill,
        ] {
            assert!(fails(v), "{v}");
        }
    }
}
