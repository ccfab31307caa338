//! `lab env`: what this kernel and this process support, and which lab
//! features that enables or rules out.
//!
//! The probing is done by [`probe_kernel`](lifeline::probe::probe_kernel);
//! this module only presents its [`KernelFeatures`], as text for people and as
//! JSON for scripts.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use lifeline::probe::KernelFeatures;

/// One line of the report: the feature's name, whether it is there, and what
/// it enables (`yes`) or what the lab does without it (`no`).
struct Line {
    name: &'static str,
    present: bool,
    enables: &'static str,
    without: &'static str,
}

fn lines(f: &KernelFeatures) -> Vec<Line> {
    vec![
        Line {
            name: "clone3 + CLONE_PIDFD",
            present: f.clone3,
            enables: "canonical strategy (clone3, pidfds, lifeline)",
            without: "canonical strategy unavailable; legacy strategies only",
        },
        Line {
            name: "CLONE_INTO_CGROUP",
            present: f.clone_into_cgroup,
            enables: "children start inside their trial's cgroup",
            without: "no per-trial cgroups",
        },
        Line {
            name: "cgroup v2 writable",
            present: f.cgroup_writable,
            enables: "a cgroup per trial",
            without: "no per-trial cgroups",
        },
        Line {
            name: "cgroup.kill",
            present: f.cgroup_kill,
            enables: "kill of a whole trial, escapees included",
            without: "no per-trial cgroups",
        },
        Line {
            name: "close_range",
            present: f.close_range,
            enables: "canonical fd hygiene (close every fd a child should not keep)",
            without: "canonical fd hygiene unavailable",
        },
        Line {
            name: "CLOSE_RANGE_CLOEXEC",
            present: f.close_range_cloexec,
            enables: "inherited fds marked close-on-exec at startup and before exec",
            without: "inherited fds may reach exec'd programs",
        },
        Line {
            name: "PIDFD_GET_INFO",
            present: f.pidfd_get_info,
            enables: "process details from a pidfd",
            without: "details from /proc only",
        },
        Line {
            name: "PIDFD_INFO_EXIT",
            present: f.pidfd_info_exit,
            enables: "exit status of non-child nodes",
            without: "exit status of children only",
        },
        Line {
            name: "CLONE_PIDFD_AUTOKILL",
            present: f.autokill,
            enables: "`autokill` strategy",
            without: "`autokill` strategy unavailable (needs Linux 7.1)",
        },
        Line {
            name: "user + pid namespaces",
            present: f.user_pid_namespaces,
            enables: "`pid-reuse` scenario",
            without: "`pid-reuse` scenario needs root",
        },
        Line {
            name: "root",
            present: f.root,
            enables: "`pid-reuse` scenario; ns_last_pid writes; /proc/PID/stack for forensics",
            without: "no ns_last_pid writes, no /proc/PID/stack in forensics",
        },
    ]
}

/// The text of `lab env`: the kernel release, the cgroup v2 directory the
/// caller found (`cgroup`, `None` when there is none or it is not usable),
/// one line per feature with `yes`/`no` and what it enables, and the modes
/// that follow (per-trial cgroups or subreaper fallback, `pid-reuse`).
pub fn render(features: &KernelFeatures, cgroup: Option<&Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<24}{}", "kernel", kernel_release());
    let _ = writeln!(
        out,
        "{:<24}{}",
        "cgroup v2",
        cgroup.map_or_else(|| "none found".to_string(), |p| p.display().to_string())
    );
    out.push('\n');
    let _ = writeln!(out, "{:<24}{:<5}enables", "feature", "");
    for l in lines(features) {
        let (answer, what) = if l.present {
            ("yes", l.enables)
        } else {
            ("no", l.without)
        };
        let _ = writeln!(out, "{:<24}{answer:<5}{what}", l.name);
    }
    out.push('\n');
    let containment = if features.per_trial_cgroups() {
        "per-trial cgroups: exact member lists and cgroup.kill"
    } else {
        "fallback subreaper mode (needs CLONE_INTO_CGROUP, a writable cgroup v2 and cgroup.kill for per-trial cgroups)"
    };
    let _ = writeln!(out, "{:<24}{containment}", "trial containment");
    let pid_reuse = if features.pid_reuse() {
        "available"
    } else {
        "unavailable (needs user + pid namespaces or root)"
    };
    let _ = writeln!(out, "{:<24}{pid_reuse}", "pid-reuse scenario");
    out
}

