//! Plans: a scenario instantiated by a seed. `(scenario, seed)` → [`Plan`] is
//! a pure function (ChaCha8 seeded from the seed, drawn in file order), so the
//! same seed gives a byte-identical plan and [`Plan::hash`] on every machine.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::scenario::{
    At, AttendantAction, Hazard, Host, Phase, Pick, ReadDiscipline, Scenario, Selector,
};
use crate::signal::Sig;

mod moment;
mod render;
pub use moment::moment_in_trial;

/// One node of a plan. Nodes are numbered breadth-first; 0 is the root.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    /// `root`, `0`, `0.1`, `0.1.0`.
    pub path: String,
    /// Index of the parent; `None` for the root.
    pub parent: Option<u32>,
    /// Indexes of the children, in spawn order.
    pub children: Vec<u32>,
    /// Levels below the root.
    pub depth: u32,
    /// After `ready`, block until parent death, then exit.
    pub linger: bool,
    /// Exit code when exiting by itself.
    pub exit_code: u8,
    /// The exit status its `command` is expected to end with.
    #[serde(default, skip_serializing_if = "is_default")]
    pub expect_exit: u8,
    /// Delay before exiting by itself, after its children exited (µs).
    pub exit_delay_us: u64,
    /// The phase at which the node waits for the supervisor, if any.
    pub gate: Option<Phase>,
    /// Its parent execs it (the lab's node program).
    #[serde(default, skip_serializing_if = "is_default")]
    pub exec: bool,
    /// CPU time it works after `created`, before it arms (µs): an exec'd
    /// program's start-up.
    #[serde(default, skip_serializing_if = "is_default")]
    pub startup_us: u64,
    /// An external program its parent execs in its place.
    #[serde(default, skip_serializing_if = "is_default")]
    pub command: Option<Vec<String>>,
    /// Variables set in a root command's environment (`NAME=VALUE`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub env: Vec<String>,
    /// A root command's working directory.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cwd: Option<String>,
    /// Extra threads it starts before spawning its children.
    #[serde(default, skip_serializing_if = "is_default")]
    pub threads: u32,
    /// What those threads do.
    #[serde(default, skip_serializing_if = "is_default")]
    pub hazard: Hazard,
    /// What it does with the attendant global itself, before it spawns its
    /// children.
    #[serde(default, skip_serializing_if = "is_default")]
    pub attendant: AttendantAction,
    /// Fraction of time a mutex thread holds the lock (‰).
    #[serde(default, skip_serializing_if = "is_default")]
    pub hold_permille: u32,
    /// It spawns each child from a short-lived thread.
    #[serde(default, skip_serializing_if = "is_default")]
    pub spawn_from_thread: bool,
    /// Its parent captures its stdout through a pipe.
    #[serde(default, skip_serializing_if = "is_default")]
    pub capture: bool,
    /// Its stdout and stderr go to a log file of its own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub log: bool,
    /// How it reads captured children under the `proc` observe axis.
    #[serde(default, skip_serializing_if = "is_default")]
    pub read: ReadDiscipline,
    /// Bytes it writes to stdout before exiting by itself.
    #[serde(default, skip_serializing_if = "is_default")]
    pub output_bytes: u64,
    /// The fd it duplicates its stdout to when it starts.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dup_stdout: Option<i32>,
    /// It spawns a helper outside the plan that blocks forever.
    #[serde(default, skip_serializing_if = "is_default")]
    pub helper: bool,
    /// It starts a setsid'd, double-forked daemon.
    #[serde(default, skip_serializing_if = "is_default")]
    pub daemon: bool,
    /// After `ready`, it spins on a CPU forever (a livelock).
    #[serde(default, skip_serializing_if = "is_default")]
    pub spin: bool,
    /// Signals it ignores.
    #[serde(default, skip_serializing_if = "is_default")]
    pub ignore: Vec<Sig>,
    /// It runs the PID-reuse experiment.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pid_reuse: bool,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl PlanNode {
    /// Its `command` as a reason or a report names it: the words joined by
    /// spaces, at most [`crate::lineage::COMMAND_MAX`] characters (a
    /// wrapped command may have as many arguments as an exec takes).
    /// `None` for a node of the lab's own.
    pub fn command_line(&self) -> Option<String> {
        let cmd = self.command.as_ref()?;
        Some(crate::text::bounded(
            &cmd.join(" "),
            crate::lineage::COMMAND_MAX,
        ))
    }

    /// The behaviour knobs set on this node, as `lab plan` shows them.
    pub fn knobs(&self) -> Vec<String> {
        let mut k = Vec::new();
        if let Some(c) = &self.command {
            k.push(format!("command {c:?}"));
        }
        if self.exec {
            k.push("exec".into());
        }
        if self.startup_us > 0 {
            k.push(format!("start-up {} us before it arms", self.startup_us));
        }
        if self.threads > 0 {
            k.push(format!("{} threads", self.threads));
        }
        match self.hazard {
            Hazard::None => {}
            Hazard::Mutex => k.push(format!("mutex held {}‰", self.hold_permille)),
            Hazard::Attendant => k.push("attendant".into()),
        }
        match self.attendant {
            AttendantAction::None => {}
            AttendantAction::Init => k.push("creates the attendant".into()),
            AttendantAction::Start => k.push("starts the attendant's worker".into()),
            AttendantAction::Use => k.push("uses the attendant".into()),
        }
        if self.spawn_from_thread {
            k.push("spawns from threads".into());
        }
        if self.capture {
            k.push("stdout captured".into());
        }
        if self.log {
            k.push("stdout and stderr logged to a file".into());
        }
        if self.read != ReadDiscipline::ToEof && !self.children.is_empty() {
            k.push("reads captured output after the exit".into());
        }
        if self.output_bytes > 0 {
            k.push(format!("writes {} bytes", self.output_bytes));
        }
        if let Some(fd) = self.dup_stdout {
            k.push(format!("stdout duplicated to fd {fd}"));
        }
        if self.helper {
            k.push("starts a helper".into());
        }
        if self.spin {
            k.push("spins after ready".into());
        }
        if self.daemon {
            k.push("starts a setsid daemon".into());
        }
        if !self.ignore.is_empty() {
            let names: Vec<&str> = self.ignore.iter().map(|s| s.name()).collect();
            k.push(format!("ignores {}", names.join(",")));
        }
        if self.pid_reuse {
            k.push("runs the PID-reuse experiment".into());
        }
        k
    }

    /// Whether the node has threads besides its main one when it spawns its
    /// children (so a child that is a copy of it, without exec, may inherit
    /// a lock or a global no thread will serve).
    pub fn threaded(&self) -> bool {
        self.threads > 0
            || self.hazard == Hazard::Attendant
            || self.attendant.may_start_worker()
            || self.spawn_from_thread
    }
}

