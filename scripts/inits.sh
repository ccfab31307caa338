#!/usr/bin/env bash
# Measure the init programs people put in containers (none, tini, dumb-init)
# under `lab exec`, and the PDEATHSIG race as a function of the time since
# fork, writing the result CSVs that docs/design/init-programs.md is made of
# (scripts/inits-page.sh makes the page from them).
#
#   scripts/inits.sh
#
# For each init (none: the shell itself; `tini -s --`; `tini -s -g --`;
# `dumb-init`) and each signal (INT, TERM, KILL):
#
#   lab exec --name init-INIT-SIG --trials 200 -j 4 --seed 1 \
#       --kill-after 5ms..200ms --signal SIG --out results/inits/INIT-SIG \
#       -- INIT sh -c 'sleep 100 & sleep 100 & wait'
#
# then the sweep of scenarios/pdeathsig-birth.toml over the kill's delay
# after node 0's birth, under legacy, pdeathsig-checked and canonical, into
# results/inits/pdeathsig-sweep/. The scenario is given by its path: the
# lab's built-in scenarios (the names `lab list` shows) are compiled in, and
# this one is not among them.
#
# tini and dumb-init are installed with apt-get when missing (best effort, as
# .ci/run does for gdb); an init still missing is not run, and is named in
# results/inits/ABSENT (one tool a line; empty when nothing was missing), so
# that the page says so instead of showing a row. results/inits/TOOLS records
# the version of each init that was run (and which ones this script
# installed), results/inits/COMMANDS.inits and COMMANDS.sweep each command as
# it was run (the lab binary written as `lab`).
#
# Each result directory is emptied before its run, so running the script
# again replaces the results instead of adding to them. The CSVs are
# committed (.gitignore keeps the diagnoses and output files out).
#
# Environment:
#   LAB      the lab binary (default target/release/lab, built if missing)
#   OUT      where the results go (default results/inits)
#   TRIALS   trials per init and signal, and per sweep point and strategy
#            (default 200)
#   JOBS     trials in parallel (default 4)
#   SEED     the base seed (default 1)
#   ONLY     run only this part: "inits" or "sweep" (default both)
set -euo pipefail

cd "$(dirname "$0")/.."

OUT=${OUT:-results/inits}
TRIALS=${TRIALS:-200}
JOBS=${JOBS:-4}
SEED=${SEED:-1}
ONLY=${ONLY:-}
if [[ -z ${LAB:-} ]]; then
    LAB=target/release/lab
    if [[ ! -x $LAB ]]; then
        echo "inits: building $LAB" >&2
        cargo build --release -p lab >&2
    fi
fi
if [[ ! -x $LAB ]]; then
    echo "inits: no lab binary at $LAB" >&2
    exit 2
fi
mkdir -p "$OUT"

# The child tree every init is given: a shell with two background jobs,
# waiting for them.
tree=(sh -c 'sleep 100 & sleep 100 & wait')
signals=(INT TERM KILL)

# An argv as a shell line: words with anything but [A-Za-z0-9_./=:,+-] in
# single quotes.
shown() {
    local out="" w
    for w in "$@"; do
        if [[ $w =~ ^[A-Za-z0-9_./=:,+-]+$ ]]; then
            out+="$w "
        else
            out+="'${w//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}

# `lab exec` and `lab soak` exit 1 when a trial was not a pass or a strategy
# gave a verdict its scenario does not expect: that is a result here, not a
# failure of the script. Anything else is.
lab_ok() {
    local rc=0
    "$@" || rc=$?
    if [[ $rc -ne 0 && $rc -ne 1 ]]; then
        echo "inits: exit status $rc from: $*" >&2
        exit "$rc"
    fi
}

if [[ -z $ONLY || $ONLY == inits ]]; then
    # Install what is missing, best effort.
    missing=()
    for tool in tini dumb-init; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [[ ${#missing[@]} -gt 0 ]] && command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
        echo "inits: installing ${missing[*]} with apt-get" >&2
        ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 ||
            echo "inits: could not install ${missing[*]}" >&2
    fi

    # What is still absent, and the version of what is there.
    : >"$OUT/ABSENT"
    : >"$OUT/TOOLS"
    for tool in tini dumb-init; do
        if command -v "$tool" >/dev/null 2>&1; then
            case $tool in
                tini) version=$(tini --version 2>&1 | head -n1) ;;
                # dumb-init prints its version to stderr, without a newline.
                dumb-init) version=$(dumb-init --version 2>&1 | head -n1) ;;
            esac
            pkg=$(dpkg-query -W -f='${Package} ${Version}' "$tool" 2>/dev/null || true)
            how=""
            [[ " ${missing[*]} " == *" $tool "* ]] && how=", installed by scripts/inits.sh"
            echo "$tool: $version${pkg:+ (package $pkg$how)}" >>"$OUT/TOOLS"
        else
            echo "$tool" >>"$OUT/ABSENT"
            echo "inits: $tool is absent; its rows are not measured" >&2
        fi
    done
    echo "sh: $(readlink -f "$(command -v sh)")" >>"$OUT/TOOLS"
    : >"$OUT/COMMANDS.inits"

    # init key (names the results) | the init's argv before the tree
    inits=(
        "none|"
        "tini-s|tini -s --"
        "tini-s-g|tini -s -g --"
        "dumb-init|dumb-init"
    )
    for entry in "${inits[@]}"; do
        key=${entry%%|*}
        read -r -a init <<<"${entry#*|}"
        if [[ ${#init[@]} -gt 0 ]] && ! command -v "${init[0]}" >/dev/null 2>&1; then
            rm -rf "${OUT:?}/$key"-*
            continue
        fi
        for sig in "${signals[@]}"; do
            dir="$OUT/$key-$sig"
            rm -rf "$dir"
            echo "inits: $key, $sig: $TRIALS trials into $dir" >&2
            args=(exec --name "init-$key-$sig" --trials "$TRIALS" -j "$JOBS"
                --seed "$SEED" --kill-after 5ms..200ms --signal "$sig"
                --out "$dir" -- "${init[@]}" "${tree[@]}")
            shown lab "${args[@]}" >>"$OUT/COMMANDS.inits"
            lab_ok "$LAB" "${args[@]}" >"$dir.summary.txt"
            mv "$dir.summary.txt" "$dir/summary.txt"
        done
    done
fi

if [[ -z $ONLY || $ONLY == sweep ]]; then
    dir="$OUT/pdeathsig-sweep"
    rm -rf "$dir"
    echo "inits: the PDEATHSIG sweep: $TRIALS trials per delay and strategy into $dir" >&2
    args=(soak --scenario scenarios/pdeathsig-birth.toml
        --strategy legacy --strategy pdeathsig-checked --strategy canonical
        --sweep kill.0.at=child+0ms,child+1ms,child+2ms,child+5ms,child+10ms
        --trials "$TRIALS" -j "$JOBS" --seed "$SEED" --out "$dir" --progress none)
    shown lab "${args[@]}" >"$OUT/COMMANDS.sweep"
    lab_ok "$LAB" "${args[@]}" >"$dir.summary.txt"
    mv "$dir.summary.txt" "$dir/summary.txt"
fi

echo "inits: done; now scripts/inits-page.sh" >&2