/// The same report as [`render`] as JSON: `kernel`, `cgroup` (a path or
/// `null`), `features` (every boolean of [`KernelFeatures`] under its field
/// name) and `modes` (`per_trial_cgroups`, `pid_reuse`).
pub fn to_json(features: &KernelFeatures, cgroup: Option<&Path>) -> serde_json::Value {
    json!({
        "kernel": kernel_release(),
        "cgroup": cgroup.map(|p| p.display().to_string()),
        "features": features
            .fields()
            .iter()
            .map(|&(name, present)| (name.to_string(), serde_json::Value::Bool(present)))
            .collect::<serde_json::Map<_, _>>(),
        "modes": {
            "per_trial_cgroups": features.per_trial_cgroups(),
            "pid_reuse": features.pid_reuse(),
        },
    })
}

/// The kernel release (`uname -r`).
fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(v: bool) -> KernelFeatures {
        KernelFeatures {
            clone3: v,
            clone_into_cgroup: v,
            close_range: v,
            close_range_cloexec: v,
            cgroup_kill: v,
            cgroup_writable: v,
            pidfd_get_info: v,
            pidfd_info_exit: v,
            autokill: v,
            user_pid_namespaces: v,
            root: v,
        }
    }

    fn answer<'a>(text: &'a str, name: &str) -> &'a str {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"));
        line[24..].split_whitespace().next().unwrap()
    }

    #[test]
    fn every_feature_has_a_line_with_its_answer() {
        let mut f = all(true);
        f.autokill = false;
        let text = render(&f, Some(Path::new("/sys/fs/cgroup/x")));
        for l in lines(&f) {
            let want = if l.present { "yes" } else { "no" };
            assert_eq!(answer(&text, l.name), want, "{}", l.name);
        }
        assert_eq!(answer(&text, "CLONE_PIDFD_AUTOKILL"), "no");
        assert!(text.contains("`autokill` strategy unavailable"));
        assert!(text.contains("/sys/fs/cgroup/x"));
        assert!(text.contains(&kernel_release()));
        assert!(text.contains("per-trial cgroups: exact member lists"));
    }

    #[test]
    fn without_cgroup_kill_the_lab_falls_back_to_the_subreaper() {
        let mut f = all(true);
        f.cgroup_kill = false;
        let text = render(&f, None);
        assert!(text.contains("fallback subreaper mode"), "{text}");
        assert!(text.contains("none found"));
        let none = render(&all(false), None);
        assert!(none.contains("`pid-reuse` scenario needs root"));
        assert!(
            none.contains("pid-reuse scenario      unavailable"),
            "{none}"
        );
    }

    #[test]
    fn json_has_the_same_booleans() {
        let mut f = all(false);
        f.clone3 = true;
        f.root = true;
        let v = to_json(&f, Some(Path::new("/cg")));
        assert_eq!(v["cgroup"], "/cg");
        assert_eq!(v["kernel"], kernel_release());
        let features = v["features"].as_object().unwrap();
        assert_eq!(features.len(), 11);
        for (k, b) in features {
            let want = matches!(k.as_str(), "clone3" | "root");
            assert_eq!(b.as_bool(), Some(want), "{k}");
        }
        assert_eq!(v["modes"]["per_trial_cgroups"], false);
        assert_eq!(v["modes"]["pid_reuse"], true);
        assert!(to_json(&f, None)["cgroup"].is_null());
    }

    #[test]
    fn this_machine_renders() {
        let f = lifeline::probe::probe_kernel(None);
        let text = render(&f, None);
        assert_eq!(answer(&text, "clone3 + CLONE_PIDFD"), "yes", "{text}");
        assert_eq!(answer(&text, "close_range"), "yes", "{text}");
        assert_eq!(answer(&text, "PIDFD_GET_INFO"), "yes", "{text}");
    }
}