/// What the host (the process that runs the trial: the supervisor, in a
/// suite the test process every member shares) does before it spawns the
/// root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHost {
    /// What it does with the attendant global.
    pub attendant: AttendantAction,
    /// The probability that it does it in a given trial (‰), drawn from the
    /// plan's seed and the trial's index ([`PlanHost::acts_in`]).
    pub chance_permille: u32,
}

impl Default for PlanHost {
    fn default() -> Self {
        let h = Host::default();
        PlanHost {
            attendant: h.attendant,
            chance_permille: h.chance_permille,
        }
    }
}

impl PlanHost {
    /// Whether the host does anything to its own process in some trial.
    pub fn acts(&self) -> bool {
        self.attendant != AttendantAction::None && self.chance_permille > 0
    }

    /// Whether the host does it in trial `trial` of a plan with seed `seed`:
    /// always at 1000‰; otherwise a ChaCha8 draw seeded from both, so the
    /// same trial index draws the same answer in every run (a repeat K of a
    /// suite or a bisection step replays the same draws) and different
    /// indexes differ.
    pub fn acts_in(&self, seed: u64, trial: u64) -> bool {
        if !self.acts() {
            return false;
        }
        if self.chance_permille >= 1000 {
            return true;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ trial.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        draw(&mut rng, 1000) < self.chance_permille as u64
    }
}

/// When a planned kill fires, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "when")]
pub enum PlanAt {
    /// Once every node is ready.
    Ready,
    /// While `child` (a child of the target) is held at its gate and the
    /// target is ready; the gate opens once the target's death is confirmed.
    Gate {
        /// Index of the held child.
        child: u32,
        /// The gate's phase.
        phase: Phase,
    },
    /// This long after the tree is ready (µs).
    Delay {
        /// µs after the tree is ready.
        after_ready_us: u64,
    },
    /// This long after the target's own `created` report (µs).
    Birth {
        /// µs after the target was created.
        after_created_us: u64,
    },
    /// This long after `child` (the target's first child) reported
    /// `created`: right after the target forked it (µs).
    ChildBirth {
        /// The target's first child.
        child: u32,
        /// µs after the child was created.
        after_created_us: u64,
    },
}

/// One resolved kill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanKill {
    /// Index of the node to kill.
    pub target: u32,
    /// Signal to send.
    pub signal: Sig,
    /// When.
    pub at: PlanAt,
    /// The rest of a ladder: sent in turn while the target lives, each
    /// `grace_us` after the one before.
    #[serde(default, skip_serializing_if = "is_default")]
    pub then: Vec<Sig>,
    /// The wait between the signals of a ladder (µs); 0 without one.
    #[serde(default, skip_serializing_if = "is_default")]
    pub grace_us: u64,
    /// The window `(lo, hi)` (µs, inclusive) of a timed kill whose moment
    /// is drawn per trial (the scenario's `per_trial = true`): trial `t`
    /// fires at [`moment_in_trial`]`(seed, t, kill index, lo, hi)`, and
    /// [`Plan::for_trial`] writes that moment into `at` (which holds trial
    /// 0's in the plan itself). `None`: one moment for every trial, drawn
    /// with the plan.
    #[serde(default, skip_serializing_if = "is_default")]
    pub per_trial_us: Option<(u64, u64)>,
}

