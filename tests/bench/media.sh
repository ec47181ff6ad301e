#!/usr/bin/env bash
# tests/bench/media.sh — bench 3: bridged G.711 calls with RTP both ways
# through acd beside rtpengine (ng protocol, userspace forwarding), and
# bench 4: acd's memory per bridged call and per waiting caller.
#
# Usage:
#   tests/bench/media.sh [-q] [-s STEPS] [-H HOLD_SECS] [-S SUBJECTS] [-c CPS]
#                        [-M] [-m] [-o LOG_DIR]
#
#   -q           short pass: steps 100,250, hold 4 s, memory at 0/200/500
#   -s STEPS     concurrency ramp, comma separated
#                [default 250,500,1000,1500,2000,3000,4000,4800]
#   -H SECS      seconds every step holds its calls with RTP flowing [default 10]
#   -S SUBJECTS  comma separated among acd,rtpengine [default acd,rtpengine]
#   -c CPS       call setups (and teardowns) per second [default 400]
#   -M           memory bench only (no ramp)
#   -m           no memory bench
#   -o LOG_DIR   logs and the generator's JSON per step
#                [default target/bench/media-<time>]
#
# Environment: ACD_BIN, RTPLOAD_BIN (default target/release/*, built by
# run.sh or `cargo build --release -p acd -p acd-bench`), RTPENGINE_BIN
# (default /usr/bin/rtpengine, installed with apt-get install rtpengine-daemon
# when missing), RTPENGINE_THREADS (rtpengine's --num-threads; default: its
# own default, one per core).
#
# What it does (127.0.0.1 only; every process under `timeout`, stopped by an
# EXIT trap):
#   1. writes target/bench/media.toml: admission limits raised so nothing is
#      refused, RTP 40100-60099, DID 5550900 whose flow (answer = "early")
#      transfers straight to the generator's UAS (a plain B2BUA bridge, both
#      legs relayed by acd, no prompt while RTP flows), DID 5550901 whose
#      flow enqueues in `wait` (no agents: callers hear music on hold);
#   2. per subject (acd, rtpengine) one relay process, and per step one
#      `acd-rtpload` run: N calls set up at CPS, RTP both ways for HOLD s,
#      torn down; beside it a `direct` run (generator to itself) with the
#      same N: added latency = subject's percentile - direct's. A subject's
#      ramp stops after the first step that loses packets, fails calls, could
#      not be offered in full (the generator skipped frames: the machine is
#      saturated) or uses both cores (relay CPU >= 200 % of one core);
#   3. memory: a fresh acd, VmRSS at 0, 1000 and up to 4800 bridged calls
#      (RTP flowing), then another fresh acd with 0, 1000 and 5000 callers
#      waiting in a queue (music on hold): KiB per call from the slope;
#   4. prints RESULT lines (tests/bench/README.md): bench `media`
#      (max_concurrent_no_loss, p50/p99_added_latency_us_at_N,
#      cpu_us_per_packet_at_N, cpu_per_packet_ratio) and `memory`
#      (kib_per_bridged_call, kib_per_waiting_call).
#
# Sandbox limit: `ulimit -n` (hard 20000 here) bounds acd to about 4,900
# calls, bridged or waiting (4 sockets each: RTP+RTCP per leg, the agent
# leg's reserved when the call comes in); steps above what fits are skipped
# (ramp) or capped (memory) and reported as such.
#
# Exit status: 0 when it measured (goals met or not), 2 when it could not.

set -euo pipefail

QUICK=0
STEPS="250,500,1000,1500,2000,3000,4000,4800"
HOLD=10
SUBJECTS="acd,rtpengine"
CPS=400
RAMP=1
MEMORY=1
LOG_DIR=""
SET_STEPS=0; SET_HOLD=0
usage() { sed -n '2,52p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "qs:H:S:c:Mmo:h" opt; do
    case "$opt" in
        q) QUICK=1 ;;
        s) STEPS="$OPTARG"; SET_STEPS=1 ;;
        H) HOLD="$OPTARG"; SET_HOLD=1 ;;
        S) SUBJECTS="$OPTARG" ;;
        c) CPS="$OPTARG" ;;
        M) RAMP=0 ;;
        m) MEMORY=0 ;;
        o) LOG_DIR="$OPTARG" ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
MEM_BRIDGED="1000,4800"
MEM_WAITING="1000,5000"
MEM_HOLD=5
if [ "$QUICK" = 1 ]; then   # explicit -s / -H still win
    [ "$SET_STEPS" = 1 ] || STEPS="100,250"
    [ "$SET_HOLD" = 1 ] || HOLD=4
    MEM_BRIDGED="200,500"; MEM_WAITING="200,500"; MEM_HOLD=3
