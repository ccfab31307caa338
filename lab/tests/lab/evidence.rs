//! Issue 12: verdicts from kernel evidence. A hang needs a blocked process
//! (named in its reason) or one that spins; and under an oversubscribed
//! `-j` with busy loops beside it, no verdict is false.

use super::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The reason of the first group of `verdict` in a `lab run` strategy.
fn reason<'a>(r: &'a Value, verdict: &str) -> &'a str {
    r["reasons"][verdict][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no {verdict} reason in {r}"))
}

/// Whether `v`'s strategies gave a trial the lab called starved: an
/// `error` because the machine is too busy to tell spinning from starved,
/// which is no verdict at all (another run is needed).
fn starved(v: &Value) -> bool {
    v["results"].as_array().into_iter().flatten().any(|r| {
        r["reasons"]["error"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"].as_str().is_some_and(|n| n.starts_with("starved")))
    })
}

fn a_spinning_node_is_a_hang_with_its_signature_and_a_blocked_one_is_named() {
    // On a machine so busy that the spinner gets little CPU, the lab says
    // `error: starved` (it cannot tell): run again, at most 5 times; any
    // other verdict is checked at once.
    let mut attempt = 0;
    let (out, dir) = loop {
        attempt += 1;
        let (out, dir) = lab_run(&scenario("spin.toml"), 2, &["canonical", "legacy"], &[]);
        if attempt == 5 || !starved(&json(&out)) {
            break (out, dir);
        }
        let _ = std::fs::remove_dir_all(dir);
    };
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    for name in ["canonical", "legacy"] {
        let r = strategy(&v, name);
        assert_eq!(r["hang"].as_u64(), Some(2), "{r}");
        assert!(
            reason(r, "hang").starts_with("node 0 kept running on a CPU past the deadline"),
            "{r}"
        );
        assert_eq!(named(&r["signatures"], "spinning"), Some(2), "{r}");
        // Runnable at the 100 ms deadline: extended up to 10 times it.
        let t = r["median_verdict_us"].as_u64().unwrap();
        assert!(
            t >= 1_000_000,
            "a spinning trial is judged at the cap, not at {t} us"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    // Lingering, the spinner settles the course. Under legacy PDEATHSIG
    // kills it with the root. Under canonical it never reads its lifeline:
    // after the teardown it still runs, neither dying nor asleep, and is an
    // orphan a second later.
    let set = ["--set", "nodes.0.linger=true"];
    let (out, dir) = lab_run(&scenario("spin.toml"), 1, &["canonical", "legacy"], &set);
    let v = json(&out);
    let r = strategy(&v, "canonical");
    assert_eq!(r["orphan"].as_u64(), Some(1), "{r}");
    assert!(
        reason(r, "orphan").contains("still running on a CPU, neither dying nor asleep"),
        "{r}"
    );
    assert_eq!(strategy(&v, "legacy")["pass"].as_u64(), Some(1), "{v}");
    let _ = std::fs::remove_dir_all(dir);
    // A deadlock: every process asleep, the blocked ones named.
    let (out, dir) = lab_run(&scenario("deadlock.toml"), 2, &["canonical", "legacy"], &[]);
    let v = json(&out);
    for name in ["canonical", "legacy"] {
        let r = strategy(&v, name);
        assert_eq!(r["hang"].as_u64(), Some(2), "{r}");
        assert!(
            reason(r, "hang")
                .contains("asleep with no phase report since the deadline: nodes root 0 1"),
            "{r}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Two threads that spin until dropped: CPU hogs beside the lab.
struct Hogs(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Hogs(stop, threads)
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        for t in self.1.drain(..) {
            let _ = t.join();
        }
    }
}

fn oversubscribed_and_loaded_the_verdicts_stay_exact() {
    let dir = out_dir("loaded");
    let hogs = Hogs::start(2);
    let out = lab(
        &[
            "soak",
            "--scenario",
            "nested",
            "--scenario",
            "pdeathsig-race",
            "--scenario",
            "setsid-escape",
            "--strategy",
            "canonical",
            "--strategy",
            "legacy",
            "--trials",
            "50",
            "-j",
            "8",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    drop(hogs);
    let v = json(&out);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 6, "{v}");
    for g in groups {
        let (name, count) = (g["strategy"].as_str().unwrap(), |k: &str| {
            g["rates"][k]["count"].as_u64()
        });
        let expected = if name == "canonical" {
            "pass"
        } else {
            "orphan"
        };
        assert_eq!(
            (g["trials"].as_u64(), count(expected)),
            (Some(50), Some(50)),
            "{} under {name}: every trial {expected}: {g}",
            g["scenario"]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

tests! {
    a_spinning_node_is_a_hang_with_its_signature_and_a_blocked_one_is_named;
    oversubscribed_and_loaded_the_verdicts_stay_exact;
}
