#!/usr/bin/env bash
# The nightly soak: the whole casebook, both sides (each scenario under the
# legacy strategies that have its defect and under canonical), a trial budget
# per scenario and strategy, into one dated directory, with the canonical
# strategy gated: the script exits 1 when any canonical trial does not give
# its intended verdict (`pass`; `panic` where a guard stops the deadlock).
#
#   TRIALS=1000 scripts/nightly-soak.sh
#   SHARD=2/4 OUT=out/shard-2 scripts/nightly-soak.sh     # one shard of four
#
# Environment:
#   TRIALS  trials per scenario and strategy (default 200)
#   SEED    the soak's seed (default: the date, YYYYMMDD, so each night differs
#           and every failure replays from its row's seed)
#   SHARD   I/N: run only shard I of N (merge shards with `lab merge`)
#   JOBS    parallel supervisors (default: the number of cores)
#   LAB     the lab binary (default target/release/lab)
#   OUT     the directory (default results/nightly-YYYY-MM-DD, UTC)
#   REPORT  1 (default) to write report.md and charts/ when the lab has
#           `lab report` and `lab plot`; 0 to skip (shards: report after merge)
#
# Layout: OUT/<scenario>/ is one soak (trials.csv, summary.json, soak.json,
# started.csv, diagnosis/), OUT/<scenario>.json its summary, OUT/report.md
# and OUT/charts/ the report and charts of all of them. Exit: 0 every gated
# trial passed; 1 a canonical trial did not (the replay commands are in the
# summaries); 2 bad input; 3 the lab failed.
set -euo pipefail
cd "$(dirname "$0")/.."

TRIALS=${TRIALS:-200}
SEED=${SEED:-$(date -u +%Y%m%d)}
LAB=${LAB:-target/release/lab}
OUT=${OUT:-results/nightly-$(date -u +%Y-%m-%d)}
JOBS=${JOBS:-$(nproc)}
REPORT=${REPORT:-1}

if [[ ! -x $LAB ]]; then
    echo "nightly: no lab binary at $LAB (cargo build --release -p lab, or set LAB)" >&2
    exit 2
fi

# scenario, the verdicts canonical must give (its gate), then the legacy-side
# strategies; canonical is added to each. Where a guard of the canonical path
# turns the deadlock into a panic, that panic is the intended result.
CASES=(
    "nested pass legacy"
    "pdeathsig-race pass legacy pdeathsig-checked"
    "pdeathsig-thread pass legacy"
    "lifeline-leak pass lifeline-leaky"
    "stdio-dup panic legacy"
    "mt-fork-mutex pass fork-noexec legacy"
    "mt-fork-attendant panic legacy"
    "pipe-fill pass legacy"
    "setsid-escape pass legacy"
    "proc-oracle pass legacy"
    "pid-reuse pass legacy"
    "ignore-term pass legacy"
)

mkdir -p "$OUT"
failed=0
for case in "${CASES[@]}"; do
    read -r -a words <<<"$case"
    name=${words[0]}
    args=(soak --scenario "$name" --trials "$TRIALS" --seed "$SEED" -j "$JOBS"
          --gate "canonical:${words[1]}" --progress none --format json)
    for s in "${words[@]:2}" canonical; do
        args+=(--strategy "$s")
    done
    [[ -n ${SHARD:-} ]] && args+=(--shard "$SHARD")
    if [[ -f $OUT/$name/soak.json ]]; then
        args=(soak --resume "$OUT/$name" -j "$JOBS" --progress none --format json)
    else
        args+=(--out "$OUT/$name")
    fi
    echo "nightly: lab ${args[*]}" >&2
    rc=0
    "$LAB" "${args[@]}" >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
    case $rc in
        0) ;;
        1) failed=1; echo "nightly: $name: the canonical gate failed (see $OUT/$name.json)" >&2 ;;
        2)
            if grep -q "nothing was run" "$OUT/$name.stderr"; then
                echo "nightly: $name not run here: $(head -n 1 "$OUT/$name.stderr")" >&2
                rm -f "$OUT/$name.json"
            else
                cat "$OUT/$name.stderr" >&2
                exit 2
            fi
            ;;
        *) cat "$OUT/$name.stderr" >&2; exit "$rc" ;;
    esac
done

if [[ $REPORT == 1 ]] && "$LAB" help report >/dev/null 2>&1; then
    dirs=()
    for d in "$OUT"/*/; do [[ -f $d/trials.csv ]] && dirs+=("$d"); done
    "$LAB" report "${dirs[@]}" >"$OUT/report.md"
    "$LAB" plot "${dirs[@]}" --out "$OUT/charts" >/dev/null
    echo "nightly: wrote $OUT/report.md and $OUT/charts/" >&2
fi
exit "$failed"
