//! Unit tests of the plan builder: determinism, tree layout, kill resolution,
//! and properties over random seeds and shapes.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn nested() -> Scenario {
    Scenario::load("nested").unwrap_or_else(|e| panic!("{e}"))
}

fn scenario(text: &str) -> Scenario {
    Scenario::parse("t.toml", text).unwrap_or_else(|e| panic!("{e}\n--- text:\n{text}"))
}

/// Structural invariants every plan must satisfy.
fn check_invariants(plan: &Plan) -> Result<(), TestCaseError> {
    let n = plan.nodes.len() as u32;
    prop_assert!(n >= 1);
    prop_assert_eq!(&plan.nodes[0].path, "root");
    prop_assert_eq!(plan.nodes[0].parent, None);
    prop_assert_eq!(plan.nodes[0].depth, 0);
    let mut paths = BTreeSet::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let i = i as u32;
        prop_assert!(
            paths.insert(node.path.clone()),
            "duplicate path {}",
            node.path
        );
        if i > 0 {
            let p = node.parent.expect("a non-root node has a parent");
            prop_assert!(p < i, "parent {} of {} comes first (breadth-first)", p, i);
            let parent = &plan.nodes[p as usize];
            prop_assert!(
                parent.children.contains(&i),
                "parent {} lists {}",
                parent.path,
                node.path
            );
            prop_assert_eq!(node.depth, parent.depth + 1);
            let expected = if p == 0 {
                String::new()
            } else {
                format!("{}.", parent.path)
            };
            prop_assert!(
                node.path.starts_with(&expected),
                "{} under {}",
                node.path,
                parent.path
            );
        }
        for &c in &node.children {
            prop_assert!(c < n);
            prop_assert_eq!(plan.nodes[c as usize].parent, Some(i));
        }
    }
    for k in &plan.kills {
        prop_assert!(k.target < n, "kill target {} out of range", k.target);
        if let PlanAt::Gate { child, phase } = k.at {
            prop_assert!(child < n);
            prop_assert!(plan.nodes[k.target as usize].children.contains(&child));
            prop_assert_eq!(plan.nodes[child as usize].parent, Some(k.target));
            // The last kill holding a child sets its gate.
            prop_assert!(
                plan.nodes[child as usize].gate.is_some(),
                "gate of {} ({:?})",
                child,
                phase
            );
        }
    }
    // A node has a gate only if some kill holds it.
    for (i, node) in plan.nodes.iter().enumerate() {
        if node.gate.is_some() {
            let held = plan
                .kills
                .iter()
                .any(|k| matches!(k.at, PlanAt::Gate { child, .. } if child as usize == i));
            prop_assert!(held, "{} has a gate but no kill holds it", node.path);
        }
    }
    Ok(())
}

#[test]
fn nested_seed_7_is_reproducible() {
    let a = Plan::new(&nested(), 7);
    let b = Plan::new(&nested(), 7);
    assert_eq!(a, b);
    assert_eq!(a.render(), b.render());
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.hash().len(), 16);
    assert!(a.hash().chars().all(|c| c.is_ascii_hexdigit()));
    assert!(a
        .render()
        .starts_with(&format!("plan {}  scenario nested (", a.hash())));
    assert!(a.render().contains("seed 7"));
}

#[test]
fn the_hash_covers_the_plan_not_the_seed() {
    // Seeds 1..=50 of `nested` resolve to fewer distinct plans than seeds:
    // equal plans (their seed aside) have equal hashes, and unequal plans
    // unequal ones.
    let plans: Vec<Plan> = (1..=50).map(|seed| Plan::new(&nested(), seed)).collect();
    let without_seed = |p: &Plan| Plan {
        seed: 0,
        ..p.clone()
    };
    let mut equal_pairs = 0;
    for (i, a) in plans.iter().enumerate() {
        for b in &plans[i + 1..] {
            let same = without_seed(a) == without_seed(b);
            assert_eq!(
                a.hash() == b.hash(),
                same,
                "seeds {} and {}",
                a.seed,
                b.seed
            );
            equal_pairs += usize::from(same);
        }
    }
    assert!(equal_pairs > 0, "no two seeds gave the same plan");
    assert!(plans.iter().any(|p| p.hash() != plans[0].hash()));
}

