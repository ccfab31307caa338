//! The one command that replays a trial: `lab run` of its scenario (with
//! its overrides or swept value), seed and strategy, one trial, with the
//! deadline and cgroup switch it ran with. (A suite's replay is a `lab
//! suite` command: `suite::Setup::suite_command`.)

use std::fmt::Write as _;

use crate::plan::Plan;
use crate::scenario::overrides::Override;
use crate::strategy::Strategy;

/// What a `lab run` replay command says besides the strategy.
#[derive(Clone, Copy, Debug)]
pub struct RunCommand<'a> {
    /// The scenario as the user named it (a built-in name or a path).
    pub scenario: &'a str,
    /// The plan's seed.
    pub seed: u64,
    /// Values set in the scenario (`--set KEY=VALUE`), a swept value
    /// included.
    pub overrides: &'a [Override],
    /// The deadline override (ms); `None`: the plan's own.
    pub deadline_ms: Option<u64>,
    /// Whether the trial ran without a cgroup (`--no-cgroup`).
    pub no_cgroup: bool,
}

impl RunCommand<'_> {
    /// `lab run SCENARIO --seed N [--set K=V]... --strategy S --trials 1
    /// [--deadline Dms] [--no-cgroup]`: the command that replays one trial
    /// under `strategy`.
    pub fn replay(&self, strategy: &Strategy) -> String {
        let mut cmd = format!("lab run {} --seed {}", self.scenario, self.seed);
        for o in self.overrides {
            let _ = write!(cmd, " --set {}={}", o.key, o.value);
        }
        let _ = write!(cmd, " --strategy {} --trials 1", strategy.name);
        if let Some(ms) = self.deadline_ms {
            let _ = write!(cmd, " --deadline {ms}ms");
        }
        if self.no_cgroup {
            cmd.push_str(" --no-cgroup");
        }
        cmd
    }

    /// The command that replays trial `trial` of `plan` under `strategy`:
    /// [`RunCommand::replay`], with [`trial_flag`].
    pub fn replay_trial(&self, strategy: &Strategy, plan: &Plan, trial: u64) -> String {
        format!("{}{}", self.replay(strategy), trial_flag(plan, trial))
    }
}

/// ` --trial K` when trial `trial` of `plan` draws something of its own
/// ([`Plan::index_draws`]: a kill moment drawn per trial, a host action's
/// chance), so that the one trial a replay runs is that one; empty
/// otherwise (every trial of the plan runs the same, and trial 0 will do).
pub fn trial_flag(plan: &Plan, trial: u64) -> String {
    if plan.index_draws() && trial > 0 {
        format!(" --trial {trial}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_that_draws_its_own_kill_moment_is_replayed_by_its_index() {
        let text = |per_trial: bool| {
            format!(
                "version = 1\nname = \"w\"\n[tree]\nbreadth = 1\ndepth = 1\n\
                 [[kill]]\ntarget = \"0\"\nat = \"spawn+1ms..9ms\"\nper_trial = {per_trial}\n"
            )
        };
        let plan = |per_trial| {
            Plan::new(
                &crate::scenario::Scenario::parse("w.toml", &text(per_trial)).unwrap(),
                3,
            )
        };
        let strategy = Strategy::parse("canonical").unwrap();
        let cmd = RunCommand {
            scenario: "w.toml",
            seed: 3,
            overrides: &[],
            deadline_ms: None,
            no_cgroup: false,
        };
        let base = "lab run w.toml --seed 3 --strategy canonical --trials 1";
        assert_eq!(
            cmd.replay_trial(&strategy, &plan(true), 7),
            format!("{base} --trial 7")
        );
        assert_eq!(cmd.replay_trial(&strategy, &plan(true), 0), base);
        assert_eq!(cmd.replay_trial(&strategy, &plan(false), 7), base);
    }

    #[test]
    fn a_replay_says_everything_the_trial_ran_with() {
        let strategy = Strategy::parse("legacy").unwrap();
        let overrides = [Override {
            key: "kill_delay".into(),
            value: "5ms".into(),
        }];
        let cmd = RunCommand {
            scenario: "nested",
            seed: 7,
            overrides: &overrides,
            deadline_ms: Some(800),
            no_cgroup: true,
        };
        assert_eq!(
            cmd.replay(&strategy),
            "lab run nested --seed 7 --set kill_delay=5ms --strategy legacy --trials 1 \
             --deadline 800ms --no-cgroup"
        );
    }
}
