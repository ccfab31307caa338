//! Drawing a [`Case`]: the proptest strategies of each part (selectors,
//! knobs, kill times, kills) and the raw strategy of a whole case, before
//! [`super::cases`] keeps only those the lab parses and plans.

use proptest::prelude::*;

use super::{Case, KillCase, Knobs, Rule, Sel, TeardownCase, When};

fn sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        Just(Sel::All),
        Just(Sel::Root),
        Just(Sel::Leaves),
        Just(Sel::Interior),
        (0u8..4).prop_map(Sel::Depth),
        proptest::collection::vec(0u8..3, 1..4).prop_map(Sel::Path),
    ]
}

fn knobs() -> impl Strategy<Value = Knobs> {
    use proptest::option::of;
    let life = (
        of(any::<bool>()),
        of(0u8..4),
        of(0u8..=20),
        of(any::<bool>()),
        of(0u8..=4),
        of(0u8..3),
        of(0u16..=1000),
        of(any::<bool>()),
        of(0u8..4),
    );
    let io = (
        of(any::<bool>()),
        of(any::<bool>()),
        of(prop_oneof![Just(1u8), Just(16), Just(96)]),
        of(3u8..=12),
        of(any::<bool>()),
        of(any::<bool>()),
        of(proptest::collection::vec(0u8..3, 0..3)),
        of(0u8..3),
    );
    (life, io).prop_map(|(l, o)| Knobs {
        linger: l.0,
        exit_code: l.1,
        exit_delay_ms: l.2,
        exec: l.3,
        threads: l.4,
        hazard: l.5,
        hold_permille: l.6,
        spawn_from_thread: l.7,
        attendant: l.8,
        capture: o.0,
        read_after_exit: o.1,
        output_kib: o.2,
        dup_stdout: o.3,
        helper: o.4,
        daemon: o.5,
        ignore: o.6,
        command: o.7,
    })
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        Just(When::Ready),
        Just(When::GateCreated),
        Just(When::GateArmed),
        (0u8..=20).prop_map(When::After),
        (0u8..=10, 0u8..=20).prop_map(|(lo, w)| When::Window(lo, w)),
        (0u16..=2000).prop_map(When::Spawn),
    ]
}

fn kill() -> impl Strategy<Value = KillCase> {
    (sel(), any::<bool>(), 0u8..4, when(), any::<bool>()).prop_map(
        |(target, one, signal, at, ladder)| KillCase {
            target,
            one,
            signal,
            at,
            ladder,
        },
    )
}

/// The raw strategy: every part drawn, nothing checked.
pub(super) fn raw() -> impl Strategy<Value = Case> {
    (
        proptest::array::uniform13(any::<bool>()),
        proptest::collection::vec(1u8..=3, 0..=3),
        proptest::collection::vec(
            (sel(), knobs()).prop_map(|(selector, knobs)| Rule { selector, knobs }),
            0..=3,
        ),
        proptest::collection::vec(kill(), 0..=2),
        (any::<bool>(), any::<bool>()).prop_map(|(ladder, group)| TeardownCase { ladder, group }),
    )
        .prop_map(|(features, tree, rules, kills, teardown)| Case {
            features,
            tree,
            rules,
            kills,
            teardown,
        })
}
