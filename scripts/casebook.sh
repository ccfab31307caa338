#!/usr/bin/env bash
# Run every casebook scenario under the legacy strategy that has its defect
# and under canonical, and render docs/casebook.md from the JSON summaries.
#
#   TRIALS=20 scripts/casebook.sh
#
# Environment:
#   TRIALS  trials per strategy (default 20)
#   LAB     the lab binary (default target/release/lab)
#   OUT     results directory (default results/casebook-YYYY-MM-DD, UTC);
#           it keeps each scenario's JSON summary, stderr and trials.csv
#   DOC     the markdown to write (default docs/casebook.md)
#
# `lab run` exits 1 when some strategy gives a verdict its scenario's
# `[expect]` does not list: the run is recorded and the page shows it (the
# script still renders). Exit 2 (bad input) and 3 (the lab failed) stop
# the script, except a scenario the lab refuses because this machine cannot
# run it ("nothing was run", e.g. pid-reuse without the privilege to make a
# PID namespace): that one is listed as not run.
set -euo pipefail

cd "$(dirname "$0")/.."

TRIALS=${TRIALS:-20}
LAB=${LAB:-target/release/lab}
DATE=$(date -u +%Y-%m-%d)
OUT=${OUT:-results/casebook-$DATE}
DOC=${DOC:-docs/casebook.md}
SEED=1

if [[ ! -x $LAB ]]; then
    echo "casebook: no lab binary at $LAB (build it: cargo build --release -p lab, or set LAB)" >&2
    exit 2
fi
if ! [[ $TRIALS =~ ^[1-9][0-9]*$ ]]; then
    echo "casebook: TRIALS must be a positive integer, not '$TRIALS'" >&2
    exit 2
fi

# The cases (a scenario and its legacy-side strategies; canonical is added
# to each), shared with the other casebook script.
mapfile -t CASES < <(grep -v -e '^#' -e '^$' scripts/casebook-cases.txt)

mkdir -p "$OUT"
manifest="$OUT/manifest.tsv"
: >"$manifest"

for case in "${CASES[@]}"; do
    read -r -a words <<<"$case"
    name=${words[0]}
    args=(run "$name" --seed "$SEED" --trials "$TRIALS")
    for s in "${words[@]:1}" canonical; do
        args+=(--strategy "$s")
    done
    args+=(--format json --out "$OUT")
    shown="lab ${args[*]}"
    echo "casebook: $shown" >&2
    rc=0
    "$LAB" "${args[@]}" >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
    case $rc in
        0 | 1) status=ran ;;
        2)
            if grep -q "nothing was run" "$OUT/$name.stderr"; then
                status=skipped
                echo "casebook: $name not run: $(head -n 1 "$OUT/$name.stderr")" >&2
            else
                echo "casebook: lab run $name failed (exit 2):" >&2
                cat "$OUT/$name.stderr" >&2
                exit 2
            fi
            ;;
        *)
            echo "casebook: lab run $name failed (exit $rc):" >&2
            cat "$OUT/$name.stderr" >&2
            exit "$rc"
            ;;
    esac
    printf '%s\t%s\t%s\n' "$name" "$status" "$shown" >>"$manifest"
done

python3 - "$OUT" "$DOC" "$TRIALS" "$SEED" "$DATE" <<'PY'
"""Render the casebook markdown from the JSON summaries of `lab run`."""
import csv
import hashlib
import json
import os
import sys

out, doc, trials, seed, date = sys.argv[1:6]
try:
    import tomllib
except ImportError:  # Python < 3.11: the about text is then left out
    tomllib = None

VERDICTS = ["pass", "orphan", "hang", "panic", "leak", "fail", "early-death",
            "innocent-kill", "error"]


def key(v):
    """A verdict as a JSON key: snake_case (`early_death`)."""
    return v.replace("-", "_")


def render_rate(r):
    """As `lab run` prints a rate: `20/20 100.0% [83.9%, 100.0%]`."""
    if r["count"] == 0:
        return "%d/%d (95%% upper bound %.1f%%)" % (r["count"], r["trials"], r["high"] * 100)
    return "%d/%d %.1f%% [%.1f%%, %.1f%%]" % (
        r["count"], r["trials"], r["rate"] * 100, r["low"] * 100, r["high"] * 100)


def one_line(text, width=240):
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def md_cell(text):
    return text.replace("|", "\\|")