fi
[[ "$STEPS" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "media.sh: -s wants N,N,..." >&2; exit 2; }
[[ "$HOLD" =~ ^[0-9]+$ ]] && [ "$HOLD" -ge 2 ] && [ "$HOLD" -le 60 ] \
    || { echo "media.sh: -H must be 2..60" >&2; exit 2; }
[[ "$CPS" =~ ^[0-9]+$ ]] && [ "$CPS" -ge 1 ] && [ "$CPS" -le 2000 ] \
    || { echo "media.sh: -c must be 1..2000" >&2; exit 2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ACD="${ACD_BIN:-$ROOT/target/release/acd}"
RTPLOAD="${RTPLOAD_BIN:-$ROOT/target/release/acd-rtpload}"
RTPENGINE="${RTPENGINE_BIN:-/usr/bin/rtpengine}"
for b in "$ACD" "$RTPLOAD"; do
    [ -x "$b" ] || { echo "media.sh: $b missing: cargo build --release -p acd -p acd-bench" >&2; exit 2; }
done
# shellcheck source=tests/tools.sh
source "$ROOT/tests/tools.sh"
NEEDED=("jq:jq")
if [[ ",$SUBJECTS," == *,rtpengine,* ]] && [ -z "${RTPENGINE_BIN:-}" ]; then
    NEEDED+=("rtpengine:rtpengine-daemon")
fi
install_tools media.sh "${NEEDED[@]}" || exit 2
[[ ",$SUBJECTS," != *,rtpengine,* ]] || [ -x "$RTPENGINE" ] \
    || { echo "media.sh: $RTPENGINE missing (RTPENGINE_BIN)" >&2; exit 2; }

# ---- ports (tests/bench/README.md) ----------------------------------------
IP=127.0.0.1
ACD_SIP=40000; ACD_GRPC=40001; NG=40002; ACD_METRICS=40003; GEN_SIP=40010
RTP_MIN=40100; RTP_MAX=60099
GEN_A=61000; GEN_B=61001
# Bridged calls that fit acd's descriptors: 4 per call, ~300 for the rest.
FD_LIMIT="$(ulimit -n)"
MAX_BRIDGED=$(( (FD_LIMIT - 300) / 4 ))
[ "$MAX_BRIDGED" -gt 4900 ] && MAX_BRIDGED=4900

if [ -z "$LOG_DIR" ]; then LOG_DIR="$ROOT/target/bench/media-$(date -u +%Y%m%dT%H%M%S)"; fi
mkdir -p "$LOG_DIR"
LOG_DIR="$(cd "$LOG_DIR" && pwd)"
CONFIG="$ROOT/target/bench/media.toml"
log() { echo "[media.sh $(date -u +%H:%M:%S)] $*" >&2; }

# ---- cleanup: stop exactly the processes started here ----------------------
# shellcheck source=tests/load/procs.sh
source "$ROOT/tests/load/procs.sh"
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_wrappers "${PIDS[@]}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {   # the `timeout` wrapper's pid: TERM, bounded wait
    local p="$1"
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
}

# ---- 1. config ---------------------------------------------------------------
write_config() {
    local prompts; prompts="$(realpath --relative-to="$(dirname "$CONFIG")" "$ROOT/config/prompts")"
    cat > "$CONFIG.tmp" <<EOF
# acd — media bench configuration, written by tests/bench/media.sh on every run.
[sip]
realm = "acd.local"
udp = "$IP:$ACD_SIP"
tcp = "$IP:$ACD_SIP"
public_ip = "$IP"

[media]
rtp_port_min = $RTP_MIN
rtp_port_max = $RTP_MAX

[grpc]
listen = "$IP:$ACD_GRPC"

[access]
cluster_token = "media-cluster-$$"
users = [{ name = "bench", role = "admin", token = "media-admin-$$" }]

[metrics]
listen = "$IP:$ACD_METRICS"

# Nothing refused: the bench measures the relay, not admission control.
[admission]
max_calls = 20000
max_calls_per_second = 5000
max_lateness_ms = 10000

[prompts]
welcome = "$prompts/welcome.wav"
moh = "$prompts/moh.wav"

[[queues]]
id = "wait"
skills = { wait = 1 }

[[dids]]
number = "5550900"
flow = "bridge"

[[dids]]
number = "5550901"
flow = "wait"

# A plain bridged call: no prompt, the caller answered (200) only when the
# generator's UAS answers the transfer, both legs relayed by acd.
[flows.bridge]
answer = "early"
start = "xfer"
fallback_queue = "wait"

[flows.bridge.nodes.xfer]
type = "transfer"
uri = "sip:bench@$IP:$GEN_SIP"
timeout_ms = 30000
on_fail = "bye"

[flows.bridge.nodes.bye]
type = "hangup"
reason = "transfer failed"

# Waiting callers: answered, queued with nobody to serve them (music on hold).
[flows.wait]
answer = "immediate"
start = "queue"
fallback_queue = "wait"

[flows.wait.nodes.queue]
type = "enqueue"
queue = "wait"
priority = 0
EOF
    mv "$CONFIG.tmp" "$CONFIG"
}
write_config
timeout 30 "$ACD" check-config "$CONFIG" > "$LOG_DIR/check-config.log" 2>&1 || {
    cat "$LOG_DIR/check-config.log" >&2; echo "media.sh: check-config failed" >&2; exit 2; }

# ---- relays ------------------------------------------------------------------
RELAY_WRAP=""; RELAY_PID=""
start_acd() {   # name
    local out="$LOG_DIR/$1"
    for port in $ACD_SIP $GEN_SIP; do
        if udp_bound "$port"; then echo "media.sh: UDP port $port already in use" >&2; exit 2; fi
    done
    RUST_LOG="${RUST_LOG:-warn}" timeout -k 5 3600 "$ACD" run --config "$CONFIG" \
        --sip-udp "$IP:$ACD_SIP" --sip-tcp "$IP:$ACD_SIP" --grpc "$IP:$ACD_GRPC" \
        --metrics "$IP:$ACD_METRICS" --rtp-ports "$RTP_MIN-$RTP_MAX" --public-ip "$IP" \
        > "$out.stdout.log" 2> "$out.stderr.log" < /dev/null &
    RELAY_WRAP=$!
    PIDS+=("$RELAY_WRAP")
    RELAY_PID="$(child_of "$RELAY_WRAP")" || { echo "media.sh: acd did not start" >&2; exit 2; }
    for _ in $(seq 1 300); do
        grep -q '^ACD READY' "$out.stdout.log" 2>/dev/null && break
        kill -0 "$RELAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ACD READY' "$out.stdout.log" 2>/dev/null || {
        echo "media.sh: no ACD READY within 30 s; stderr tail:" >&2; tail -20 "$out.stderr.log" >&2; exit 2; }
    log "acd pid $RELAY_PID ready"
}
RTPENGINE_ARGS=()
start_rtpengine() {
    RTPENGINE_ARGS=(--config-file=none --foreground --log-stderr --table=-1 --no-fallback
        --interface="$IP" --listen-ng="$IP:$NG" --port-min="$RTP_MIN" --port-max="$RTP_MAX"
        --log-level=4 --delete-delay=0)
    [ -n "${RTPENGINE_THREADS:-}" ] && RTPENGINE_ARGS+=(--num-threads="$RTPENGINE_THREADS")
    if udp_bound "$NG"; then echo "media.sh: UDP port $NG already in use" >&2; exit 2; fi
    timeout -k 5 3600 "$RTPENGINE" "${RTPENGINE_ARGS[@]}" \
        > "$LOG_DIR/rtpengine.stdout.log" 2> "$LOG_DIR/rtpengine.stderr.log" < /dev/null &
    RELAY_WRAP=$!
    PIDS+=("$RELAY_WRAP")
    RELAY_PID="$(child_of "$RELAY_WRAP")" || { echo "media.sh: rtpengine did not start" >&2; exit 2; }
    for _ in $(seq 1 100); do udp_bound "$NG" && break; sleep 0.1; done
    udp_bound "$NG" || { echo "media.sh: rtpengine not listening on ng $NG; stderr tail:" >&2
        tail -20 "$LOG_DIR/rtpengine.stderr.log" >&2; exit 2; }
    log "rtpengine pid $RELAY_PID ($("$RTPENGINE" --version 2>&1 | head -1)) threads=${RTPENGINE_THREADS:-default}"
}

