#!/usr/bin/env bash
# Measure what `lab wrap` as a nextest wrapper script costs a nextest run: the
# wall time of `cargo nextest run -E 'binary(clean)'` over the fixture crate
# lab/tests/fixtures/wrap-tests (its clean test binary: 2 tests, each its own
# process under nextest), bare and with the wrapper script, in turn.
#
#   scripts/nextest-wrap-cost.sh
#   RUNS=20 LAB=target/debug/lab scripts/nextest-wrap-cost.sh
#
# The wrapped form is the bare command plus `--config-file` of a temporary
# nextest config made here (what docs/wrap.md shows):
#
#   experimental = ["wrapper-scripts"]
#   [scripts.wrapper.lab]
#   command = ["LAB", "wrap", "--"]
#   [[profile.default.scripts]]
#   filter = "all()"
#   run-wrapper = "lab"
#
# Both run in the fixture's directory with a CARGO_TARGET_DIR of their own (a
# temporary directory, removed at the end), built once first and checked to
# pass both ways, each test through one wrap (not timed). Then RUNS pairs, the order alternating (bare
# first in odd pairs, wrapped first in even ones), each command's wall time
# taken around the whole command (nextest's listing, its runs, cargo's
# freshness check). Printed: each pair's times, then per form the median and
# the p10 and p90 (nearest rank), and the ratio of the medians wrapped/bare.
#
# Environment:
#   LAB    the lab binary (default target/release/lab; build it with
#          `cargo build --release -p lab`)
#   RUNS   pairs of runs (default 10)
#
# Needs cargo-nextest (0.9.x with wrapper scripts). Exits 2 on a bad RUNS or a
# missing LAB, 3 when nextest is missing or a run fails (its output shown).
set -euo pipefail

cd "$(dirname "$0")/.."

LAB=${LAB:-target/release/lab}
RUNS=${RUNS:-10}
if [[ ! $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "nextest-wrap-cost: RUNS must be a positive whole number, not '$RUNS'" >&2
    exit 2
fi
if [[ ! -x $LAB ]]; then
    echo "nextest-wrap-cost: no lab binary at $LAB (build it: cargo build --release -p lab; or set LAB)" >&2
    exit 2
fi
LAB=$(realpath "$LAB")
if ! command -v cargo-nextest >/dev/null; then
    echo "nextest-wrap-cost: cargo-nextest is not on PATH (cargo install --locked cargo-nextest)" >&2
    exit 3
fi

WORK=$(mktemp -d -t nextest-wrap-cost.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
CONFIG=$WORK/wrapper.toml
cat >"$CONFIG" <<EOF
experimental = ["wrapper-scripts"]

[scripts.wrapper.lab]
command = ["$LAB", "wrap", "--"]

[[profile.default.scripts]]
filter = "all()"
run-wrapper = "lab"
EOF
export CARGO_TARGET_DIR=$WORK/target
cd lab/tests/fixtures/wrap-tests

BARE=(cargo nextest run --offline -E 'binary(clean)')
WRAPPED=("${BARE[@]}" --config-file "$CONFIG")

# Run "$@" with its output in $WORK/out; on failure show it and exit 3.
run() {
    if ! "$@" >"$WORK/out" 2>&1; then
        cat "$WORK/out" >&2
        echo "nextest-wrap-cost: failed: $*" >&2
        exit 3
    fi
}

# The wall time of "$@" in ms (one decimal).
timed() {
    local t0 t1
    t0=$(date +%s%N)
    run "$@"
    t1=$(date +%s%N)
    awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e6 }'
}

echo "build and check (not timed)"
run "${BARE[@]}"
# (Its passing tests' output shown, to see the wraps' lines.)
run "${WRAPPED[@]}" --success-output immediate
[[ $(grep -c "nothing left behind" "$WORK/out") == 2 ]] || {
    cat "$WORK/out" >&2
    echo "nextest-wrap-cost: the wrapped run did not go through lab wrap" >&2
    exit 3
}

bare=()
wrapped=()
for ((i = 1; i <= RUNS; i++)); do
    if ((i % 2)); then
        b=$(timed "${BARE[@]}")
        w=$(timed "${WRAPPED[@]}")
    else
        w=$(timed "${WRAPPED[@]}")
        b=$(timed "${BARE[@]}")
    fi
    bare+=("$b")
    wrapped+=("$w")
    printf 'pair %2d: bare %7s ms  wrapped %7s ms\n' "$i" "$b" "$w"
done

# "median p10 p90" of the numbers given (p10, p90: nearest rank).
stats() {
    printf '%s\n' "$@" | sort -n | awk '
        { v[NR] = $1 }
        END {
            n = NR
            med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            r10 = int(0.1 * n); if (r10 < 0.1 * n) r10++; if (r10 < 1) r10 = 1
            r90 = int(0.9 * n); if (r90 < 0.9 * n) r90++
            printf "%.1f %.1f %.1f\n", med, v[r10], v[r90]
        }'
}

read -r bmed b10 b90 < <(stats "${bare[@]}")
read -r wmed w10 w90 < <(stats "${wrapped[@]}")
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(cargo nextest --version | head -n1), lab: $LAB"
echo "command: cargo nextest run --offline -E 'binary(clean)' [--config-file wrapper.toml], in lab/tests/fixtures/wrap-tests"
printf 'bare:    median %s ms (p10 %s .. p90 %s), %d runs\n' "$bmed" "$b10" "$b90" "$RUNS"
printf 'wrapped: median %s ms (p10 %s .. p90 %s), %d runs\n' "$wmed" "$w10" "$w90" "$RUNS"
awk -v w="$wmed" -v b="$bmed" 'BEGIN { printf "ratio wrapped/bare (medians): %.2fx, added %.1f ms\n", w / b, w - b }'