#[test]
fn the_seed_is_hashed_when_it_draws_the_host_action() {
    let text = crate::scenario::BUILTIN
        .iter()
        .find(|(n, _)| *n == "mt-fork-attendant")
        .unwrap()
        .1;
    let mut a = Plan::new(&Scenario::parse("x.toml", text).unwrap(), 1);
    a.host.attendant = crate::scenario::AttendantAction::Init;
    a.host.chance_permille = 500;
    let b = Plan {
        seed: 2,
        ..a.clone()
    };
    assert_ne!(a.hash(), b.hash());
    let (mut a, mut b) = (a, b);
    a.host.chance_permille = 1000;
    b.host.chance_permille = 1000;
    assert_eq!(a.hash(), b.hash());
}

#[test]
fn nested_layout_is_breadth_first() {
    let plan = Plan::new(&nested(), 7);
    assert_eq!(plan.scenario, "nested");
    assert_eq!(plan.seed, 7);
    assert_eq!(plan.scenario_hash, nested().source_hash);
    assert_eq!(plan.nodes.len(), 15);
    let paths: Vec<&str> = plan.nodes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "root", "0", "1", "0.0", "0.1", "1.0", "1.1", "0.0.0", "0.0.1", "0.1.0", "0.1.1",
            "1.0.0", "1.0.1", "1.1.0", "1.1.1"
        ]
    );
    assert_eq!(plan.nodes[0].children, vec![1, 2]);
    assert_eq!(plan.nodes[1].children, vec![3, 4]);
    assert_eq!(plan.nodes[6].children, vec![13, 14]);
    assert_eq!(plan.nodes[13].parent, Some(6));
    assert!(
        plan.nodes.iter().all(|n| n.linger),
        "[nodes.\"*\"] linger = true"
    );
    assert_eq!(plan.teardown, Sig::Kill);
    // No deadline in the file: 250 ms + 10 ms a node.
    assert_eq!(plan.deadline_us, 250_000 + 15 * 10_000);
    check_invariants(&plan).unwrap();
}

#[test]
fn nested_kill_holds_a_child_of_an_interior_target() {
    let plan = Plan::new(&nested(), 7);
    assert_eq!(plan.kills.len(), 1, "pick = \"one\"");
    let k = &plan.kills[0];
    assert_eq!(k.signal, Sig::Kill);
    let target = &plan.nodes[k.target as usize];
    assert!(
        !target.children.is_empty(),
        "the target {} is interior",
        target.path
    );
    let PlanAt::Gate { child, phase } = k.at else {
        panic!("nested kills at a gate, got {:?}", k.at)
    };
    assert_eq!(phase, Phase::Created);
    assert!(target.children.contains(&child));
    assert_eq!(plan.nodes[child as usize].parent, Some(k.target));
    assert_eq!(plan.nodes[child as usize].gate, Some(Phase::Created));
    let gated: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| plan.nodes[i].gate.is_some())
        .collect();
    assert_eq!(gated, vec![child as usize], "exactly one node is gated");
    let text = plan.render();
    assert!(text.contains(&format!(
        "kill {} with SIGKILL while its child {} is held at gate created, then release it",
        target.path, plan.nodes[child as usize].path
    )));
}

#[test]
fn the_seed_picks_the_target() {
    let s = nested();
    let mut targets = BTreeSet::new();
    let mut children = BTreeSet::new();
    for seed in 0..200 {
        let plan = Plan::new(&s, seed);
        let k = &plan.kills[0];
        assert!(!plan.nodes[k.target as usize].children.is_empty());
        targets.insert(k.target);
        if let PlanAt::Gate { child, .. } = k.at {
            children.insert(child);
        }
    }
    assert!(
        targets.len() >= 2,
        "only targets {targets:?} over 200 seeds"
    );
    // With 200 seeds and 7 interior nodes, every one is picked.
    assert_eq!(targets, (0..7).collect());
    assert!(children.len() >= 2);
}

