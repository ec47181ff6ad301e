#!/usr/bin/env bash
# tests/bench/routed.sh — (1) routed calls/s end to end, ramp to the knee;
# (5) overload at twice the knee. Prints RESULT lines (tests/bench/README.md).
#
# Usage: tests/bench/routed.sh [-q] [-o OUT_DIR]
#   -q          short pass (two small steps, a small overload run)
#   -o OUT_DIR  logs of every step [default target/bench/routed-<time>]
#
# Each step is a fresh `acd run` (tests/load/calls.sh -P 36000: SIP/gRPC in
# 36000-36999, RTP 40100-56099: 4,000 calls at 4 ports, shared with media.sh,
# which run.sh runs at another time) with AGENTS agents on one SIPp UAS, the
# prompt flow (200 at once, 2.5 s welcome prompt, queue, agent answers and
# hangs up at once: talk 0), about 10 s of calls at the step's rate. The
# pass rule and the bisection are in ramp.py. acd's admission limits are
# set for the bench: max_calls_per_second above every step (the default 400
# would shed first) and max_calls = what the RTP range holds (4 ports per
# call), so calls past it get acd's 503 + Retry-After rather than a media
# failure. Then one run at twice the knee with -x: the excess must get 503 +
# Retry-After, every accepted call must keep its timing, none may fail.
#
# Environment: RUST_LOG [warn], ROUTED_RATES (comma list), ROUTED_AGENTS [100], ROUTED_SECS [10].
set -euo pipefail

# shellcheck source=tests/bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh"
bench_args routed "$@"
RTP_PORTS=16000
RTP_MIN=40100
MAX_CALLS=$((RTP_PORTS / 4))
AGENTS="${ROUTED_AGENTS:-100}"
if [ "$QUICK" = 1 ]; then
    RATES="${ROUTED_RATES:-20,50}"; SECS="${ROUTED_SECS:-3}"; MIN_CALLS=50; REFINE=0
else
    RATES="${ROUTED_RATES:-100,200,300,400,600,800,1000,1200,1500,2000}"; SECS="${ROUTED_SECS:-10}"; MIN_CALLS=500; REFINE=2
fi
ADMISSION=(--admission max_calls_per_second=5000 --admission "max_calls=$MAX_CALLS")

echo "== routed: ramp $RATES calls/s (${SECS}s per step), $AGENTS agents, prompt flow, talk 0; logs $OUT"
python3 "$HERE/ramp.py" --subject acd --flow prompt --rates "$RATES" --secs "$SECS" --min-calls "$MIN_CALLS" \
    --agents "$AGENTS" --talk 0 --port-base 36000 --rtp-min "$RTP_MIN" --rtp-ports "$RTP_PORTS" --refine "$REFINE" \
    "${ADMISSION[@]}" --out "$OUT/ramp" | tee "$OUT/ramp.log" | grep --line-buffered -v '^RAMP '
[ -s "$OUT/ramp/ramp.json" ] || { echo "routed.sh: the ramp wrote no ramp.json" >&2; exit 2; }
python3 "$HERE/results.py" routed "$OUT/ramp/ramp.json"

KNEE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["knee"])' "$OUT/ramp/ramp.json")"
if [ "$KNEE" -le 0 ]; then
    echo "routed.sh: no passing step, no overload run" >&2
    exit 0
fi
RATE=$((KNEE * 2))
CALLS=$((RATE * SECS)); [ "$CALLS" -lt "$MIN_CALLS" ] && CALLS=$MIN_CALLS
echo "== overload: $CALLS calls at $RATE/s (twice the knee $KNEE/s), -x"
set +e
"$ROOT/tests/load/calls.sh" -x -P 36000 -M "$RTP_MIN" -k "$RTP_PORTS" -r "$RATE" -c "$CALLS" -t 0 -w 0 -n "$AGENTS" -f prompt \
    -a max_calls_per_second=5000 -a "max_calls=$MAX_CALLS" -o "$OUT/overload" > "$OUT/overload.out" 2>&1
RC=$?
set -e
grep -E '^(trunk SIPp|               |acd shedding|acd CPU|SIPp CPU|RESULT:)' "$OUT/overload.out" || true
echo "overload: calls.sh exit $RC"
python3 "$HERE/results.py" overload "$OUT/overload.out" "$KNEE"
