//! The examples of every command: the `Examples:` section of its `--help`
//! (clap's `after_help`) and the EXAMPLES section of its man page (`lab
//! man`). Each is a real command, run from the repository's root; a test
//! parses every one of them with the lab's own command line.

use clap::builder::StyledStr;

/// One example: what it does and the command.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// What the command does, as a sentence without its full stop.
    pub what: &'static str,
    /// The command line, as typed in a shell.
    pub command: &'static str,
}

/// `Example { what, command }`, shorter.
const fn ex(what: &'static str, command: &'static str) -> Example {
    Example { what, command }
}

/// Each command's examples (`lab` for the program itself).
static EXAMPLES: &[(&str, &[Example])] = &[
    ("lab", &[
        ex("The main job: nested under canonical and legacy, 100 trials each", "lab run nested --seed 1"),
        ex("Every shipped scenario, 1000 trials per strategy, streamed to a CSV", "lab soak --all --trials 1000"),
        ex("The built-in scenarios, with what each reproduces", "lab list"),
    ]),
    ("run", &[
        ex("nested under canonical and legacy, 100 trials each (exit 0: each gave what its [expect] says)", "lab run nested --seed 1"),
        ex("Replay one plan 20 times under legacy and print how often it reproduces", "lab run pdeathsig-race --seed 7 --strategy legacy --repeat 20"),
        ex("A scenario file with one key changed, 20 trials, the summary as JSON", "lab run scenarios/nested.toml --set depth=2 --trials 20 --format json"),
    ]),
    ("soak", &[
        ex("Every shipped scenario, 1000 trials per strategy", "lab soak --all --trials 1000"),
        ex("For CI: the same with a JUnit file, one test case per scenario x strategy", "lab soak --all --trials 1000 --junit results/junit.xml"),
        ex("The same as CTRF JSON (ctrf.io) beside the JUnit file", "lab soak --all --trials 1000 --junit results/junit.xml --ctrf results/ctrf.json"),
        ex("How a fork without exec deadlocks as its parent has more threads: 1 to 8, 200 trials each", "lab soak --scenario mt-fork-mutex --strategy fork-noexec --sweep threads=1..8/8 --trials 200"),
        ex("Shard 1 of 4 of a soak (the other shards elsewhere; join them with lab merge)", "lab soak --scenario nested --trials 10000 --shard 1/4 --out results/shard-1"),
        ex("Continue that soak where it stopped", "lab soak --resume results/shard-1"),
        ex("The nightly gate: exit 1 unless every canonical trial passes", "lab soak --scenario nested --trials 1000 --gate canonical"),
    ]),
    ("exec", &[
        ex("A shell that leaves a background sleep behind: 200 trials, each an orphan named with its command line", "lab exec --trials 200 -- sh -c 'sleep 30 & exit 0'"),
        ex("Kill a program 5 to 200 ms after its start, each trial at a moment of its own, with TERM, then KILL 100 ms later if it lives", "lab exec --kill-after 5ms..200ms --signal TERM,KILL --grace 100ms -- sh -c 'sleep 30 & wait'"),
        ex("Trial 17 of that run alone, killed at the moment it drew", "lab exec --kill-after 5ms..200ms --signal TERM,KILL --grace 100ms --trials 1 --trial 17 -- sh -c 'sleep 30 & wait'"),
        ex("A test runner's view: stdout and stderr read to EOF, a process still holding them is a leak", "lab exec --capture --trials 20 -- sh -c 'sleep 30 & echo started'"),
    ]),
    ("wrap", &[
        ex("A shell that leaves a background sleep: its output as it is, then the sleep named with its lineage; exit 99", "lab wrap -- sh -c 'sleep 300 & echo done'"),
        ex("A test binary as cargo runs it with CARGO_TARGET_<TRIPLE>_RUNNER='lab wrap --' (every test binary of cargo test a trial)", "lab wrap -- target/debug/deps/mytests-0123abcd"),
        ex("A CI step, one results row appended per wrap", "lab wrap --report results/wrap/trials.csv -- make test"),
    ]),
    ("fuzz", &[
        ex("Fuzz the canonical primitive: 100 generated scenarios, the regressions of fuzz-regressions/ replayed first", "lab fuzz --seed 1"),
        ex("Find the legacy bugs and shrink each failure class to the smallest scenario that still fails the same way, each step 3 trials", "lab fuzz --strategy legacy --cases 50 --seed 1 --repeat 3"),
        ex("For CI: both strategies, a JUnit file with one test case per strategy", "lab fuzz --strategy canonical --strategy legacy --cases 200 --junit results/fuzz-junit.xml"),
    ]),
    ("bench", &[
        ex("Trials per second of nested under canonical against the raw floor", "lab bench"),
        ex("More trials, on two supervisors", "lab bench --trials 2000 -j 2"),
    ]),
    ("merge", &[
        ex("Join the four shards of a soak into one CSV", "lab merge results/shard-1 results/shard-2 results/shard-3 results/shard-4 --out results/merged"),
    ]),
    ("report", &[
        ex("A markdown summary of the committed baseline", "lab report results/baseline"),
        ex("The same into a file, linking the charts of lab plot", "lab report results/baseline --out report.md --charts charts"),
    ]),
    ("plot", &[
        ex("SVG charts of the committed baseline, and charts.md listing them", "lab plot results/baseline --out charts"),
        ex("The same as PNG", "lab plot results/baseline --out charts --format png"),
    ]),
    ("plan", &[
        ex("The plan of nested under seed 7, with its hash", "lab plan nested --seed 7"),
        ex("A plan as JSON, checked against the legacy strategy's guards too", "lab plan pdeathsig-race --seed 1 --strategy canonical --strategy legacy --format json"),
    ]),
    ("check", &[
        ex("Validate every shipped scenario file (exit 1: canonical refuses the plan of mt-fork-attendant, the bug its guard prevents)", "lab check scenarios/*.toml"),
        ex("Check a file's plan under seed 7 against two strategies", "lab check scenarios/nested.toml --seed 7 --strategy canonical --strategy legacy"),
    ]),
    ("suite", &[
        ex("The attendant suite, each member alone and all together, 5 times each", "lab suite scenarios/suites/attendant.toml --strategy legacy --strategy canonical --repeat 5"),
        ex("The same suite in the reverse order", "lab suite scenarios/suites/attendant.toml --reverse"),
        ex("Your own Rust test binary: each test alone and all in one process", "lab suite --libtest target/debug/deps/mycrate-0123abcd --repeat 5 --deadline 10s"),
        ex("The same, built by cargo first; prove a fix (exit 0 and the bound)", "lab suite --cargo-test --repeat 20 --expect-clean -- -p mycrate --lib"),
        ex("pytest, the node ids run in the order given", "lab suite --pytest --repeat 5 -- tests/"),
    ]),
    ("bisect", &[
        ex("The members that make fork-then-ask fail when run before it", "lab bisect scenarios/suites/attendant.toml --victim fork-then-ask"),
        ex("The test of a Rust test binary that makes a victim hang", "lab bisect --libtest target/debug/deps/mycrate-0123abcd --victim spawn::fork_then_ask --deadline 10s"),
    ]),
    ("list", &[
        ex("The built-in scenarios (any of them is a SCENARIO of lab run)", "lab list"),
        ex("The same as JSON, with each scenario's expectations", "lab list --format json"),
    ]),
    ("strategies", &[
        ex("The presets and their axes", "lab strategies"),
        ex("A strategy of your own axes (one that the scenario's [expect] does not list must pass every trial)", "lab run nested --strategy create=fork,death=lifeline,observe=pidfd"),
    ]),
    ("env", &[
        ex("What this kernel offers the lab", "lab env"),
        ex("The same as JSON", "lab env --format json"),
    ]),
    ("janitor", &[
        ex("List the cgroups that labs no longer running left behind", "lab janitor"),
        ex("Remove them", "lab janitor --remove"),
    ]),
    ("completions", &[
        ex("Completions in this bash session", "source <(lab completions bash)"),
        ex("Installed for bash", "lab completions bash > ~/.local/share/bash-completion/completions/lab"),
        ex("Installed for zsh (a directory of your $fpath)", "lab completions zsh > ~/.zfunc/_lab"),
        ex("Installed for fish", "lab completions fish > ~/.config/fish/completions/lab.fish"),
    ]),
    ("man", &[
        ex("Read the manual page", "lab man | man -l -"),
        ex("The page of one command", "lab man run | man -l -"),
        ex("Install the pages where man finds them", "mkdir -p ~/.local/share/man/man1 && lab man --out ~/.local/share/man/man1"),
    ]),
];