impl PlanKill {
    /// Signal `rung` of the kill's ladder: 0 is `signal`, then `then`.
    pub fn rung(&self, rung: usize) -> Option<Sig> {
        if rung == 0 {
            Some(self.signal)
        } else {
            self.then.get(rung - 1).copied()
        }
    }
}

/// A scenario resolved by a seed: every node, kill and delay concrete.
#[serde_with::serde_as]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file's text.
    pub scenario_hash: String,
    /// The seed.
    #[serde_as(as = "serde_with::PickFirst<(serde_with::DisplayFromStr, _)>")]
    pub seed: u64,
    /// Nodes, breadth-first, root first.
    pub nodes: Vec<PlanNode>,
    /// The kill schedule, in file order.
    pub kills: Vec<PlanKill>,
    /// Signal sent to the root (or the group) once the course has settled:
    /// the first rung of the teardown ladder.
    pub teardown: Sig,
    /// The later rungs of the ladder, if any.
    #[serde(default, skip_serializing_if = "is_default")]
    pub escalate: Vec<Sig>,
    /// How long each rung waits for the tree to die before the next (µs).
    #[serde(default, skip_serializing_if = "is_default")]
    pub rung_wait_us: u64,
    /// Signal the whole tree, not the root.
    #[serde(default, skip_serializing_if = "is_default")]
    pub teardown_group: bool,
    /// Default deadline of a trial (µs): the scenario's, or 250 ms + 10 ms a
    /// node + the latest kill delay.
    pub deadline_us: u64,
    /// What the host does before it spawns the root (absent: nothing).
    #[serde(default, skip_serializing_if = "is_default")]
    pub host: PlanHost,
}