#[test]
fn pick_all_hits_every_match() {
    let s = scenario(
        "version = 1\nname = \"t\"\n[tree]\nbreadth = 2\ndepth = 2\n\
         [[kill]]\ntarget = \"leaves\"\nsignal = \"TERM\"\nat = \"ready\"\n\
         [[kill]]\ntarget = \"depth:1\"\nat = \"gate:armed\"\n",
    );
    let plan = Plan::new(&s, 3);
    let targets: Vec<u32> = plan.kills.iter().map(|k| k.target).collect();
    assert_eq!(
        targets,
        vec![3, 4, 5, 6, 1, 2],
        "leaves in order, then depth:1"
    );
    assert!(plan.kills[..4]
        .iter()
        .all(|k| k.at == PlanAt::Ready && k.signal == Sig::Term));
    for k in &plan.kills[4..] {
        let PlanAt::Gate { child, phase } = k.at else {
            panic!("{k:?}")
        };
        assert_eq!(phase, Phase::Armed);
        assert_eq!(plan.nodes[child as usize].parent, Some(k.target));
        assert_eq!(plan.nodes[child as usize].gate, Some(Phase::Armed));
    }
    check_invariants(&plan).unwrap();
}

#[test]
fn gate_on_star_only_targets_interior_nodes() {
    let s = scenario(
        "version = 1\nname = \"t\"\n[tree]\nbreadth = [1, 3]\n[[kill]]\ntarget = \"*\"\nat = \"gate:created\"\n",
    );
    let plan = Plan::new(&s, 0);
    let targets: Vec<u32> = plan.kills.iter().map(|k| k.target).collect();
    assert_eq!(
        targets,
        vec![0, 1],
        "root and 0; the leaves have no child to hold"
    );
}

#[test]
fn windows_are_drawn_within_bounds() {
    let s = scenario(
        "version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n\
         [[kill]]\ntarget = \"0\"\nat = \"2ms..20ms\"\n[[kill]]\ntarget = \"root\"\nat = \"5ms\"\n",
    );
    let mut seen = BTreeSet::new();
    for seed in 0..100 {
        let plan = Plan::new(&s, seed);
        let PlanAt::Delay { after_ready_us } = plan.kills[0].at else {
            panic!()
        };
        assert!(
            (2_000..=20_000).contains(&after_ready_us),
            "{after_ready_us}"
        );
        seen.insert(after_ready_us);
        assert_eq!(
            plan.kills[1].at,
            PlanAt::Delay {
                after_ready_us: 5_000
            }
        );
        // The default deadline makes room for the latest kill.
        assert_eq!(
            plan.deadline_us,
            250_000 + 2 * 10_000 + after_ready_us.max(5_000)
        );
    }
    assert!(
        seen.len() > 50,
        "the window is seeded: {} distinct delays",
        seen.len()
    );
}

#[test]
fn deadline_from_the_scenario() {
    let s = scenario(
        "version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n[limits]\ndeadline = \"3s\"\n",
    );
    assert_eq!(Plan::new(&s, 0).deadline_us, 3_000_000);
}

#[test]
fn render_lists_nodes_and_kills() {
    let s = scenario(
        "version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n[teardown]\nsignal = \"TERM\"\n\
         [nodes.leaves]\nexit_code = 3\nexit_delay = \"2ms\"\n[[kill]]\ntarget = \"root\"\nat = \"ready\"\n",
    );
    let plan = Plan::new(&s, 1);
    let text = plan.render();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "plan {}  scenario t ({})  seed 1",
            plan.hash(),
            s.source_hash
        )
    );
    assert_eq!(
        lines[1],
        "nodes 2  deadline 270 ms  teardown SIGTERM to root"
    );
    assert_eq!(lines[2], "  root: exit 0 after children + 0 us");
    assert_eq!(lines[3], "    0: exit 3 after children + 2000 us");
    assert_eq!(lines[4], "kill root with SIGKILL when the tree is ready");
    assert_eq!(lines.len(), 5);
}

#[test]
fn the_hash_covers_the_scenario_text() {
    let a = scenario("version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n");
    let b = scenario("version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n# changed\n");
    assert_eq!(Plan::new(&a, 0).nodes, Plan::new(&b, 0).nodes);
    assert_ne!(Plan::new(&a, 0).hash(), Plan::new(&b, 0).hash());
}

// ---------------------------------------------------------------- properties