# One generator run: subject calls -> JSON file (exit 2 of the generator: no measurement).
rtpload() {   # subject calls hold out.json [extra...]
    local subject="$1" calls="$2" hold="$3" out="$4"; shift 4
    local args=(--calls "$calls" --hold "$hold" --cps "$CPS" --json
                --rtp-a "$IP:$GEN_A" --rtp-b "$IP:$GEN_B")
    [ -n "$RELAY_PID" ] && [ "$subject" != direct ] && args+=(--pid "$RELAY_PID" --relay-ports "$RTP_MIN-$RTP_MAX")
    case "$subject" in
        acd) args+=(acd --acd "$IP:$ACD_SIP" --sip "$IP:$GEN_SIP" "$@") ;;
        rtpengine) args+=(rtpengine --ng "$IP:$NG") ;;
        direct) args+=(direct) ;;
    esac
    local bound=$(( 2 * calls / CPS + hold + 120 )) rc=0
    echo "$(cat /proc/loadavg) | $RTPLOAD ${args[*]}" >> "$LOG_DIR/commands.log"
    timeout -k 5 "$bound" "$RTPLOAD" "${args[@]}" > "$out" 2> "${out%.json}.stderr.log" || rc=$?
    [ "$rc" -le 1 ] && [ -s "$out" ]
}

