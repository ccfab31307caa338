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

use crate::verdict::Verdict;

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

/// Whether a case whose trials gave `verdicts` fails: when any of them
/// does (a shrink step repeats its candidate K times, and one failing
/// trial of the K is enough, so a flaky failure is not lost).
pub fn case_fails(verdicts: impl IntoIterator<Item = Verdict>) -> bool {
    verdicts.into_iter().any(fails)
}

/// The verdict a failing case is reported with: the first failing one of
/// its trials, in the order given.
pub fn failing_verdict(verdicts: impl IntoIterator<Item = Verdict>) -> Option<Verdict> {
    verdicts.into_iter().find(|v| fails(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn one_failing_trial_of_k_fails_the_case() {
        use Verdict::*;
        assert!(!case_fails([Pass, Panic, Pass]));
        assert!(case_fails([Pass, Orphan, Pass]));
        assert!(!case_fails([]));
        assert_eq!(failing_verdict([Pass, Hang, Orphan]), Some(Hang));
        assert_eq!(failing_verdict([Pass, Panic]), None);
    }
}
