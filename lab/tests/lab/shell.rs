//! The lab in a shell: completions that bash sources and that complete `lab
//! ru` to `run`, a manual page that `man` renders, examples in every
//! command's `--help`, colour on the verdicts only where it is wanted
//! (`CLICOLOR_FORCE`, never piped, never under `NO_COLOR`), and no progress
//! drawn on a stderr that is not a terminal.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{lab, out_dir, Marker, LAB};

/// The variables that decide colour, removed from every run of these tests
/// unless the test sets them.
const COLOUR_VARS: [&str; 4] = ["NO_COLOR", "CLICOLOR_FORCE", "CLICOLOR", "TERM"];

/// Run the lab with `args`, its stdout and stderr piped, the colour
/// variables removed and then `envs` set; assert that nothing of it is
/// left alive.
fn lab_colour(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let marker = Marker::new();
    let mut cmd = marker.command(LAB);
    for var in COLOUR_VARS {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("run lab");
    marker.assert_gone(&format!("lab {args:?}"));
    out
}

/// A bash script, run with the lab binary's directory first on PATH; what
/// it started must have ended with it.
fn bash(script: &str) -> Output {
    let marker = Marker::new();
    let dir = Path::new(LAB).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = marker
        .command("bash")
        .args(["-c", script])
        .env("PATH", path)
        .output()
        .expect("run bash");
    marker.assert_gone(&format!("`{script}`"));
    out
}

/// `man` installed (man-db or mandoc: `man -l -` renders roff from stdin).
const MAN: testkit::Capability = testkit::Capability::new("man", || testkit::program("man"));

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bash_sources_the_completions_and_completes_ru_to_run() {
    let out = bash("source <(lab completions bash) && complete -p lab");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("-F _lab lab"),
        "{}",
        text(&out.stdout)
    );
    // What bash offers for `lab ru<TAB>`: the completion function called as
    // bash calls it (command, word, previous word).
    let out = bash(
        "source <(lab completions bash) && COMP_WORDS=(lab ru) && COMP_CWORD=1 \
         && COMP_LINE='lab ru' && COMP_POINT=6 && _lab lab ru lab \
         && printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let words: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(words, ["run"], "lab ru<TAB> offers {words:?}");
    // And the options of a command: `lab soak --pro<TAB>`.
    let out = bash(
        "source <(lab completions bash) && COMP_WORDS=(lab soak --pro) && COMP_CWORD=2 \
         && _lab lab --pro soak && printf '%s\\n' \"${COMPREPLY[@]}\"",
    );
    assert_eq!(
        text(&out.stdout).trim(),
        "--progress",
        "{}",
        text(&out.stderr)
    );
}

fn zsh_and_fish_completions_name_the_commands() {
    for (shell, first) in [("zsh", "#compdef lab"), ("fish", "complete -c lab")] {
        let out = lab(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0));
        let script = text(&out.stdout);
        assert!(script.contains(first), "{shell}: {script}");
        assert!(script.contains("soak"), "{shell}");
    }
    let out = lab(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");
}

fn the_man_page_renders_with_its_examples_and_one_page_per_command() {
    let out = lab(&["man"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let roff = text(&out.stdout);
    // The roff source itself (what holds with or without man installed).
    assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{roff}");
    assert!(roff.contains(".TH LAB 1"), "{roff}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "EXAMPLES",
        "\"EXIT STATUS\"",
        "ENVIRONMENT",
    ] {
        assert!(roff.contains(&format!(".SH {section}")), "no {section}");
    }
    assert!(roff.contains("lab run nested \\-\\-seed 1"), "{roff}");
    assert!(
        !roff.contains("lab\\-help"),
        "clap's help command has no page"
    );
    assert!(!roff.contains("__node"), "hidden commands have no page");
    let run = text(&lab(&["man", "run"], &[]).stdout);
    assert!(run.contains(".TH LAB-RUN 1"), "{run}");
    assert!(run.contains("\\-\\-repeat"), "{run}");
    let bad = lab(&["man", "nope"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("the commands: run, soak"));

    let dir = out_dir("man");
    std::fs::create_dir_all(&dir).unwrap();
    let out = lab(&["man", "--out", dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "lab.1",
        "lab-run.1",
        "lab-soak.1",
        "lab-completions.1",
        "lab-man.1",
    ] {
        assert!(dir.join(page).is_file(), "no {page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `man -l -` renders the manual page of `lab man`.
fn the_man_page_renders_with_man() {
    let out = lab(&["man"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let roff = text(&out.stdout);
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = man.stdin.take().unwrap();
        stdin.write_all(roff.as_bytes()).unwrap();
    }
    let shown = man.wait_with_output().unwrap();
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let page = text(&shown.stdout);
    for words in [
        "SYNOPSIS",
        "EXAMPLES",
        "EXIT STATUS",
        "lab run nested --seed 1",
        "lab-soak(1)",
    ] {
        assert!(page.contains(words), "man -l - shows no `{words}`:\n{page}");
    }
}

fn every_command_s_help_has_examples() {
    let help = text(&lab(&["--help"], &[]).stdout);
    assert!(help.contains("Examples:"), "{help}");
    let commands: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .collect();
    assert!(commands.len() >= 16, "{commands:?}");
    for c in ["run", "soak", "completions", "man"] {
        assert!(commands.contains(&c), "{c} is not listed: {commands:?}");
    }
    for c in commands {
        for flag in ["--help", "-h"] {
            let out = lab(&[c, flag], &[]);
            let page = text(&out.stdout);
            assert!(page.contains("Examples"), "lab {c} {flag}:\n{page}");
            assert!(
                page.lines().any(|l| l.trim_start().starts_with("lab ")
                    || l.trim_start().starts_with("source <(lab ")
                    || l.trim_start().starts_with("mkdir -p")),
                "lab {c} {flag} shows no command:\n{page}"
            );
        }
    }
}

/// `lab run nested --trials 2` with `envs`: its stdout.
fn nested_summary(envs: &[(&str, &str)], extra: &[&str]) -> String {
    let dir = out_dir("colour");
    let mut args = vec![
        "run",
        "nested",
        "--trials",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = lab_colour(&args, envs);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains('\x1b'), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    text(&out.stdout)
}

fn verdicts_are_coloured_only_when_asked_and_never_when_piped_or_under_no_color() {
    let piped = nested_summary(&[], &[]);
    assert!(
        !piped.contains('\x1b'),
        "piped output carries escapes:\n{piped}"
    );
    assert!(piped.contains("every strategy as expected"), "{piped}");
    let forced = nested_summary(&[("CLICOLOR_FORCE", "1")], &[]);
    assert!(forced.contains("\x1b[32mpass\x1b[0m"), "{forced}");
    assert!(forced.contains("\x1b[31morphan\x1b[0m"), "{forced}");
    assert!(
        forced.contains("\x1b[1m\x1b[32mas expected\x1b[0m"),
        "{forced}"
    );
    // The same words, escapes aside.
    let strip = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('m').map_or(rest.len(), |m| i + m + 1);
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    // The lines that do not depend on timing (the table's header and the
    // expectations; a starved machine can add an `error` row and its
    // sentence to either run), escapes aside.
    let words = |s: &str| {
        strip(s)
            .lines()
            .filter(|l| {
                l.starts_with("verdict ") || l.contains("expectation: ") || l.starts_with("every ")
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&forced), words(&piped));
    assert_eq!(words(&piped).len(), 4, "{piped}");
    for env in [
        vec![("NO_COLOR", "1")],
        vec![("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
        vec![("CLICOLOR", "0")],
    ] {
        let out = nested_summary(&env, &[]);
        assert!(!out.contains('\x1b'), "{env:?} gives escapes:\n{out}");
    }
    // JSON is never coloured.
    let json = nested_summary(&[("CLICOLOR_FORCE", "1")], &["--format", "json"]);
    assert!(!json.contains('\x1b'));
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
}

fn a_soak_draws_no_progress_on_a_stderr_that_is_not_a_terminal() {
    let dir = out_dir("progress");
    for progress in ["auto", "bar"] {
        let out = lab_colour(
            &[
                "soak",
                "--scenario",
                "nested",
                "--trials",
                "3",
                "--progress",
                progress,
                "--out",
                dir.to_str().unwrap(),
            ],
            &[("TERM", "xterm"), ("CLICOLOR_FORCE", "1")],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        // The header line that says what started, and nothing drawn.
        let err = text(&out.stderr);
        assert!(
            err.starts_with(
                "lab soak nested  seed 1  strategies canonical, legacy  3 trials per cell"
            ) && err.lines().count() == 1
                && !err.contains('\r')
                && !err.contains('\x1b'),
            "--progress {progress} drew on a pipe: {err:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The lab with its stdout (or stderr) a pipe whose read end is closed.
fn with_closed(args: &[&str], stderr_too: bool) -> Output {
    let marker = Marker::new();
    let (read, write) = rustix::pipe::pipe().unwrap();
    drop(read);
    let (read2, write2) = rustix::pipe::pipe().unwrap();
    drop(read2);
    let mut cmd = marker.command(LAB);
    cmd.args(args)
        .env("CLICOLOR_FORCE", "1")
        .stdout(Stdio::from(write));
    if stderr_too {
        cmd.stderr(Stdio::from(write2));
    } else {
        cmd.stderr(Stdio::piped());
    }
    let out = cmd.output().expect("run lab");
    marker.assert_gone(&format!("lab {args:?}"));
    out
}

fn a_closed_stdout_or_stderr_ends_shell_output_without_a_panic() {
    let dir = out_dir("closed");
    let d = dir.to_str().unwrap();
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec!["run", "--help"],
        vec!["run", "nested", "--trials", "2", "--out", d],
        vec![
            "soak",
            "--scenario",
            "nested",
            "--trials",
            "2",
            "--progress",
            "bar",
            "--out",
            d,
        ],
    ] {
        for stderr_too in [false, true] {
            let out = with_closed(&args, stderr_too);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "lab {args:?}: {err}");
            assert!(!err.contains("panicked"), "lab {args:?}: {err}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

tests! {
    bash_sources_the_completions_and_completes_ru_to_run;
    zsh_and_fish_completions_name_the_commands;
    the_man_page_renders_with_its_examples_and_one_page_per_command;
    the_man_page_renders_with_man needs MAN;
    every_command_s_help_has_examples;
    verdicts_are_coloured_only_when_asked_and_never_when_piped_or_under_no_color;
    a_soak_draws_no_progress_on_a_stderr_that_is_not_a_terminal;
    a_closed_stdout_or_stderr_ends_shell_output_without_a_panic;
}