result() {   # bench metric subject value unit [goal] [detail-json]
    local goal="${6:-}" detail="${7:-{\}}"
    jq -cn --arg b "$1" --arg m "$2" --arg s "$3" --argjson v "$4" --arg u "$5" --arg g "$goal" \
        --argjson d "$detail" \
        '{bench:$b, metric:$m, subject:$s, value:$v, unit:$u} + (if $g == "" then {} else {goal:$g} end) + {detail:$d}' \
        | sed 's/^/RESULT /'
}

# ---- 2. the ramp -------------------------------------------------------------
declare -A MAXOK LAT50 LAT99 CPUPP
STEP_ROWS="$LOG_DIR/steps.tsv"
printf 'subject\tcalls\testablished\tlost\tp50_us\tp99_us\tp50_added_us\tp99_added_us\trelay_cpu_pct\tus_per_pkt\tgen_cpu_pct\tgen_late_us\tgen_skipped\tgen_rxq_bytes\trelay_rxq_bytes\tload\n' > "$STEP_ROWS"
ramp() {   # subject
    local subject="$1" n ok j d
    MAXOK[$subject]=0
    for n in ${STEPS//,/ }; do
        if [ "$subject" = acd ] && [ "$n" -gt "$MAX_BRIDGED" ]; then
            log "$subject: step $n skipped: above the $MAX_BRIDGED calls acd's $FD_LIMIT descriptors fit"
            continue
        fi
        j="$LOG_DIR/$subject-$n.json"; d="$LOG_DIR/direct-$n.json"
        rtpload direct "$n" "$HOLD" "$d" || { log "direct $n: no measurement"; return 0; }
        if ! rtpload "$subject" "$n" "$HOLD" "$j"; then
            log "$subject $n: no measurement (see ${j%.json}.stderr.log)"; return 0
        fi
        local row
        row="$(jq -r --slurpfile d "$d" --arg s "$subject" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '
            [$s, .calls, .established, .rtp.lost,
             .rtp.latency_us.all.p50_us, .rtp.latency_us.all.p99_us,
             (.rtp.latency_us.all.p50_us - $d[0].rtp.latency_us.all.p50_us),
             (.rtp.latency_us.all.p99_us - $d[0].rtp.latency_us.all.p99_us),
             ((.cpu.relay_cpu_pct_of_core // 0) | floor),
             ((.cpu.relay_us_per_packet // 0) * 100 | round / 100),
             ((.cpu.generator_cpu_pct_of_core // 0) | floor),
             (.rtp.max_tick_late_us // 0), (.rtp.skipped_frames // 0), (.udp_queues_mid_hold.generator_rx_bytes // 0),
             (.udp_queues_mid_hold.relay_rx_bytes // 0), $load] | @tsv' "$j")"
        printf '%s\n' "$row" >> "$STEP_ROWS"
        log "$(printf '%s' "$row" | tr '\t' ' ')"
        IFS=$'\t' read -r _ _ est lost p50 p99 a50 a99 cpu upp _ _ skipped _ <<< "$row"
        LAT50[$subject-$n]="$a50"; LAT99[$subject-$n]="$a99"; CPUPP[$subject-$n]="$upp"
        # A step holds when every call is up, nothing is lost and the
        # generator offered the whole load: frames it had to skip (its sender
        # starved on a saturated machine) were never sent, so "no loss" would
        # not mean the relay kept up.
        ok=1
        [ "$est" = "$n" ] && [ "$lost" = 0 ] && [ "$skipped" = 0 ] || ok=0
        [ "$ok" = 1 ] && MAXOK[$subject]="$n"
        if [ "$ok" = 0 ] || [ "$cpu" -ge 200 ]; then
            log "$subject: ramp ends at $n (established $est, lost $lost, generator skipped $skipped frames, relay cpu $cpu %)"
            break
        fi
    done
}

if [ "$RAMP" = 1 ]; then
    for subject in ${SUBJECTS//,/ }; do
        case "$subject" in
            acd) start_acd acd ;;
            rtpengine) start_rtpengine ;;
            *) echo "media.sh: unknown subject $subject" >&2; exit 2 ;;
        esac
        ramp "$subject"
        stop_pid "$RELAY_WRAP"; RELAY_PID=""
    done
    echo
    column -t -s $'\t' "$STEP_ROWS"
    echo
    REF=1000; [ "$QUICK" = 1 ] && REF=250
    for subject in ${SUBJECTS//,/ }; do
        steps_json="$(jq -Rsc --arg s "$subject" 'split("\n") | map(select(length > 0) | split("\t"))
            | .[0] as $h | .[1:] | map(select(.[0] == $s) | [$h, .] | transpose | map({(.[0]): .[1]}) | add)' "$STEP_ROWS")"
        result media max_concurrent_no_loss "$subject" "${MAXOK[$subject]}" calls ">=2000" \
            "{\"steps\":$steps_json,\"hold_secs\":$HOLD,\"cps\":$CPS,\"fd_limit\":$FD_LIMIT,\"max_bridged_fit\":$MAX_BRIDGED,\"rtpengine_args\":$(printf '%s\n' "${RTPENGINE_ARGS[@]:-}" | jq -Rsc 'split("\n")|map(select(length>0))')}"
        if [ -n "${LAT99[$subject-$REF]:-}" ]; then
            result media "p50_added_latency_us_at_$REF" "$subject" "${LAT50[$subject-$REF]}" us
            result media "p99_added_latency_us_at_$REF" "$subject" "${LAT99[$subject-$REF]}" us "<1000"
            result media "cpu_us_per_packet_at_$REF" "$subject" "${CPUPP[$subject-$REF]}" "us/packet"
        fi
    done
    if [ -n "${CPUPP[acd-$REF]:-}" ] && [ -n "${CPUPP[rtpengine-$REF]:-}" ]; then
        ratio="$(jq -n --argjson a "${CPUPP[acd-$REF]}" --argjson r "${CPUPP[rtpengine-$REF]}" \
            'if $r > 0 then ($a / $r * 100 | round / 100) else 0 end')"
        result media cpu_per_packet_ratio acd "$ratio" "x rtpengine" "<=0.5" \
            "{\"calls\":$REF,\"acd_us\":${CPUPP[acd-$REF]},\"rtpengine_us\":${CPUPP[rtpengine-$REF]}}"
    fi
fi

# ---- 3. memory -----------------------------------------------------------------
rss_now() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
memory() {   # kind(bridged|waiting) metric goal points [extra generator args]
    local kind="$1" metric="$2" goal="$3" points="$4"; shift 4
    start_acd "memory-$kind"
    sleep 2   # settle after READY (no event to await: RSS of an idle process)
    local rss0 n j samples="[{\"calls\":0,\"rss_kib\":$(rss_now "$RELAY_PID")}]" first="" last=""
    for n in ${points//,/ }; do
        # A waiting caller holds 4 sockets too (acd reserves the agent leg's
        # ports when the call comes in).
        if [ "$n" -gt "$MAX_BRIDGED" ]; then
            log "memory $kind: $n calls capped at $MAX_BRIDGED (descriptors)"; n="$MAX_BRIDGED"
        fi
        j="$LOG_DIR/memory-$kind-$n.json"
        rtpload acd "$n" "$MEM_HOLD" "$j" "$@" || { log "memory $kind $n: no measurement"; break; }
        samples="$(jq -c --slurpfile r "$j" '. + [{calls: $r[0].established, rss_kib: $r[0].relay_rss_kib}]' <<< "$samples")"
    done
    stop_pid "$RELAY_WRAP"; RELAY_PID=""
    log "memory $kind: $samples"
    # KiB per call: slope between the first and the last loaded sample.
    local slope
    slope="$(jq -n --argjson s "$samples" 'if ($s | length) >= 3 then
        (($s[-1].rss_kib - $s[1].rss_kib) / (($s[-1].calls - $s[1].calls) | if . == 0 then 1 else . end) * 10 | round / 10)
        else null end')"
    [ "$slope" = null ] && { log "memory $kind: not enough samples"; return 0; }
    result memory "$metric" acd "$slope" "KiB/call" "$goal" "{\"samples\":$samples,\"hold_secs\":$MEM_HOLD}"
}
if [ "$MEMORY" = 1 ]; then
    memory bridged kib_per_bridged_call "<=32" "$MEM_BRIDGED"
    memory waiting kib_per_waiting_call "" "$MEM_WAITING" --did 5550901 --uac-only
fi
exit 0
