//! What a soak reports: [`SoakSummary`], its text, and the lab process's
//! own footprint at the end.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{Expectation, GroupComparison, SoakSpec};
use crate::error::LabError;
use crate::expect::{Comparison, Origin, Status};
use crate::record::{tally, GroupSummary};
use crate::report::{verdict_counts, TestCase, TestReport};

/// The result of a soak (what `summary.json` holds and `--format json`
/// prints).
#[derive(Clone, Debug, Serialize)]
pub struct SoakSummary {
    /// What was run.
    pub spec: SoakSpec,
    /// The soak's directory.
    pub dir: PathBuf,
    /// Its CSV.
    pub csv: PathBuf,
    /// Trials run by this invocation.
    pub trials_run: u64,
    /// Trials in the CSV (earlier invocations included).
    pub trials_total: u64,
    /// Wall time of this invocation (s).
    pub wall_s: f64,
    /// Trials per second of this invocation.
    pub trials_per_s: f64,
    /// One entry per scenario, swept value and strategy.
    pub groups: Vec<GroupSummary>,
    /// What each scenario is about: its name and its `about` (whitespace
    /// folded), in the order of the soak's cells.
    pub abouts: Vec<About>,
    /// Whether the expectations held, when `--gate` was given.
    pub gate: Option<Expectation>,
    /// Each group (scenario, swept value, strategy) judged against its
    /// expectation: its `--gate`, else its scenario's `[expect]` entry.
    pub expectations: Vec<GroupComparison>,
    /// Whether trials ran in cgroups of their own.
    pub cgroup: bool,
    /// The supervisors' PID namespace, as in the CSV: `pid`, `pid+user` or
    /// `none` (then the text says what that costs).
    pub pid_namespace: String,
    /// The lab's peak resident memory (KiB, `VmHWM`) at the end.
    pub lab_peak_rss_kib: u64,
    /// The lab's open fds at the end.
    pub lab_fds: u64,
    /// Kernel release.
    pub kernel: String,
    /// Lab version.
    pub lab_version: String,
    /// A Ctrl-C (SIGINT) or a SIGTERM stopped the soak: the command that
    /// continues it (`lab soak --resume DIR`); `None` when it ran to its end.
    pub resume: Option<String>,
    /// The signal that stopped it (`INT`, `TERM`); absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<crate::signal::Sig>,
    /// A write error (a full disk, say) stopped the soak: what could not
    /// be written (the summary is partial, [`SoakSummary::resume`]
    /// continues it); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Diagnoses written per scenario x strategy cell at most
    /// (`--max-diagnoses`); each group's `diagnoses_unwritten` counts the
    /// rest.
    pub max_diagnoses: u64,
}

impl SoakSummary {
    /// The exit status: 3 when a write error stopped it, 128 + the signal
    /// when interrupted (130 after Ctrl-C, 143 after SIGTERM), else 0 when every
    /// group met its expectation (`--gate` or `[expect]`; a group with
    /// neither is not judged), else 1.
    pub fn exit(&self) -> crate::error::Exit {
        if self.stopped.is_some() {
            return crate::error::Exit::Lab;
        }
        if let (Some(_), Some(sig)) = (&self.resume, self.interrupted_by) {
            return crate::error::Exit::Interrupted(sig);
        }
        crate::error::Exit::of_expectations(self.expectations.iter().map(|g| &g.comparison))
    }

    /// The summary as text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "lab soak {}  seed {}{}  {} this run ({:.1}/s), {} in {}\n",
            self.spec.scenarios.join(" "),
            self.spec.seed,
            self.spec
                .shard
                .map_or(String::new(), |sh| format!("  shard {sh}")),
            crate::text::plural(self.trials_run, "trial"),
            self.trials_per_s,
            self.trials_total,
            self.csv.display()
        );
        if self.pid_namespace == "none" {
            s.push_str(crate::pidns::FALLBACK_WARNING);
            s.push('\n');
        }
        s.push_str(&tally::render(&self.groups, |name| {
            self.abouts
                .iter()
                .find(|a| a.scenario == name)
                .map(|a| a.about.clone())
        }));
        if !self.expectations.is_empty() {
            s.push_str("\nexpectations:\n");
            for g in &self.expectations {
                let sweep = if g.sweep_key.is_empty() {
                    String::new()
                } else {
                    format!(" {}={}", g.sweep_key, g.sweep_value)
                };
                s.push_str(&format!(
                    "  {}{sweep} {}: {}\n",
                    g.scenario,
                    g.comparison.strategy,
                    g.comparison.render()
                ));
                for r in &g.replay {
                    s.push_str(&format!("    replay: {r}\n"));
                }
            }
        }
        let unwritten: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.diagnoses_unwritten > 0)
            .map(|g| {
                let sweep = if g.sweep_key.is_empty() {
                    String::new()
                } else {
                    format!(" {}={}", g.sweep_key, g.sweep_value)
                };
                format!(
                    "  {}{sweep} {}: {}\n",
                    g.scenario, g.strategy, g.diagnoses_unwritten
                )
            })
            .collect();
        if !unwritten.is_empty() {
            s.push_str(&format!(
                "\ndiagnoses not written (--max-diagnoses {} per cell; every trial is in the CSV):\n",
                self.max_diagnoses
            ));
            s.push_str(&unwritten.concat());
        }
        if let Some(g) = &self.gate {
            s.push_str(&format!(
                "\ngate {}: {}\n",
                g.strategies.join(", "),
                if g.failures == 0 {
                    "every trial passed".to_string()
                } else {
                    format!(
                        "{} did not pass; replay:",
                        crate::text::plural(g.failures, "trial")
                    )
                }
            ));
            for r in &g.replay {
                s.push_str(&format!("  {r}\n"));
            }
        }
        s.push_str(&format!(
            "\nlab process: peak RSS {}, {} fds open\n",
            bytesize::ByteSize::kib(self.lab_peak_rss_kib)
                .display()
                .iec(),
            self.lab_fds
        ));
        if let Some(resume) = &self.resume {
            let why = match &self.stopped {
                Some(e) => format!("stopped by a write error ({e})"),
                None => format!(
                    "interrupted ({})",
                    self.interrupted_by
                        .map_or("?", crate::error::Exit::interruption_name)
                ),
            };
            s.push_str(&format!(
                "\n{why} after {} this run; the summary above is partial\nresume: {resume}\n",
                crate::text::plural(self.trials_run, "trial")
            ));
        }
        s
    }
}

