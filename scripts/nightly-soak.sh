#!/usr/bin/env bash
# The nightly soak: the whole casebook, both sides (each scenario under the
# legacy strategies that have its defect and under canonical), a trial budget
# per scenario and strategy, into one dated directory, judged against each
# scenario's `[expect]` table: the script exits 1 when any strategy gives a
# verdict its scenario does not expect (canonical: `pass`, or `panic` where a
# guard stops the deadlock; the legacy side: its reproduction). The
# expectations live in scenarios/*.toml, not here.
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
# started.csv, diagnosis/: at most 20 diagnoses per scenario x strategy, the
# rest counted in the summary), OUT/<scenario>.json its summary,
# OUT/<scenario>.junit.xml its JUnit report (one test case per scenario x
# strategy, failing when its verdicts were unexpected: what CI shows as
# tests), OUT/report.md and OUT/charts/ the report and charts of all of them. Exit: 0 every strategy
# gave only the verdicts its scenario expects; 1 one did not (the
# `expectations` of the summaries say which, the replay commands are in their
# groups); 2 bad input; 3 the lab failed.
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

# The cases (a scenario and its legacy-side strategies; canonical is added
# to each), shared with the other casebook script.
mapfile -t CASES < <(grep -v -e '^#' -e '^$' scripts/casebook-cases.txt)

mkdir -p "$OUT"
failed=0
for case in "${CASES[@]}"; do
    read -r -a words <<<"$case"
    name=${words[0]}
    args=(soak --scenario "$name" --trials "$TRIALS" --seed "$SEED" -j "$JOBS"
          --progress none --format json)
    for s in "${words[@]:1}" canonical; do
        args+=(--strategy "$s")
    done
    [[ -n ${SHARD:-} ]] && args+=(--shard "$SHARD")
    if [[ -f $OUT/$name/soak.json ]]; then
        args=(soak --resume "$OUT/$name" -j "$JOBS" --progress none --format json)
    else
        args+=(--out "$OUT/$name")
    fi
    args+=(--junit "$OUT/$name.junit.xml")
    echo "nightly: lab ${args[*]}" >&2
    rc=0
    "$LAB" "${args[@]}" >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
    case $rc in
        0) ;;
        1) failed=1; echo "nightly: $name: UNEXPECTED verdicts (see expectations in $OUT/$name.json)" >&2 ;;
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
