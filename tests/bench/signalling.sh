#!/usr/bin/env bash
# tests/bench/signalling.sh — (2) signalling only: acd's edge beside Kamailio
# as a stateful proxy, same SIPp trunk UAC and agent UAS, same run. Prints
# RESULT lines (tests/bench/README.md).
#
# Usage: tests/bench/signalling.sh [-q] [-o OUT_DIR]
#   -q          short pass (two small steps of each)
#   -o OUT_DIR  logs of every step [default target/bench/signalling-<time>]
#
# The call: INVITE / 100 / 180 / 200 / ACK, then the agent's BYE / 200, no
# RTP sent (tests/sipp/trunk_call_or_503.xml, tests/load/agent_uas.xml with
# talk 0).
#   acd:      tests/load/calls.sh -f direct: DID straight to the queue with
#             answer = "early" (183, then the 200 only when the agent
#             answers), AGENTS agents all registered at the one UAS; acd's
#             admission max_calls_per_second lifted above every step.
#   Kamailio: tests/load/calls.sh -S kamailio: tests/bench/kamailio.cfg
#             (tm t_relay, record_route, sl, maxfwd) relays to the same UAS,
#             CHILDREN UDP workers.
# Each subject is ramped to its knee with the rule of ramp.py (fresh process
# per step, ~10 s of calls per step). SIPp's own CPU per call is in the
# RESULT lines too: on 2 shared cores SIPp may be the limit, not the subject.
#
# Environment: RUST_LOG [warn], SIG_RATES (comma list), SIG_AGENTS [200], SIG_SECS [10],
# SIG_CHILDREN [2] (Kamailio's `children`; tcp is disabled).
set -euo pipefail

# shellcheck source=tests/bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh"
bench_args signalling "$@"
AGENTS="${SIG_AGENTS:-200}"
CHILDREN="${SIG_CHILDREN:-2}"
if [ "$QUICK" = 1 ]; then
    RATES="${SIG_RATES:-50,100}"; SECS="${SIG_SECS:-3}"; MIN_CALLS=100; REFINE=0
else
    RATES="${SIG_RATES:-250,500,1000,1500,2000,2500,3000,4000}"; SECS="${SIG_SECS:-10}"; MIN_CALLS=1000; REFINE=2
fi
COMMON=(--flow direct --rates "$RATES" --secs "$SECS" --min-calls "$MIN_CALLS" --talk 0
        --port-base 36000 --rtp-ports 3000 --refine "$REFINE")

echo "== signalling: acd, ramp $RATES calls/s (${SECS}s per step), $AGENTS agents; logs $OUT"
python3 "$HERE/ramp.py" --subject acd --agents "$AGENTS" --admission max_calls_per_second=5000 \
    "${COMMON[@]}" --out "$OUT/acd" | tee "$OUT/acd.log" | grep --line-buffered -v '^RAMP '
echo "== signalling: Kamailio ($CHILDREN UDP children), same ramp"
python3 "$HERE/ramp.py" --subject kamailio --children "$CHILDREN" \
    "${COMMON[@]}" --out "$OUT/kamailio" | tee "$OUT/kamailio.log" | grep --line-buffered -v '^RAMP '
for f in "$OUT/acd/ramp.json" "$OUT/kamailio/ramp.json"; do
    [ -s "$f" ] || { echo "signalling.sh: $f missing" >&2; exit 2; }
done
python3 "$HERE/results.py" signalling "$OUT/acd/ramp.json" "$OUT/kamailio/ramp.json"