impl Plan {
    /// Instantiate `scenario` with `seed`. Pure and deterministic.
    pub fn new(scenario: &Scenario, seed: u64) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes = build_tree(scenario);
        let mut kills = Vec::new();
        for k in &scenario.kills {
            let mut matches: Vec<u32> = (0..nodes.len() as u32)
                .filter(|&i| matches(&k.target, &nodes[i as usize]))
                .collect();
            if let At::Gate(_) = k.at {
                matches.retain(|&i| !nodes[i as usize].children.is_empty());
            }
            let targets = match k.pick {
                Pick::All => matches,
                Pick::One if matches.is_empty() => matches,
                Pick::One => vec![matches[draw(&mut rng, matches.len() as u64) as usize]],
            };
            for target in targets {
                let at = match k.at {
                    At::Ready => PlanAt::Ready,
                    At::Gate(phase) => {
                        let children = &nodes[target as usize].children;
                        let child = children[draw(&mut rng, children.len() as u64) as usize];
                        PlanAt::Gate { child, phase }
                    }
                    At::Window { lo, hi } => {
                        let (lo, hi) = (lo.as_micros() as u64, hi.as_micros() as u64);
                        PlanAt::Delay {
                            after_ready_us: lo + draw(&mut rng, hi - lo + 1),
                        }
                    }
                    At::Birth { lo, hi } => {
                        let (lo, hi) = (lo.as_micros() as u64, hi.as_micros() as u64);
                        PlanAt::Birth {
                            after_created_us: lo + draw(&mut rng, hi - lo + 1),
                        }
                    }
                    At::ChildBirth { lo, hi } => {
                        let (lo, hi) = (lo.as_micros() as u64, hi.as_micros() as u64);
                        let after_created_us = lo + draw(&mut rng, hi - lo + 1);
                        match nodes[target as usize].children.first() {
                            Some(&child) => PlanAt::ChildBirth {
                                child,
                                after_created_us,
                            },
                            // A leaf has no fork to count from: its own
                            // creation (the parse refuses a selector that
                            // matches no node with children).
                            None => PlanAt::Birth { after_created_us },
                        }
                    }
                };
                kills.push(PlanKill {
                    target,
                    signal: k.signal,
                    at,
                    then: k.then.clone(),
                    grace_us: if k.then.is_empty() {
                        0
                    } else {
                        k.grace.as_micros() as u64
                    },
                    per_trial_us: k.per_trial.then(|| k.at.window_us()).flatten(),
                });
            }
        }
        let mut nodes = nodes;
        for k in &kills {
            if let PlanAt::Gate { child, phase } = k.at {
                nodes[child as usize].gate = Some(phase);
            }
        }
        // The plan's own draw stays in the sequence (a per-trial kill
        // changes no other draw); `at` then holds trial 0's moment.
        for (i, k) in kills.iter_mut().enumerate() {
            if let Some((lo, hi)) = k.per_trial_us {
                k.at = k.at.at_moment(moment_in_trial(seed, 0, i, lo, hi));
            }
        }
        let latest_delay = kills
            .iter()
            .filter_map(|k| k.per_trial_us.map(|(_, hi)| hi).or(k.at.moment_us()))
            .max()
            .unwrap_or(0);
        let execs = nodes
            .iter()
            .filter(|n| n.exec || n.command.is_some())
            .count() as u64;
        let startups: u64 = nodes.iter().map(|n| n.startup_us).sum();
        let deadline_us = scenario.deadline.map_or(
            250_000 + 10_000 * nodes.len() as u64 + 20_000 * execs + latest_delay + startups,
            |d| d.as_micros() as u64,
        );
        Plan {
            scenario: scenario.name.clone(),
            scenario_hash: scenario.source_hash.clone(),
            seed,
            nodes,
            kills,
            teardown: scenario.teardown.ladder[0],
            escalate: scenario.teardown.ladder[1..].to_vec(),
            rung_wait_us: if scenario.teardown.ladder.len() > 1 {
                scenario.teardown.rung_wait.as_micros() as u64
            } else {
                0
            },
            teardown_group: scenario.teardown.group,
            deadline_us,
            host: PlanHost {
                attendant: scenario.host.attendant,
                chance_permille: scenario.host.chance_permille,
            },
        }
    }

    /// Why this plan cannot run as written, if it cannot: a kill held at
    /// the gate of a `command` node waits for a phase report that an
    /// external program never sends, so every trial would hang. `lab check`
    /// and `lab plan` print it, `lab run` refuses the plan (exit status 2),
    /// and a trial given such a plan (a soak's seed) is an `error` with it.
    /// A kill held at the `created` gate of a child that its parent spawns
    /// from a thread (`spawn_from_thread`) cannot fire either: the parent's
    /// spawn waits until the child has armed, which it does only past the
    /// gate, so the parent never reports ready.
    pub fn unreachable_gate(&self) -> Option<String> {
        if let Some(n) = self.nodes.iter().find(|n| {
            n.gate == Some(Phase::Created)
                && n.parent
                    .is_some_and(|p| self.nodes[p as usize].spawn_from_thread)
        }) {
            return Some(format!(
                "a kill is held at the created gate of node {}, whose parent spawns it from a \
                 thread (spawn_from_thread): that spawn waits until the child has armed, which it \
                 does only past the gate, so the parent is never ready and every trial would \
                 hang; hold the kill at gate:armed, or spawn without a thread",
                n.path
            ));
        }
        let n = self
            .nodes
            .iter()
            .find(|n| n.gate.is_some() && n.command.is_some())?;
        Some(format!(
            "a kill is held at the gate of node {} (`{}`), a command node: an external program \
             reports no phases, so its gate is never reached and every trial would hang; let the \
             kill hold a node of the lab (not a `command` leaf), or fire it at a time \
             (at = \"2ms..20ms\")",
            n.path,
            n.command.as_deref().unwrap_or_default().join(" ")
        ))
    }

    /// The plan's hash: the first 16 hex digits of the SHA-256 of its JSON
    /// without the seed that produced it, so that equal plans have equal
    /// hashes whatever their seeds. The seed is hashed only when it still
    /// decides something at run time: a host action with a chance strictly
    /// between 0 and 1000‰, drawn per trial from the seed
    /// ([`PlanHost::acts_in`]), or a kill's moment drawn per trial
    /// ([`Plan::for_trial`]).
    pub fn hash(&self) -> String {
        let mut v = serde_json::to_value(self).expect("a plan always serializes");
        let seed_decides = self.index_draws();
        if let (false, Some(fields)) = (seed_decides, v.as_object_mut()) {
            fields.remove("seed");
        }
        let json = serde_json::to_vec(&v).expect("a value always serializes");
        crate::scenario::hex16_of(&Sha256::digest(json))
    }
}