impl SoakSummary {
    /// The test report of the soak (`lab soak`): one test case per
    /// scenario (at a swept value) x strategy cell, judged as its exit
    /// status judges it, in a suite per scenario (and swept value).
    pub fn test_report(&self) -> TestReport {
        TestReport {
            name: "lab soak".to_string(),
            cases: self.groups.iter().map(|g| self.test_case(g)).collect(),
        }
    }

    /// The test case of the cell of group `g`.
    fn test_case(&self, g: &GroupSummary) -> TestCase {
        let per_trial = if self.trials_run > 0 {
            self.wall_s / self.trials_run as f64
        } else {
            0.0
        };
        let suite = if g.sweep_key.is_empty() {
            g.scenario.clone()
        } else {
            format!("{} {}={}", g.scenario, g.sweep_key, g.sweep_value)
        };
        let counts = verdict_counts(g.rates.iter().map(|(v, rate)| (v.as_str(), rate.count)));
        let time = Duration::from_secs_f64((per_trial * g.trials as f64).max(0.0));
        let judged = self.expectations.iter().find(|j| {
            j.scenario == g.scenario
                && j.sweep_value == g.sweep_value
                && j.comparison.strategy == g.strategy
        });
        let comparison = judged.map_or_else(
            || Comparison {
                strategy: g.strategy.clone(),
                status: Status::NotJudged,
                source: Origin::None,
                expected: Vec::new(),
                unexpected: Vec::new(),
            },
            |j| j.comparison.clone(),
        );
        // The first trial of each unexpected verdict: its replay
        // command, and the first diagnosis written among them.
        let firsts: Vec<&tally::Failing> = comparison
            .unexpected
            .iter()
            .filter_map(|u| g.first.get(u.verdict.name()))
            .collect();
        let replay: Vec<String> = firsts
            .iter()
            .map(|f| format!("{}   # {}", f.replay, f.verdict))
            .collect();
        let diagnosis = g
            .failing
            .iter()
            .chain(firsts.iter().copied())
            .filter(|f| {
                comparison
                    .unexpected
                    .iter()
                    .any(|u| u.verdict.name() == f.verdict)
            })
            .find(|f| !f.diagnosis.is_empty())
            .map(|f| PathBuf::from(&f.diagnosis));
        TestCase::cell(
            &suite,
            &g.scenario,
            &comparison,
            counts,
            time,
            &replay,
            diagnosis.as_deref(),
        )
    }
}

/// What one scenario of a soak is about.
#[derive(Clone, Debug, Serialize)]
pub struct About {
    /// The scenario's name.
    pub scenario: String,
    /// Its `about`, whitespace folded.
    pub about: String,
}

/// The lab's own peak RSS (KiB, `VmHWM` of `/proc/self/status`) and open fds.
pub(super) fn own_usage() -> (u64, u64) {
    let rss = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let fds = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (rss, fds)
}

/// Write `summary` as `dir/summary.json` (a temporary file renamed over
/// it: a symlink there is replaced, never followed).
///
/// # Errors
/// [`LabError::Io`] when it cannot be written.
pub(super) fn write_summary(
    dir: &crate::record::trust::OwnDir,
    summary: &SoakSummary,
) -> Result<(), LabError> {
    let path = dir.path().join("summary.json");
    let json = crate::json::to_string_pretty(summary).expect("a summary serializes");
    dir.replace("summary.json", json.as_bytes())
        .map_err(|e| LabError::io(format!("cannot write {}", path.display()), e))
}