const SELECTORS: &[&str] = &[
    "root", "leaves", "interior", "*", "depth:0", "depth:1", "depth:2", "0", "0.0", "1",
];
const ATS: &[&str] = &["ready", "gate:created", "gate:armed", "5ms", "2ms..20ms"];

/// Whether the parser accepts a gate on `sel` in a tree of `depth` levels.
fn gate_allowed(sel: &str, depth: usize) -> bool {
    match sel {
        "leaves" => false,
        s if s.starts_with("depth:") => s[6..].parse::<usize>().unwrap() < depth,
        "root" | "interior" | "*" => depth > 0,
        path => path.split('.').count() < depth,
    }
}

/// A scenario text for `shape` (as a list, or as breadth + depth when all
/// levels agree and `as_int`), with the given kills.
fn text_of(shape: &[u32], as_int: bool, kills: &[(usize, usize, bool)]) -> String {
    let mut t = String::from("version = 1\nname = \"prop\"\n[tree]\n");
    if as_int && !shape.is_empty() && shape.iter().all(|&b| b == shape[0]) {
        t += &format!("breadth = {}\ndepth = {}\n", shape[0], shape.len());
    } else {
        let list: Vec<String> = shape.iter().map(|b| b.to_string()).collect();
        t += &format!("breadth = [{}]\n", list.join(", "));
    }
    for &(sel, at, one) in kills {
        // Selectors that name no node of the tree are refused by the parser.
        let fits = crate::scenario::Selector::parse(SELECTORS[sel]).is_some_and(|s| s.fits(shape));
        let sel = if fits { SELECTORS[sel] } else { "root" };
        let mut at = ATS[at];
        if at.starts_with("gate:") && !gate_allowed(sel, shape.len()) {
            at = "ready";
        }
        let pick = if one { "one" } else { "all" };
        t += &format!("[[kill]]\ntarget = \"{sel}\"\npick = \"{pick}\"\nat = \"{at}\"\n");
    }
    t += "[nodes.leaves]\nlinger = true\n";
    t
}

#[test]
fn a_created_gate_below_a_spawn_from_a_thread_is_unreachable() {
    // The parent's spawn from a thread waits for the child to arm, past its
    // gate: the kill held at `created` could never fire.
    let text = |phase: &str| {
        format!(
            "version = 1\nname = \"t\"\n[tree]\nbreadth = [2]\n\
             [[kill]]\ntarget = \"root\"\nsignal = \"KILL\"\nat = \"gate:{phase}\"\n\
             [nodes.root]\nspawn_from_thread = true\n"
        )
    };
    let why = Plan::new(&scenario(&text("created")), 1)
        .unreachable_gate()
        .expect("unreachable");
    assert!(why.contains("spawn_from_thread"), "{why}");
    assert!(why.contains("gate:armed"), "{why}");
    // At `armed` the spawn has returned: the kill fires.
    assert_eq!(
        Plan::new(&scenario(&text("armed")), 1).unreachable_gate(),
        None
    );
}

fn shapes() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1u32..=4, 0..=4)
}