/// The examples of the command `name` (`run`, `soak`, ...; `lab` for the
/// program itself); none for a name it does not know.
pub fn of(name: &str) -> &'static [Example] {
    EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, e)| e)
}

/// The `Examples:` section of the command `name`'s `--help`, its heading
/// styled as clap styles its own.
pub fn help(name: &str) -> StyledStr {
    let heading = anstyle::Style::new().bold().underline();
    let mut s = format!("{heading}Examples:{heading:#}\n");
    for (i, e) in of(name).iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&format!("  {}:\n    {}\n", e.what, e.command));
    }
    StyledStr::from(s)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::Cli;

    /// The `lab ...` commands of a shell line (`a | b`, `a && b`, `a > f`,
    /// `source <(a)`), split into words.
    fn lab_commands(line: &str) -> Vec<Vec<&str>> {
        line.split(['|', '&', '>', '('])
            .map(|part| {
                part.trim()
                    .trim_end_matches(')')
                    .split_whitespace()
                    .collect::<Vec<_>>()
            })
            .filter(|words| words.first() == Some(&"lab"))
            .collect()
    }

    #[test]
    fn every_visible_command_has_examples_that_parse() {
        let cmd = Cli::command();
        let mut names: Vec<&str> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name())
            .collect();
        names.push("lab");
        for name in names {
            let examples = of(name);
            assert!(!examples.is_empty(), "`{name}` has no examples");
            for e in examples {
                let commands = lab_commands(e.command);
                assert!(!commands.is_empty(), "no lab command in `{}`", e.command);
                for words in commands {
                    if let Err(err) = Cli::try_parse_from(&words) {
                        panic!("`{}` does not parse: {err}", e.command);
                    }
                    if name != "lab" && name != "strategies" {
                        assert_eq!(words[1], name, "an example of `{name}`: `{}`", e.command);
                    }
                }
            }
        }
    }

    #[test]
    fn help_lists_each_example() {
        let text = help("run").to_string();
        assert!(text.starts_with("Examples:\n"), "{text}");
        assert!(text.contains("    lab run nested --seed 1\n"));
    }
}