/// A uniform-enough draw in `0..n` (n ≥ 1): the next ChaCha word modulo n.
/// Written out so that the plan cannot change with a `rand` release.
fn draw(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

fn matches(sel: &Selector, node: &PlanNode) -> bool {
    let path: Vec<u32> = if node.parent.is_none() {
        Vec::new()
    } else {
        node.path
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    sel.matches(&path, !node.children.is_empty())
}

fn build_tree(scenario: &Scenario) -> Vec<PlanNode> {
    let mut nodes = vec![PlanNode {
        path: "root".into(),
        ..PlanNode::default()
    }];
    let mut level: Vec<u32> = vec![0];
    for (depth, &breadth) in scenario.shape.iter().enumerate() {
        let mut next = Vec::new();
        for &parent in &level {
            for i in 0..breadth {
                let idx = nodes.len() as u32;
                let path = if parent == 0 {
                    i.to_string()
                } else {
                    format!("{}.{i}", nodes[parent as usize].path)
                };
                nodes.push(PlanNode {
                    path,
                    parent: Some(parent),
                    depth: depth as u32 + 1,
                    ..PlanNode::default()
                });
                nodes[parent as usize].children.push(idx);
                next.push(idx);
            }
        }
        level = next;
    }
    for node in nodes.iter_mut() {
        for (sel, rule) in &scenario.nodes {
            if matches(sel, node) {
                node.linger = rule.linger.unwrap_or(node.linger);
                node.exit_code = rule.exit_code.unwrap_or(node.exit_code);
                node.expect_exit = rule.expect_exit.unwrap_or(node.expect_exit);
                node.exit_delay_us = rule
                    .exit_delay
                    .map_or(node.exit_delay_us, |d| d.as_micros() as u64);
                node.exec = rule.exec.unwrap_or(node.exec);
                if let Some(d) = rule.startup {
                    node.startup_us = d.as_micros() as u64;
                }
                if rule.command.is_some() {
                    node.command.clone_from(&rule.command);
                }
                if let Some(env) = &rule.env {
                    node.env.clone_from(env);
                }
                if rule.cwd.is_some() {
                    node.cwd.clone_from(&rule.cwd);
                }
                node.threads = rule.threads.unwrap_or(node.threads);
                node.hazard = rule.hazard.unwrap_or(node.hazard);
                node.attendant = rule.attendant.unwrap_or(node.attendant);
                node.hold_permille = rule.hold_permille.unwrap_or(node.hold_permille);
                node.spawn_from_thread = rule.spawn_from_thread.unwrap_or(node.spawn_from_thread);
                node.capture = rule.capture.unwrap_or(node.capture);
                node.log = rule.log.unwrap_or(node.log);
                node.read = rule.read.unwrap_or(node.read);
                node.output_bytes = rule.output_bytes.unwrap_or(node.output_bytes);
                node.dup_stdout = rule.dup_stdout.or(node.dup_stdout);
                node.helper = rule.helper.unwrap_or(node.helper);
                node.daemon = rule.daemon.unwrap_or(node.daemon);
                node.spin = rule.spin.unwrap_or(node.spin);
                if let Some(ignore) = &rule.ignore {
                    node.ignore.clone_from(ignore);
                }
                node.pid_reuse = rule.pid_reuse.unwrap_or(node.pid_reuse);
            }
        }
        // A start-up is an exec'd program's (a command's is its own).
        node.exec |= node.startup_us > 0 && node.command.is_none();
    }
    // The root is a copy of the supervisor, whose stdout nobody reads; or
    // a command (the program `lab exec` runs), whose stdout and stderr the
    // supervisor reads, and with `capture` reads to EOF.
    nodes[0].exec = false;
    if nodes[0].command.is_none() {
        nodes[0].capture = false;
    }
    nodes
}
#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