fn kills() -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
    prop::collection::vec((0..SELECTORS.len(), 0..ATS.len(), any::<bool>()), 0..=3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn same_scenario_and_seed_same_plan(shape in shapes(), as_int in any::<bool>(), ks in kills(), seed in any::<u64>()) {
        let text = text_of(&shape, as_int, &ks);
        let s1 = scenario(&text);
        let s2 = scenario(&text);
        prop_assert_eq!(&s1, &s2);
        let a = Plan::new(&s1, seed);
        let b = Plan::new(&s2, seed);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.hash(), b.hash());
        prop_assert_eq!(a.render(), b.render());
    }

    #[test]
    fn plan_structure(shape in shapes(), as_int in any::<bool>(), ks in kills(), seed in any::<u64>()) {
        let text = text_of(&shape, as_int, &ks);
        let s = scenario(&text);
        prop_assert_eq!(&s.shape, &shape);
        let plan = Plan::new(&s, seed);
        let mut expected: u64 = 1;
        let mut level: u64 = 1;
        for &b in &shape {
            level *= b as u64;
            expected += level;
        }
        prop_assert_eq!(plan.nodes.len() as u64, expected);
        prop_assert_eq!(s.node_count(), expected);
        check_invariants(&plan)?;
        // Leaves linger, interior nodes do not.
        for n in &plan.nodes {
            prop_assert_eq!(n.linger, n.children.is_empty());
        }
        // Per kill rule: `all` hits every match, `one` at most one.
        let mut i = 0;
        for k in &s.kills {
            let count = plan.nodes.iter().filter(|n| {
                let path: Vec<u32> = if n.parent.is_none() {
                    Vec::new()
                } else {
                    n.path.split('.').map(|p| p.parse().unwrap()).collect()
                };
                k.target.matches(&path, !n.children.is_empty())
                    && (!matches!(k.at, At::Gate(_)) || !n.children.is_empty())
            }).count();
            let hits = match k.pick {
                Pick::All => count,
                Pick::One => count.min(1),
            };
            for pk in &plan.kills[i..i + hits] {
                prop_assert_eq!(pk.signal, k.signal);
                let p = &plan.nodes[pk.target as usize];
                let path: Vec<u32> = if p.parent.is_none() {
                    Vec::new()
                } else {
                    p.path.split('.').map(|x| x.parse().unwrap()).collect()
                };
                prop_assert!(k.target.matches(&path, !p.children.is_empty()));
            }
            i += hits;
        }
        prop_assert_eq!(i, plan.kills.len());
    }
}

// ---------------------------------------------------------------- known bugs

/// Known bug: durations near `u64::MAX` µs are truncated by `as u64` in
/// `Plan::new`, and a window whose upper bound truncates below its lower bound
/// panics with "attempt to subtract with overflow" (plan.rs, `hi - lo + 1`) in
/// debug builds and wraps in release. Either the parser should refuse such
/// durations or the plan should saturate; this test accepts both fixes.
#[test]
fn huge_windows_neither_panic_nor_wrap() {
    let text = "version = 1\nname = \"t\"\n[tree]\nbreadth = 1\ndepth = 1\n\
                [[kill]]\ntarget = \"root\"\nat = \"584000years..585000years\"\n";
    let Ok(s) = Scenario::parse("t.toml", text) else {
        return; // refused by the parser: fixed.
    };
    let plan = std::panic::catch_unwind(|| Plan::new(&s, 0)).expect("Plan::new must not panic");
    let PlanAt::Delay { after_ready_us } = plan.kills[0].at else {
        panic!()
    };
    assert!(
        after_ready_us >= 584_000 * 31_557_600 * 1_000_000,
        "delay wrapped to {after_ready_us}"
    );
}

#[test]
fn the_host_draws_its_chance_from_the_seed_and_the_trial() {
    let always =
        scenario("version = 1\nname = \"h\"\n[tree]\nbreadth = []\n[host]\nattendant = \"use\"\n");
    let plan = Plan::new(&always, 1);
    assert!((0..50).all(|t| plan.host.acts_in(1, t)));
    let half = scenario(
        "version = 1\nname = \"h\"\n[tree]\nbreadth = []\n[host]\nattendant = \"use\"\nchance = 0.5\n",
    );
    let plan = Plan::new(&half, 1);
    let draws: Vec<bool> = (0..200).map(|t| plan.host.acts_in(1, t)).collect();
    // The same trial draws the same answer; trials differ; about half act.
    assert_eq!(
        draws,
        (0..200)
            .map(|t| plan.host.acts_in(1, t))
            .collect::<Vec<_>>()
    );
    let yes = draws.iter().filter(|&&d| d).count();
    assert!((60..140).contains(&yes), "{yes} of 200");
    let never = PlanHost {
        chance_permille: 0,
        ..plan.host.clone()
    };
    assert!(!never.acts() && !(0..50).any(|t| never.acts_in(1, t)));
    // A plan without a host action serializes as before (the hash of every
    // scenario without [host] is unchanged).
    assert!(!serde_json::to_string(&Plan::new(&nested(), 7))
        .unwrap()
        .contains("host"));
}