def about_of(name, scenario_hash):
    """The scenario's `about`, from scenarios/NAME.toml, and whether that file
    is the text the binary ran (its hash matches)."""
    path = os.path.join("scenarios", name + ".toml")
    if tomllib is None or not os.path.exists(path):
        return None, None
    raw = open(path, "rb").read()
    same = hashlib.sha256(raw).hexdigest()[:16] == scenario_hash
    return tomllib.loads(raw.decode()).get("about", "").strip(), same


def csv_rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


manifest = [line.rstrip("\n").split("\t", 2)
            for line in open(os.path.join(out, "manifest.tsv")) if line.strip()]
runs = []
for name, status, command in manifest:
    summary = None
    if status == "ran":
        summary = json.load(open(os.path.join(out, name + ".json")))
    err = open(os.path.join(out, name + ".stderr")).read().strip()
    runs.append((name, status, command, summary, err))

ran = [r for r in runs if r[3]]
first = ran[0][3] if ran else {}
modes = sorted({("cgroup" if s["cgroup"] else "subreaper (%s)" % (s.get("cgroup_note") or "no cgroup"))
                for _, _, _, s, _ in ran})

w = []
w.append("# The casebook, measured\n")
w.append(
    "The casebook (the design brief's \"bug casebook\") is the list of "
    "process-lifecycle bugs the lab must reproduce. Each case is a scenario in "
    "`scenarios/`: it reproduces under the legacy strategy that has the defect and "
    "does not under `canonical` (where canonical turns a deadlock into a `panic` "
    "with a diagnosis, that is the intended result). This page holds one real run "
    "of every case: each scenario's plan (seed %s) under its legacy side(s) and "
    "under `canonical`, %s trials each.\n" % (seed, trials))
w.append(
    "It is generated; do not edit it by hand. To regenerate it (about a minute; "
    "a `hang` trial costs its whole deadline):\n")
w.append("```sh\ncargo build --release -p lab\nTRIALS=20 scripts/casebook.sh\n```\n")
w.append(
    "`LAB` names the binary (default `target/release/lab`), `OUT` the results "
    "directory (default `results/casebook-DATE`, git-ignored: each scenario's JSON "
    "summary and `trials.csv`), `DOC` the page written. Rates carry their 95% Wilson "
    "interval; a verdict seen in no trial is not listed. Each scenario states what "
    "each strategy is expected to give (its `[expect]` table); `lab run` exits 1 "
    "when a strategy gives a verdict it does not list.\n")
w.append("| run | |\n| --- | --- |")
w.append("| date (UTC) | %s |" % date)
w.append("| kernel | %s |" % first.get("kernel", "?"))
w.append("| mode | %s |" % md_cell(", ".join(modes) or "?"))
w.append("| lab version | %s |" % first.get("lab_version", "?"))
w.append("| trials per strategy | %s |" % trials)
w.append("| seed | %s |" % seed)
w.append("| results | `%s` |" % out)
w.append("")

# Overview: verdict counts per scenario and strategy.
w.append("## Overview\n")
w.append("| scenario | strategy | trials | " + " | ".join(VERDICTS) + " | /proc false orphans | expectation |")
w.append("| --- | --- | ---: | " + " | ".join("---:" for _ in VERDICTS) + " | ---: | --- |")
for name, status, _, s, err in runs:
    if not s:
        w.append("| [%s](#%s) | not run | | %s | | |" % (name, name, " | ".join("" for _ in VERDICTS)))
        continue
    for r in s["results"]:
        counts = [str(r[key(v)]) if r[key(v)] else "·" for v in VERDICTS]
        fo = str(r["false_orphans_total"]) if r["false_orphans_total"] else "·"
        e = r.get("expectation") or {}
        expected = ", ".join(e.get("expected", []))
        if e.get("status") == "as_expected":
            status = "as expected (%s)" % expected
        elif e.get("status") == "unexpected":
            status = "**UNEXPECTED** (expected %s)" % expected
        else:
            status = ""
        w.append("| [%s](#%s) | %s | %d | %s | %s | %s |" % (
            name, name, r["strategy"], r["trials"], " | ".join(counts), fo, status))
w.append("")

