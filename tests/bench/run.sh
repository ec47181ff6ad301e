#!/usr/bin/env bash
# tests/bench/run.sh — the one command of issue 10's benchmarks: every bench
# beside its anchor, one table, one line of history.
#
# Usage: tests/bench/run.sh [-q] [-o OUT_DIR] [-only routed,signalling,media,memory,overload]
#   -q          a short pass of each bench (few steps, small counts): checks the
#               pipeline in a few minutes; its figures are not comparable
#   -o OUT_DIR  logs, RESULT lines and table.md [default target/bench/run-<time>]
#   -only LIST  only these benches (routed and overload are one script,
#               routed.sh; media and memory are media.sh)
#
# It installs what is missing (as root, like tests/run.sh: sip-tester,
# kamailio, rtpengine-daemon, procps, coreutils, python3, jq), builds the release
# binaries (acd, acdctl, and acd-bench's acd-rtpload when the crate exists),
# records the machine (CPU model, cores, memory, kernel), the versions (acd's
# git revision and whether the tree is dirty, rustc, SIPp, Kamailio,
# rtpengine), the date and the load average before and after each bench;
# runs routed.sh, signalling.sh and media.sh (when present; "not run"
# otherwise), collects their `RESULT {json}` lines, appends ONE JSON object
# to tests/bench/history.jsonl (earlier lines are never rewritten) and
# prints the table (table.py), also written as Markdown to OUT_DIR/table.md
# for BENCHMARKS.md. Exit 0 when every selected bench ran (goals met or
# not), 1 when one could not measure, 2 for a setup failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
QUICK=0
OUT=""
ONLY="routed,signalling,media,memory,overload"
while [ $# -gt 0 ]; do
    case "$1" in
        -q) QUICK=1; shift ;;
        -o) OUT="${2:?-o wants a directory}"; shift 2 ;;
        -only|--only) ONLY="${2:?-only wants a list}"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see -h)" >&2; exit 2 ;;
    esac
done
for b in ${ONLY//,/ }; do
    case "$b" in routed|signalling|media|memory|overload) ;;
        *) echo "run.sh: unknown bench '$b' (routed, signalling, media, memory, overload)" >&2; exit 2 ;;
    esac
done
selected() { [[ ",$ONLY," == *",$1,"* ]]; }
OUT="${OUT:-$ROOT/target/bench/run-$(date -u +%Y%m%dT%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# ---- tools -----------------------------------------------------------------
TOOLS=(
    "sipp:sip-tester"             # trunk UAC and agent UAS of routed/signalling
    "kamailio:kamailio"           # the signalling anchor
    "rtpengine:rtpengine-daemon"  # the media anchor (media.sh)
    "ps:procps"
    "timeout:coreutils"
    "python3:python3"             # ramp.py, results.py, table.py
    "jq:jq"                       # media.sh reads the generator's JSON
)
# shellcheck source=tests/tools.sh
source "$ROOT/tests/tools.sh"
install_tools run.sh "${TOOLS[@]}" || exit 2

# ---- build -----------------------------------------------------------------
PKGS=(-p acd -p acdctl)
[ -f "$ROOT/crates/acd-bench/Cargo.toml" ] && PKGS+=(-p acd-bench)
log "cargo build --release ${PKGS[*]}"
(cd "$ROOT" && cargo build --release "${PKGS[@]}") > "$OUT/build.log" 2>&1 \
    || { tail -30 "$OUT/build.log" >&2; echo "run.sh: build failed ($OUT/build.log)" >&2; exit 2; }
export ACD_BIN="$ROOT/target/release/acd" ACDCTL_BIN="$ROOT/target/release/acdctl"

# ---- machine and versions (key=value, read by table.py) ----------------------
first_line() { "$@" 2>&1 | grep --line-buffered -v '^\s*$' | head -1 || true; }
{
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "quick=$QUICK"
    echo "only=$ONLY"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "memory_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "acd_rev=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    echo "acd_dirty=$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && echo true || echo false)"
    echo "rustc=$(first_line rustc -V)"
    echo "sipp=$(first_line sipp -v | sed 's/^ *//')"
    echo "kamailio=$(first_line kamailio -v)"
    echo "rtpengine=$(first_line rtpengine --version)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---- the benches ---------------------------------------------------------------
QFLAG=(); [ "$QUICK" = 1 ] && QFLAG=(-q)
: > "$OUT/benches.txt"
FAILED=0
# name script covers...: a script runs when one of the benches it covers is selected.
run_bench() {
    local name="$1" script="$2"; shift 2
    local want=0 b
    for b in "$@"; do selected "$b" && want=1; done
    [ "$want" = 1 ] || return 0
    if [ ! -x "$HERE/$script" ]; then
        log "$name: $script not present: not run"
        echo "$name not-run - - - 0" >> "$OUT/benches.txt"
        return 0
    fi
    local l0 l1 t0 rc
    l0="$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
    t0=$(date +%s)
    log "$name: $script ${QFLAG[*]} -o $OUT/$name (load $l0)"
    set +e
    "$HERE/$script" "${QFLAG[@]}" -o "$OUT/$name" 2>&1 | tee "$OUT/$name.log" | grep --line-buffered -v '^RESULT {'
    rc=${PIPESTATUS[0]}
    set -e
    l1="$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '/')"
    echo "$name $([ "$rc" = 0 ] && echo ran || echo failed) $rc $l0 $l1 $(( $(date +%s) - t0 ))" >> "$OUT/benches.txt"
    [ "$rc" = 0 ] || { FAILED=1; log "$name: $script exit $rc (could not measure)"; }
    grep '^RESULT {' "$OUT/$name.log" >> "$OUT/results.txt" || true
}
: > "$OUT/results.txt"
run_bench routed routed.sh routed overload
run_bench signalling signalling.sh signalling
run_bench media media.sh media memory

# ---- history and the table ---------------------------------------------------------
python3 "$HERE/table.py" --out "$OUT" --history "$HERE/history.jsonl" --only "$ONLY"
log "table: $OUT/table.md; history: tests/bench/history.jsonl"
exit "$FAILED"