#[test]
fn seeds_travel_as_strings_in_json_and_older_numbers_still_read() {
    let p = Plan::new(&nested(), u64::MAX);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["seed"], "18446744073709551615");
    let back: Plan = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, p);
    let mut old = v;
    old["seed"] = serde_json::json!(7u64);
    assert_eq!(serde_json::from_value::<Plan>(old).unwrap().seed, 7);
}

/// A two-level tree whose kill of one interior node (picked by the seed) is
/// timed from its creation in a 5..200 ms window, drawn per trial or not.
fn windowed(per_trial: bool) -> Scenario {
    scenario(&format!(
        "version = 1\nname = \"w\"\n[tree]\nbreadth = 2\ndepth = 2\n\
         [[kill]]\ntarget = \"interior\"\npick = \"one\"\nat = \"spawn+5ms..200ms\"\n\
         per_trial = {per_trial}\n"
    ))
}

#[test]
fn a_kill_drawn_per_trial_covers_its_window_and_each_trial_draws_the_same_again() {
    let plan = Plan::new(&windowed(true), 7);
    assert!(plan.draws_per_trial());
    assert_eq!(plan.kills[0].per_trial_us, Some((5_000, 200_000)));
    let moment = |p: &Plan| p.kills[0].at.moment_us().expect("a timed kill");
    let moments: Vec<u64> = (0..100).map(|t| moment(&plan.for_trial(t))).collect();
    assert!(
        moments.iter().all(|m| (5_000..=200_000).contains(m)),
        "{moments:?}"
    );
    let distinct: BTreeSet<u64> = moments.iter().copied().collect();
    assert!(distinct.len() >= 95, "{} distinct of 100", distinct.len());
    // Spread over the window, not bunched: both halves are drawn.
    assert!(moments.iter().any(|&m| m < 100_000) && moments.iter().any(|&m| m > 105_000));
    // A trial alone draws what it drew in its run: from a fresh plan of the
    // same seed, and as moment_in_trial says.
    let again = Plan::new(&windowed(true), 7);
    assert_eq!(moment(&again.for_trial(42)), moments[42]);
    assert_eq!(moments[42], moment_in_trial(7, 42, 0, 5_000, 200_000));
    // The plan holds trial 0's moment; another seed draws other moments,
    // and its hash (which then names the seed) differs.
    assert_eq!(plan.for_trial(0), plan);
    let other = Plan::new(&windowed(true), 8);
    assert_ne!(
        (0..20)
            .map(|t| moment(&other.for_trial(t)))
            .collect::<Vec<_>>(),
        moments[..20]
    );
    assert_ne!(plan.hash(), other.hash());
    // The per-trial draw changes no other draw of the plan: the same target.
    assert_eq!(
        plan.kills[0].target,
        Plan::new(&windowed(false), 7).kills[0].target
    );
    // The deadline makes room for the window's end, whatever trial 0 drew.
    assert!(plan.deadline_us >= 200_000 + 250_000);
    assert!(plan
        .render()
        .contains("each trial draws its own moment in 5000..200000 us"));
}

#[test]
fn a_window_without_per_trial_is_one_moment_for_every_trial() {
    let plan = Plan::new(&windowed(false), 7);
    assert!(!plan.draws_per_trial());
    assert!((0..20).all(|t| plan.for_trial(t) == plan));
    // As before: no per_trial field in the plan's JSON, the seed not hashed.
    assert!(!serde_json::to_string(&plan).unwrap().contains("per_trial"));
    let reseeded = Plan {
        seed: 8,
        ..plan.clone()
    };
    assert_eq!(plan.hash(), reseeded.hash());
    // With per-trial moments the seed still decides at run time: hashed.
    let per_trial = Plan::new(&windowed(true), 7);
    assert_ne!(
        per_trial.hash(),
        Plan {
            seed: 8,
            ..per_trial.clone()
        }
        .hash()
    );
}

#[test]
fn per_trial_is_refused_on_a_kill_that_is_not_timed() {
    let text = "version = 1\nname = \"w\"\n[tree]\nbreadth = 2\ndepth = 1\n\
                [[kill]]\ntarget = \"root\"\nat = \"ready\"\nper_trial = true\n";
    let e = Scenario::parse("t.toml", text).unwrap_err().to_string();
    assert!(
        e.contains("per_trial draws a timed at's moment per trial"),
        "{e}"
    );
}