for name, status, command, s, err in runs:
    w.append("## %s\n" % name)
    about, same = about_of(name, s["scenario_hash"] if s else "")
    if about:
        w.append(about + "\n")
        if same is False:
            w.append("*(The text above is from `scenarios/%s.toml`, which differs from "
                     "the copy built into the binary that ran.)*\n" % name)
    w.append("```sh\n%s\n```\n" % command)
    if not s:
        w.append("Not run on this machine: %s\n" % md_cell(one_line(err, 400)))
        continue
    w.append("Plan `%s`, scenario `%s`, mode %s.\n" % (
        s["plan_hash"], s["scenario_hash"],
        "cgroup" if s["cgroup"] else "subreaper (%s)" % (s.get("cgroup_note") or "no cgroup")))
    w.append("| strategy | trials | verdicts | median time to verdict | /proc false orphans | signatures named (trials) | panic site |")
    w.append("| --- | ---: | --- | ---: | --- | --- | --- |")
    for r in s["results"]:
        verdicts = "<br>".join(
            "`%s` %s" % (v, render_rate(r["rates"][key(v)]))
            for v in VERDICTS if r["rates"][key(v)]["count"])
        fo = ""
        if r["false_orphans_total"]:
            fo = "%d, in %d/%d trials" % (
                r["false_orphans_total"], r["trials_with_false_orphans"], r["trials"])
        sigs = ", ".join("`%s` %d" % (e["name"], e["trials"]) for e in r.get("signatures", []))
        sites = ", ".join("`%s`" % e["name"] for e in r.get("panic_sites", []))
        w.append("| %s | %d | %s | %.2f ms | %s | %s | %s |" % (
            r["strategy"], r["trials"], verdicts, r["median_verdict_us"] / 1000.0, fo,
            sigs, sites))
    w.append("")
    rows = csv_rows(s["csv"])
    notes = []
    for r in s["results"]:
        for v in VERDICTS:
            if v == "pass" or not r["rates"][key(v)]["count"]:
                continue
            reasons = r["reasons"].get(key(v), [])
            if reasons:
                first_reason = sorted(reasons, key=lambda e: (-e["trials"], e["name"]))[0]["name"]
                distinct = len(reasons)
                why = one_line(first_reason)
                if distinct > 1:
                    why += " *(%d distinct reasons)*" % distinct
            else:
                # No reason in the summary: say what survived, from the CSV.
                mine = [row for row in rows if row["strategy"] == r["strategy"] and row["verdict"] == v]
                who = mine[0]["survivors"] if mine else ""
                count = (mine[0]["orphans"] if v == "orphan" else mine[0]["hung"]) if mine else ""
                if v in ("orphan", "hang") and mine:
                    what = "surviving nodes" if v == "orphan" else "nodes alive at the deadline"
                    why = "no reason given (from trials.csv: %s: %s; %s process%s alive in all)" % (
                        what, who or "none, only processes outside the plan",
                        count, "" if count == "1" else "es")
                else:
                    why = "no reason given"
            notes.append("- %s, `%s`: %s" % (r["strategy"], v, md_cell(why)))
    if notes:
        w.append("Why (the first reason of each failing verdict):\n")
        w.extend(notes)
        w.append("")
    for r in s["results"]:
        d = r.get("diagnosis")
        if not d:
            continue
        w.append("Diagnosis of the first %s under %s (trial %d), read before the kill:\n" % (
            d["verdict"], r["strategy"], d["trial"]))
        w.append("```")
        texts = [sig["text"] for sig in d["signatures"]]
        for t in texts[:6]:
            w.append("%s" % t)
        if len(texts) > 6:
            w.append("... and %d more" % (len(texts) - 6))
        if not texts:
            w.append("no signature found; the survivors: " + ", ".join(
                "pid %d (%s)" % (p["pid"], p["who"]) for p in d["processes"]))
        w.append("```\n")
    replays = [(r["strategy"], rp) for r in s["results"] for rp in r["replay"]]
    if replays:
        w.append("Replay one trial:\n")
        w.append("```sh")
        for strategy, rp in replays:
            w.append("%s   # %s: %d trials" % (rp["command"], rp["verdict"], len(rp["trials"])))
        w.append("```\n")

os.makedirs(os.path.dirname(doc) or ".", exist_ok=True)
with open(doc, "w") as f:
    f.write("\n".join(w).rstrip("\n") + "\n")
print("casebook: wrote %s from %s" % (doc, out), file=sys.stderr)
PY
