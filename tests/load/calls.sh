#!/usr/bin/env bash
# tests/load/calls.sh — bounded call-load test of `acd run` on loopback.
#
# Usage:
#   tests/load/calls.sh [-r RATE] [-c CALLS] [-t TALK_SECS] [-w SECS] [-o LOG_DIR]
#                       [-x] [-s] [-R] [-a KEY=VALUE ...] [-P BASE] [-M RTP_MIN] [-k RTP_PORTS]
#                       [-n AGENTS] [-f FLOW] [-S SUBJECT] [-j CHILDREN] [-T SECS]
#
#   -r RATE       trunk call attempts per second (SIPp -r, up to 4000) [default 5]
#   -c CALLS      total trunk calls (SIPp -m, trunk and agent side, up to 100000) [default 300]
#   -t TALK_SECS  agent talk time before the agent hangs up (0: at once) [default 3]
#   -w SECS       after the calls, wait up to SECS for the edge's SIP transactions
#                 to drain to 0 (UDP Timer J/D keep them 32 s), as a leak check [default 40]
#   -o LOG_DIR    where logs, SIPp stats and acd's stderr go
#                 [default target/load-logs/r<RATE>-c<CALLS>-t<TALK>-<time>]
#   -x            overload run: calls refused with 503 + Retry-After (acd's
#                 admission control) count as "refused", not failed; without
#                 -x any refusal fails the run
#   -s            with a hot standby: an `acd distributor --standby-of` follows
#                 the run's distributor, so every agent command and offer waits
#                 for its acknowledgement (synchronous replication); its CPU is
#                 reported too
#   -R            with call records: [records] in SQLite under LOG_DIR; after
#                 the run waits (up to 60 s) for the writer to catch up and
#                 prints the records' figures (acdctl report --db), which
#                 must count every answered call once
#   -a KEY=VALUE  an [admission] setting of the generated load.toml (repeat):
#                 max_calls, max_calls_per_second, max_lateness_ms,
#                 retry_after_secs [default: acd's defaults, see config/acd.toml]
#   -P BASE       port base: SIP/gRPC/metrics/SIPp in BASE..BASE+79 [default 33000]
#   -M RTP_MIN    first RTP port [default BASE+1000]
#   -k RTP_PORTS  most RTP ports acd may take (from RTP_MIN; acd binds 4 per
#                 call: two even/odd pairs); the range is sized from RATE x
#                 (prompt + talk + setup) with headroom, capped by this [default 2000, 24..18000: the
#                 sandbox allows 20,000 open files]
#   -n AGENTS     agents and extensions (2001, 2002, ...) [default 50, up to 2000]
#   -f FLOW       prompt: DID 5550100, 200 at once, welcome prompt, queue `sales`;
#                 direct: DID 5550101, queue `sales` at once with answer = "early"
#                 (183, the 200 to the trunk only when the agent answers: the
#                 closest to a proxy's work) [default prompt]
#   -S SUBJECT    acd, or kamailio: Kamailio (tests/bench/kamailio.cfg, a
#                 stateful proxy) relays the trunk's calls straight to the agent
#                 UAS, no acd, no agents (with -f direct; -x -s -R not allowed) [default acd]
#   -j CHILDREN   Kamailio's UDP worker processes (`children`) [default 2]
#   -T SECS       stop the trunk SIPp SECS after the last call should have
#                 ended (CALLS / RATE + prompt + talk + SECS: SIPp -timeout);
#                 calls still open then count as not completed. The benches
#                 use it so a stuck call does not hold a step for SIPp's 120 s
#                 [default: no bound but SIPp's own timeouts]
#
# Environment:
#   ACD_BIN / ACDCTL_BIN  binaries (default: target/release/* if built, else target/debug/*)
#   RUST_LOG              acd's log filter (default: info), acd's stderr goes to LOG_DIR/acd.stderr.log
#   TRACE_MSG=1           also trace every SIP message of both SIPps (big at high rates)
#
# What it does (everything on 127.0.0.1, every process under `timeout`, all of
# them stopped by an EXIT trap):
#   1. writes tests/load/load.toml (AGENTS extensions 2001.. with passwords
#      load<ext>, AGENTS agents a2001.. with sales=5, wrap_up_secs = 0, DID
#      5550100 -> answer, welcome prompt, enqueue `sales`; DID 5550101 -> early
#      media, enqueue `sales`) and runs `acd check-config` on it;
#   2. starts `acd run` on ports BASE (SIP UDP+TCP), BASE+1 (gRPC), BASE+2
#      (metrics), RTP from RTP_MIN (sized, see -k), and waits for its `ACD READY` line
#      (-S kamailio: Kamailio on BASE+40 instead, steps 4 and the acd figures skipped);
#   3. starts one SIPp UAS (agent_uas.xml) answering for all agents: answer,
#      talk TALK_SECS, hang up (BYE); -m CALLS;
#   4. registers the extensions with their Contact at that UAS (one SIPp
#      register_many.xml run over an injection file), logs in and readies
#      every agent with acdctl (agent a<ext> at extension <ext>), and checks
#      that all of them are READY;
#   5. runs the SIPp trunk UAC (trunk_call_or_503.xml: answered calls are hung
#      up by the far side, refused ones end at the 503 + ACK) at RATE calls/s
#      for CALLS calls, with -trace_stat and -trace_counts. Both SIPps get `-l CALLS`:
#      SIPp's default limit of simultaneous calls is 3 x rate x the scenario's
#      pause (with no -d on the trunk: 3 x RATE), which would silently
#      throttle the offered rate (seen: 2.6 instead of 5 calls/s);
#   6. prints the trunk's answered (200), refused (503) and failed calls and
#      retransmissions, INVITE->200 and INVITE->503 times (SIPp rtd 1 and 2:
#      cumulative average and worst 1-s average), the length of answered calls
#      (rtd 3, INVITE->BYE) against the expected prompt + TALK_SECS, the
#      agent side's calls, acd's shedding counters (acd_calls_shed_total by
#      reason, acd_sip_overload_drops_total), `acdctl queue list --json`,
#      agents not READY afterwards, the subject's CPU time (utime+stime from
#      /proc/<pid>/stat, Kamailio: summed over its processes; total and for
#      the call phase, per 1000 calls), both SIPps' CPU in the call phase
#      (so a reader sees whether SIPp was the limit), acd's max RSS (VmHWM)
#      and RSS at the end (VmRSS); then one machine-readable line
#      `SUMMARY {json}` with the same figures (tests/bench/*.sh read it).
#   Exit status: 0 when every call succeeded on both sides (with -x: every
#   call was answered and completed on both sides or refused with 503, and
#   every agent is READY again), 1 otherwise (2 for a setup failure).
#
# Ports: SIP/gRPC/metrics/SIPp control in BASE..BASE+49 (SIPp media sockets
# BASE+50..BASE+79), RTP from RTP_MIN (BASE+1000). The SDPs of both SIPps point RTP
# at the SIPp's own (unread) media socket, so acd's RTP is received by a
# bound socket and dropped by the kernel, no ICMP errors. The default base
# 33000 keeps to 33000-35999; the benches use 36000 (tests/bench/README.md),
# the smoke tests (tests/tests/bench_scripts.rs) one 200-port block.
#
# Capacity: the sustainable rate is about AGENTS / (agent's busy time per
# call: TALK_SECS + setup); above it calls wait in the queue (music on hold)
# and are still answered as long as the queue drains within SIPp's timeouts
# (trunk_call_or_503.xml waits 120 s for the BYE). With the prompt flow, acd
# holds RATE x (2.5 s + TALK_SECS + setup) calls at once, 4 RTP ports each:
# once the RTP range is full, calls get 503 (media).

set -euo pipefail

RATE=5
CALLS=300
TALK=3
SETTLE=40
LOG_DIR=""
EXPECT_SHED=0
STANDBY=0
RECORDS=0
ADMISSION=()
BASE=33000
RTP_PORTS_MAX=2000
N_AGENTS=50
FLOW=prompt
SUBJECT=acd
KAM_CHILDREN=2
DRAIN=""
RTP_MIN=""
usage() { sed -n '2,104p' "$0" | sed 's/^# \{0,1\}//'; }
while getopts "r:c:t:w:o:xsRa:P:M:k:n:f:S:j:T:h" opt; do
    case "$opt" in
        r) RATE="$OPTARG" ;;
        c) CALLS="$OPTARG" ;;
        t) TALK="$OPTARG" ;;
        w) SETTLE="$OPTARG" ;;
        o) LOG_DIR="$OPTARG" ;;
        x) EXPECT_SHED=1 ;;
        s) STANDBY=1 ;;
        R) RECORDS=1 ;;
        a) ADMISSION+=("$OPTARG") ;;
        P) BASE="$OPTARG" ;;
        M) RTP_MIN="$OPTARG" ;;
        k) RTP_PORTS_MAX="$OPTARG" ;;
        n) N_AGENTS="$OPTARG" ;;
        f) FLOW="$OPTARG" ;;
        S) SUBJECT="$OPTARG" ;;
        j) KAM_CHILDREN="$OPTARG" ;;
        T) DRAIN="$OPTARG" ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ "$SETTLE" =~ ^[0-9]+$ ]] && [ "$SETTLE" -le 120 ] || { echo "calls.sh: -w must be 0..120" >&2; exit 2; }
[[ "$DRAIN" =~ ^[0-9]*$ ]] && [ "${DRAIN:-0}" -le 300 ] || { echo "calls.sh: -T must be 0..300" >&2; exit 2; }
for v in RATE CALLS TALK BASE RTP_PORTS_MAX N_AGENTS KAM_CHILDREN; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || { [ "${!v}" -lt 1 ] && [ "$v" != TALK ]; }; then
        echo "calls.sh: $v must be a positive integer (TALK may be 0), got '${!v}'" >&2; exit 2
    fi
done
if [ "$CALLS" -gt 100000 ] || [ "$RATE" -gt 4000 ] || [ "$TALK" -gt 60 ]; then
    echo "calls.sh: refusing CALLS > 100000, RATE > 4000 or TALK > 60 (bounded test)" >&2; exit 2
fi
RTP_MIN="${RTP_MIN:-$((BASE + 1000))}"
if ! [[ "$RTP_MIN" =~ ^[0-9]+$ ]] || [ "$BASE" -lt 1024 ] || [ "$BASE" -gt 61000 ] \
        || [ "$RTP_MIN" -lt 1024 ] || [ $((RTP_MIN + RTP_PORTS_MAX)) -gt 65536 ] || [ $((RTP_MIN % 2)) = 1 ] \
        || [ "$RTP_PORTS_MAX" -lt 24 ] || [ "$RTP_PORTS_MAX" -gt 18000 ] \
        || [ "$N_AGENTS" -gt 2000 ] || [ "$KAM_CHILDREN" -gt 16 ]; then
    echo "calls.sh: -P must be 1024..61000, -M even and the range below 65536, -k 24..18000, -n 1..2000, -j 1..16" >&2; exit 2
fi
case "$FLOW" in
    prompt) DID=5550100; PROMPT_MS=2500 ;;
    direct) DID=5550101; PROMPT_MS=0 ;;
    *) echo "calls.sh: -f must be prompt or direct, got '$FLOW'" >&2; exit 2 ;;
esac
case "$SUBJECT" in
    acd) ;;
    kamailio)
        if [ "$FLOW" != direct ] || [ "$EXPECT_SHED$STANDBY$RECORDS" != 000 ] || [ "${#ADMISSION[@]}" -gt 0 ]; then
            echo "calls.sh: -S kamailio wants -f direct and none of -x -s -R -a" >&2; exit 2
        fi ;;
    *) echo "calls.sh: -S must be acd or kamailio, got '$SUBJECT'" >&2; exit 2 ;;
esac

for kv in "${ADMISSION[@]}"; do
    if ! [[ "$kv" =~ ^(max_calls|max_calls_per_second|max_lateness_ms|retry_after_secs)=[0-9]+$ ]]; then
        echo "calls.sh: -a wants KEY=INTEGER with KEY one of max_calls, max_calls_per_second," \
             "max_lateness_ms, retry_after_secs; got '$kv'" >&2; exit 2
    fi
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SIPP_DIR="$ROOT/tests/sipp"
# One config per port base, so runs on different bases do not share it.
if [ "$BASE" = 33000 ]; then CONFIG="$HERE/load.toml"; else CONFIG="$HERE/load-$BASE.toml"; fi
# Secrets of the generated config (a throw-away local run).
LOAD_CLUSTER_TOKEN="load-cluster-$$"
LOAD_ADMIN_TOKEN="load-admin-$$"

pick_bin() {
    if [ -x "$ROOT/target/release/$1" ]; then echo "$ROOT/target/release/$1"
    else echo "$ROOT/target/debug/$1"; fi
}
ACD="${ACD_BIN:-$(pick_bin acd)}"
ACDCTL="${ACDCTL_BIN:-$(pick_bin acdctl)}"
for b in "$ACD" "$ACDCTL"; do
    [ -x "$b" ] || { echo "calls.sh: $b missing: cargo build --release --bin acd --bin acdctl" >&2; exit 2; }
done
command -v sipp >/dev/null || { echo "calls.sh: sipp missing (apt-get install sip-tester)" >&2; exit 2; }

# ---- ports ----------------------------------------------------------------
IP=127.0.0.1
ACD_SIP=$BASE
ACD_GRPC=$((BASE + 1))
ACD_METRICS=$((BASE + 2))
STANDBY_GRPC=$((BASE + 3))
STANDBY_METRICS=$((BASE + 4))
UAS_SIP=$((BASE + 10));   UAS_CP=$((BASE + 11));   UAS_MP=$((BASE + 50))
TRUNK_SIP=$((BASE + 20)); TRUNK_CP=$((BASE + 21)); TRUNK_MP=$((BASE + 60))
REG_SIP=$((BASE + 30));   REG_CP=$((BASE + 31));   REG_MP=$((BASE + 70))
KAM_SIP=$((BASE + 40))
FIRST_EXT=2001
# RTP: calls held at once ~ RATE x (prompt + talk + 2 s setup and teardown),
# x 1.5 headroom + 50, 4 ports each (two even/odd pairs), capped by -k.
RTP_NEEDED=$(( (RATE * (PROMPT_MS + TALK * 1000 + 2000) / 1000 * 3 / 2 + 50) * 4 ))
RTP_SIZE=$RTP_NEEDED
[ "$RTP_SIZE" -lt 400 ] && RTP_SIZE=400
[ "$RTP_SIZE" -gt "$RTP_PORTS_MAX" ] && RTP_SIZE=$RTP_PORTS_MAX
RTP_SIZE=$(( RTP_SIZE / 2 * 2 ))
ACD_RTP="$RTP_MIN-$((RTP_MIN + RTP_SIZE - 1))"
RTP_NOTE="RTP $ACD_RTP: $RTP_SIZE ports = $((RTP_SIZE / 4)) calls at once (sized for ~$((RTP_NEEDED / 4)))"
[ "$RTP_NEEDED" -gt "$RTP_SIZE" ] && RTP_NOTE="$RTP_NOTE, CAPPED by -k $RTP_PORTS_MAX"

if [ -z "$LOG_DIR" ]; then
    LOG_DIR="$ROOT/target/load-logs/r${RATE}-c${CALLS}-t${TALK}-$(date -u +%Y%m%dT%H%M%S)"
fi
mkdir -p "$LOG_DIR"
LOG_DIR="$(cd "$LOG_DIR" && pwd)"
# A reused LOG_DIR: the figures are read from these, so no stale ones.
rm -f "$LOG_DIR"/*_counts.csv "$LOG_DIR"/sipp-*.stat.csv

log() { echo "[calls.sh $(date -u +%H:%M:%S)] $*" >&2; }

# shellcheck source=tests/load/procs.sh
source "$HERE/procs.sh"

# ---- cleanup: stop exactly the processes started here ----------------------
PIDS=()            # pids of `timeout` wrappers (they forward signals to their child)
SIPP_PIDS=()       # the SIPp ones among them: USR1 first (graceful stop, final stats)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${SIPP_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -USR1 "$p" 2>/dev/null || true; fi
    done
    if [ "${#SIPP_PIDS[@]}" -gt 0 ]; then sleep 0.5; fi
    stop_wrappers "${PIDS[@]}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# From a -trace_stat file: "successful failed retransmissions max_concurrent
# max_response_time1 avg_call_length failure_breakdown" (cumulative columns of the
# last row; max over the 1 s rows of CurrentCall and of the per-period average
# ResponseTime1 = INVITE->200 on the trunk; Failed*(C) columns that are not 0).
stat_counts() {
    local f="$1"
    [ -s "$f" ] || { echo "? ? ? ? ? ? -"; return; }
    awk -F';' 'NR==1 {for (i=1;i<=NF;i++) col[$i]=i; next}
               NF>1 {last=$0; if ($col["CurrentCall"]+0 > max) max=$col["CurrentCall"]+0;
                     split($col["ResponseTime1(P)"], t, ":"); ms=(t[1]*3600+t[2]*60+t[3])*1000+t[4]/1000;
                     if (ms > rt) rt=ms}
               END {n=split(last, v, ";"); br="";
                    for (k in col) if (k ~ /^Failed.+\(C\)$/ && k != "FailedCall(C)" && v[col[k]]+0 > 0)
                        br=br (br=="" ? "" : ",") k "=" v[col[k]];
                    if (br=="") br="-";
                    printf "%s %s %s %d %s %s %s\n", v[col["SuccessfulCall(C)"]], v[col["FailedCall(C)"]],
                        v[col["Retransmissions(C)"]], max, (rt+0) "ms", v[col["CallLength(C)"]], br}' "$f"
}

# Last row of a -trace_counts file: the first column whose name ends in $2
# (e.g. _200_Recv, _503_Recv, _INVITE_Retrans).
counts_col() {
    local f; f="$(ls "$1"/*_counts.csv 2>/dev/null | head -1)"
    [ -n "$f" ] && [ -s "$f" ] || { echo "?"; return; }
    awk -F';' -v want="$2" 'NR==1 {for (i=1;i<=NF;i++) if (!c && substr($i, length($i)-length(want)+1) == want) c=i; next}
                            NF>1 {last=$0}
                            END {split(last, v, ";"); print (c ? v[c]+0 : "?")}' "$f"
}

# SIPp response-time distance N of a -trace_stat file: "cumulative average,
# worst 1-s average" in ms (0 when no call reached that rtd).
rtd_ms() {
    local f="$1" n="$2"
    [ -s "$f" ] || { echo "? ?"; return; }
    awk -F';' -v n="$n" 'function ms(s,  t) {split(s, t, ":"); return (t[1]*3600+t[2]*60+t[3])*1000+t[4]/1000}
               NR==1 {for (i=1;i<=NF;i++) col[$i]=i; p=col["ResponseTime" n "(P)"]; c=col["ResponseTime" n "(C)"]; next}
               NF>1 && p {last=$0; if (ms($p) > worst) worst=ms($p)}
               END {if (!p) {print "? ?"; exit}; split(last, v, ";"); printf "%.0f %.0f\n", ms(v[c]), worst}' "$f"
}

# Seconds from the trunk's start to the 1-s stats row where it had created
# all $2 calls (an upper bound of the sending time, to within a second).
send_secs() {
    local f="$1"
    [ -s "$f" ] || { echo "?"; return; }
    awk -F';' -v n="$2" 'function t(s, a) {split(s, a, "\t"); return a[3]}
               NR==1 {for (i=1;i<=NF;i++) col[$i]=i; next}
               NF>1 && $col["OutgoingCall(C)"]+0 >= n {printf "%.1f\n", t($col["CurrentTime"]) - t($col["StartTime"]); found=1; exit}
               END {if (!found) print "?"}' "$f"
}

# CPU seconds (utime+stime) of a pid; the comm field may hold spaces, so cut after ')'.
cpu_secs() {
    local hz; hz="$(getconf CLK_TCK)"
    [ -r "/proc/$1/stat" ] || { echo "?"; return; }
    sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$hz" '{printf "%.2f", ($12 + $13) / hz}'
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }

sipp_common() {   # name sip_port control_port media_port
    local name="$1"
    local a=(-i "$IP" -mi "$IP" -p "$2" -cp "$3" -mp "$4" -t u1 -nostdin
             -trace_err -error_file "$LOG_DIR/sipp-$name.errors.log")
    if [ "${TRACE_MSG:-0}" = 1 ]; then
        a+=(-trace_msg -message_file "$LOG_DIR/sipp-$name.messages.log")
    fi
    printf '%s\n' "${a[@]}"
}

# ---- 1. config ---------------------------------------------------------------
write_config() {
    {
        cat <<EOF
# acd — load-test configuration, written by tests/load/calls.sh (do not edit:
# the script rewrites it on every run). Like config/acd.toml with 50
# extensions and agents, no wrap-up, and the loopback ports of the load test
# (calls.sh passes them on the command line as well). Paths are relative to
# this file.

[sip]
realm = "acd.local"
udp = "$IP:$ACD_SIP"
tcp = "$IP:$ACD_SIP"
public_ip = "$IP"

[media]
rtp_port_min = ${ACD_RTP%-*}
rtp_port_max = ${ACD_RTP#*-}

[grpc]
listen = "$IP:$ACD_GRPC"

# gRPC access: the processes share the cluster token; acdctl acts as admin.
[access]
cluster_token = "$LOAD_CLUSTER_TOKEN"
users = [{ name = "load", role = "admin", token = "$LOAD_ADMIN_TOKEN" }]

[metrics]
listen = "$IP:$ACD_METRICS"

[distributor]
wrap_up_secs = 0
offer_timeout_secs = 20

[prompts]
welcome = "../../config/prompts/welcome.wav"
moh = "../../config/prompts/moh.wav"

EOF
        if [ "$RECORDS" = 1 ]; then
            # Relative to this config file, so no machine path lands in it.
            local rel
            rel="$(realpath --relative-to="$HERE" "$LOG_DIR")"
            printf '[records]\ndatabase = "sqlite:%s/records.db"\nspool = "%s/records-spool"\n\n' "$rel" "$rel"
        fi
        if [ "${#ADMISSION[@]}" -gt 0 ]; then
            echo "[admission]"
            local kv
            for kv in "${ADMISSION[@]}"; do echo "${kv%%=*} = ${kv#*=}"; done
            echo
        fi
        local i ext
        for i in $(seq 0 $((N_AGENTS - 1))); do
            ext=$((FIRST_EXT + i))
            printf '[[extensions]]\nnumber = "%s"\npassword = "load%s"\n\n' "$ext" "$ext"
        done
        for i in $(seq 0 $((N_AGENTS - 1))); do
            ext=$((FIRST_EXT + i))
            printf '[[agents]]\nid = "a%s"\nname = "Agent %s"\nskills = { sales = 5 }\n\n' "$ext" "$ext"
        done
        cat <<'EOF'
[[queues]]
id = "sales"
skills = { sales = 1 }

[[dids]]
number = "5550100"
flow = "sales"

[flows.sales]
answer = "immediate"
start = "welcome"
fallback_queue = "sales"

[flows.sales.nodes.welcome]
type = "play"
prompt = "welcome"
next = "queue"

[flows.sales.nodes.queue]
type = "enqueue"
queue = "sales"
priority = 0

# Signalling bench (-f direct): no prompt, the caller hears early media
# (183) while queued and gets the 200 only when an agent answers.
[[dids]]
number = "5550101"
flow = "direct"

[flows.direct]
answer = "early"
start = "queue"
fallback_queue = "sales"

[flows.direct.nodes.queue]
type = "enqueue"
queue = "sales"
priority = 0
EOF
    } > "$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
}
RUN_SECS=$(( CALLS / RATE + TALK + 200 ))   # bound of the whole run: setup + calls + drain + margin
for port in $ACD_SIP $UAS_SIP $TRUNK_SIP $REG_SIP $KAM_SIP; do
    if udp_bound "$port"; then echo "calls.sh: UDP port $port already in use" >&2; exit 2; fi
done

# ---- 2. the subject: acd run (or Kamailio) ------------------------------------
start_acd() {
    write_config
    log "config $CONFIG; acd $ACD; logs $LOG_DIR; $RTP_NOTE"
    timeout 30 "$ACD" check-config "$CONFIG" > "$LOG_DIR/check-config.log" 2>&1 || {
        cat "$LOG_DIR/check-config.log" >&2; echo "calls.sh: check-config failed" >&2; exit 2; }
    RUST_LOG="${RUST_LOG:-info}" timeout -k 5 $((RUN_SECS + 120)) "$ACD" run --config "$CONFIG" \
        --sip-udp "$IP:$ACD_SIP" --sip-tcp "$IP:$ACD_SIP" --grpc "$IP:$ACD_GRPC" \
        --metrics "$IP:$ACD_METRICS" --rtp-ports "$ACD_RTP" --public-ip "$IP" \
        > "$LOG_DIR/acd.stdout.log" 2> "$LOG_DIR/acd.stderr.log" < /dev/null &
    ACD_WRAP=$!
    PIDS+=("$ACD_WRAP")
    ACD_PID="$(child_of "$ACD_WRAP")" || { echo "calls.sh: acd did not start" >&2; exit 2; }
    for _ in $(seq 1 300); do
        grep -q '^ACD READY' "$LOG_DIR/acd.stdout.log" 2>/dev/null && break
        kill -0 "$ACD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ACD READY' "$LOG_DIR/acd.stdout.log" 2>/dev/null; then
        echo "calls.sh: no ACD READY line within 30 s; stderr tail:" >&2
        tail -20 "$LOG_DIR/acd.stderr.log" >&2; exit 2
    fi
    log "$(grep '^ACD READY' "$LOG_DIR/acd.stdout.log") pid=$ACD_PID"
}

# Kamailio (-S kamailio): the stateful proxy of tests/bench/kamailio.cfg,
# relaying every new INVITE to the agent UAS; KAM_CHILDREN UDP workers.
# 1 GiB of shared memory: with 256 MiB its transactions ran out of it at
# 1,850 calls/s ("new_t(): out of mem", 500 from t_relay), not of CPU.
start_kamailio() {
    command -v kamailio >/dev/null || { echo "calls.sh: kamailio missing (apt-get install kamailio)" >&2; exit 2; }
    mkdir -p "$LOG_DIR/kamailio-run"
    local args=(-f "$ROOT/tests/bench/kamailio.cfg" -DD -E -n "$KAM_CHILDREN"
                -A "LISTEN=udp:$IP:$KAM_SIP" -A "UAS=\"sip:$IP:$UAS_SIP\""
                -P "$LOG_DIR/kamailio-run/kamailio.pid" -Y "$LOG_DIR/kamailio-run" -m 1024 -M 16)
    echo "kamailio ${args[*]}" > "$LOG_DIR/kamailio.cmdline"
    timeout -k 5 $((RUN_SECS + 120)) kamailio "${args[@]}" \
        > "$LOG_DIR/kamailio.stdout.log" 2> "$LOG_DIR/kamailio.stderr.log" < /dev/null &
    ACD_WRAP=$!
    PIDS+=("$ACD_WRAP")
    ACD_PID="$(child_of "$ACD_WRAP")" || { echo "calls.sh: kamailio did not start" >&2; exit 2; }
    for _ in $(seq 1 100); do udp_bound "$KAM_SIP" && break; sleep 0.1; done
    udp_bound "$KAM_SIP" || { echo "calls.sh: kamailio did not bind $KAM_SIP; stderr tail:" >&2
                              tail -20 "$LOG_DIR/kamailio.stderr.log" >&2; exit 2; }
    log "kamailio pid=$ACD_PID on $KAM_SIP, $KAM_CHILDREN UDP children"
}

if [ "$SUBJECT" = acd ]; then
    start_acd
    TARGET="$IP:$ACD_SIP"
else
    start_kamailio
    TARGET="$IP:$KAM_SIP"
fi
CTL=("$ACDCTL" --server "http://$IP:$ACD_GRPC" --token "$LOAD_ADMIN_TOKEN")

# ---- 2b. the hot standby (-s) ------------------------------------------------
STANDBY_PID=""
if [ "$STANDBY" = 1 ]; then
    timeout -k 5 $((RUN_SECS + 120)) "$ACD" distributor --config "$CONFIG" \
        --grpc "$IP:$STANDBY_GRPC" --metrics "$IP:$STANDBY_METRICS" \
        --standby-of "http://$IP:$ACD_GRPC" \
        > "$LOG_DIR/standby.stdout.log" 2> "$LOG_DIR/standby.stderr.log" < /dev/null &
    STANDBY_WRAP=$!
    PIDS+=("$STANDBY_WRAP")
    STANDBY_PID="$(child_of "$STANDBY_WRAP")" || { echo "calls.sh: the standby did not start" >&2; exit 2; }
    for _ in $(seq 1 300); do
        grep -q '^ACD READY' "$LOG_DIR/standby.stdout.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^ACD READY' "$LOG_DIR/standby.stdout.log" 2>/dev/null \
        || { echo "calls.sh: the standby is not following; stderr tail:" >&2; tail -20 "$LOG_DIR/standby.stderr.log" >&2; exit 2; }
    log "standby following: $(grep '^ACD READY' "$LOG_DIR/standby.stdout.log") pid=$STANDBY_PID"
fi

# ---- 3. the agents' softphone: one SIPp UAS for all agents -------------------
mapfile -t UAS_ARGS < <(sipp_common agent "$UAS_SIP" "$UAS_CP" "$UAS_MP")
timeout -s USR1 -k 10 "$RUN_SECS" sipp -sf "$HERE/agent_uas.xml" "${UAS_ARGS[@]}" \
    -m "$CALLS" -l "$CALLS" -d $((TALK * 1000)) -key rtpport "$UAS_MP" \
    -trace_stat -stf "$LOG_DIR/sipp-agent.stat.csv" -fd 1 \
    -trace_screen -screen_file "$LOG_DIR/sipp-agent.screen.log" \
    > "$LOG_DIR/sipp-agent.stdout.log" 2> "$LOG_DIR/sipp-agent.stderr.log" < /dev/null &
UAS_WRAP=$!
PIDS+=("$UAS_WRAP")
SIPP_PIDS+=("$UAS_WRAP")
for _ in $(seq 1 100); do udp_bound "$UAS_SIP" && break; sleep 0.05; done
udp_bound "$UAS_SIP" || { echo "calls.sh: agent UAS did not bind $UAS_SIP" >&2; cat "$LOG_DIR/sipp-agent.stderr.log" >&2; exit 2; }

# ---- 4. register the extensions, log in and ready the agents -----------------
register_agents() {
    local users="$LOG_DIR/register-users.csv" i ext
    { echo SEQUENTIAL
      for i in $(seq 0 $((N_AGENTS - 1))); do ext=$((FIRST_EXT + i)); echo "$ext;[authentication username=$ext password=load$ext];"; done
    } > "$users"
    mapfile -t REG_ARGS < <(sipp_common register "$REG_SIP" "$REG_CP" "$REG_MP")
    if ! timeout -s USR1 -k 5 $((N_AGENTS / 50 + 30)) sipp -sf "$HERE/register_many.xml" "${REG_ARGS[@]}" \
            -inf "$users" -key contact_port "$UAS_SIP" -m "$N_AGENTS" -l 50 -r 200 \
            "$IP:$ACD_SIP" >> "$LOG_DIR/sipp-register.stdout.log" 2>&1 < /dev/null; then
        echo "calls.sh: REGISTER of some extension failed (see $LOG_DIR/sipp-register.*)" >&2; exit 2
    fi
    log "registered $N_AGENTS extensions"
    # Login and ready, 8 agents at a time (each acdctl is one short gRPC call).
    # (`wait` names the pids: a bare `wait` would wait for acd too.)
    local batch=()
    for i in $(seq 0 $((N_AGENTS - 1))); do
        ext=$((FIRST_EXT + i))
        { timeout 15 "${CTL[@]}" agent login "a$ext" --extension "$ext"
          timeout 15 "${CTL[@]}" agent ready "a$ext"; } >> "$LOG_DIR/acdctl.log" 2>&1 &
        batch+=("$!")
        if [ "${#batch[@]}" = 8 ] || [ "$i" = $((N_AGENTS - 1)) ]; then
            wait "${batch[@]}" || true
            batch=()
        fi
    done
    local ready
    ready="$(timeout 30 "${CTL[@]}" --json agent list 2>/dev/null | grep -c '"READY"' || true)"
    [ "$ready" = "$N_AGENTS" ] || { echo "calls.sh: $ready of $N_AGENTS agents READY (see $LOG_DIR/acdctl.log)" >&2; exit 2; }
    log "logged in and readied $N_AGENTS agents"
}
if [ "$SUBJECT" = acd ]; then register_agents; fi

# ---- 5. the trunk --------------------------------------------------------------
# CPU of the subject: acd's process, or Kamailio's main process and its workers.
subject_cpu() {
    if [ "$SUBJECT" = acd ]; then cpu_secs "$ACD_PID"; return; fi
    local total=0 p c
    for p in "$ACD_PID" $(cat "/proc/$ACD_PID/task/$ACD_PID/children" 2>/dev/null); do
        c="$(cpu_secs "$p")"
        [ "$c" != "?" ] && total="$(awk -v a="$total" -v b="$c" 'BEGIN {printf "%.2f", a + b}')"
    done
    echo "$total"
}
# CPU seconds of this shell's waited-for children (bash `times`, second
# line) into the variable named $1; `times` must run in this shell, not in a
# $(...) subshell, hence the file.
children_cpu() {
    times > "$LOG_DIR/.times"
    printf -v "$1" '%s' "$(awk 'NR == 2 {s = 0; for (i = 1; i <= 2; i++) {split($i, t, /[ms]/); s += t[1] * 60 + t[2]}; printf "%.2f", s}' "$LOG_DIR/.times")"
}
CPU0="$(subject_cpu)"
SCPU0="$( [ -n "$STANDBY_PID" ] && cpu_secs "$STANDBY_PID" || echo 0)"
RSS0="$(status_kb "$ACD_PID" VmRSS)"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
children_cpu KIDS_CPU0
mapfile -t TRUNK_ARGS < <(sipp_common trunk "$TRUNK_SIP" "$TRUNK_CP" "$TRUNK_MP")
if [ -n "$DRAIN" ]; then
    TRUNK_ARGS+=(-timeout "$(( (CALLS + RATE - 1) / RATE + (PROMPT_MS + 999) / 1000 + TALK + DRAIN ))s")
fi
log "trunk: $CALLS calls at $RATE/s, talk ${TALK}s, flow $FLOW (DID $DID) to $SUBJECT (bound ${RUN_SECS}s)"
T0=$(date +%s.%N)
# -trace_counts writes <scenario>_<pid>_counts.csv into the working directory.
(cd "$LOG_DIR" && exec timeout -s USR1 -k 10 "$RUN_SECS" sipp -sf "$SIPP_DIR/trunk_call_or_503.xml" "${TRUNK_ARGS[@]}" \
    -s "$DID" -key caller 0215551234 -key rtpport "$TRUNK_MP" \
    -r "$RATE" -rp 1000 -m "$CALLS" -l "$CALLS" \
    -trace_stat -stf "$LOG_DIR/sipp-trunk.stat.csv" -fd 1 -trace_counts \
    -trace_screen -screen_file "$LOG_DIR/sipp-trunk.screen.log" \
    "$TARGET") > "$LOG_DIR/sipp-trunk.stdout.log" 2> "$LOG_DIR/sipp-trunk.stderr.log" < /dev/null &
TRUNK_WRAP=$!
PIDS+=("$TRUNK_WRAP")
SIPP_PIDS+=("$TRUNK_WRAP")
set +e
wait "$TRUNK_WRAP"
TRUNK_RC=$?
T1=$(date +%s.%N)
set -e
CPU1="$(subject_cpu)"
SCPU1="$( [ -n "$STANDBY_PID" ] && cpu_secs "$STANDBY_PID" || echo 0)"
LOAD1="$(cut -d' ' -f1-3 /proc/loadavg)"

# The agent UAS ends by itself after CALLS calls; if some never reached it
# (refused calls never do), stop it once it has ended as many calls as the
# trunk had answered.
set +e
T_ANSWERED="$(counts_col "$LOG_DIR" _200_Recv)"
for _ in $(seq 1 $((TALK * 10 + 100))); do
    kill -0 "$UAS_WRAP" 2>/dev/null || break
    read -r a_ok a_fail _ <<< "$(stat_counts "$LOG_DIR/sipp-agent.stat.csv")"
    [[ "$a_ok$a_fail" =~ ^[0-9]+$ ]] && [[ "$T_ANSWERED" =~ ^[0-9]+$ ]] \
        && [ $((a_ok + a_fail)) -ge "$T_ANSWERED" ] && [ "$T_ANSWERED" -lt "$CALLS" ] && break
    sleep 0.1
done
if kill -0 "$UAS_WRAP" 2>/dev/null; then
    log "agent UAS still running (it got fewer than $CALLS calls): stopping it (USR1)"
    kill -USR1 "$UAS_WRAP"
fi
wait "$UAS_WRAP"
UAS_RC=$?
set -e
# Both SIPps' CPU in the call phase (the trunk and the UAS have been waited for).
children_cpu KIDS_CPU1
SIPP_CPU="$(awk -v a="$KIDS_CPU0" -v b="$KIDS_CPU1" 'BEGIN {printf "%.2f", b - a}')"

# ---- 6. report ----------------------------------------------------------------
sleep 1   # let the last BYE/200 and state changes settle
read -r T_OK T_FAIL T_RETR T_MAX T_RT T_LEN T_WHY <<< "$(stat_counts "$LOG_DIR/sipp-trunk.stat.csv")"
read -r A_OK A_FAIL A_RETR A_MAX A_RT A_LEN A_WHY <<< "$(stat_counts "$LOG_DIR/sipp-agent.stat.csv")"
T_ANSWERED="$(counts_col "$LOG_DIR" _200_Recv)"
T_REFUSED="$(counts_col "$LOG_DIR" _503_Recv)"
T_INV_RETR="$(counts_col "$LOG_DIR" _INVITE_Retrans)"
read -r RT200 RT200_WORST <<< "$(rtd_ms "$LOG_DIR/sipp-trunk.stat.csv" 1)"
read -r RT503 RT503_WORST <<< "$(rtd_ms "$LOG_DIR/sipp-trunk.stat.csv" 2)"
read -r CALL_MS CALL_MS_WORST <<< "$(rtd_ms "$LOG_DIR/sipp-trunk.stat.csv" 3)"
SEND_S="$(send_secs "$LOG_DIR/sipp-trunk.stat.csv" "$CALLS")"
EXPECTED_MS=$(( PROMPT_MS + TALK * 1000 ))
# acd's own figures (Kamailio has none of these).
ACTIVE="-"; TXS="-"; TXS_SETTLED="-"; WAITING="-"; REC_SUMMARY="off"; NOT_READY_LIST=""; N_NOT_READY=0
: > "$LOG_DIR/metrics.txt"
if [ "$SUBJECT" = acd ]; then
    timeout 15 "${CTL[@]}" --json queue list > "$LOG_DIR/queue-list.json" 2>&1 || true
    timeout 15 "${CTL[@]}" --json agent list > "$LOG_DIR/agent-list.json" 2>&1 || true
    # Calls still active at the edge (should drain to 0 within a few seconds).
    for _ in $(seq 1 20); do
        timeout 15 "${CTL[@]}" status > "$LOG_DIR/status.txt" 2>&1 || true
        grep -Eq '^edge.active_calls +0$' "$LOG_DIR/status.txt" && break
        sleep 0.5
    done
    ACTIVE="$(awk '$1 == "edge.active_calls" {print $2}' "$LOG_DIR/status.txt")"
    TXS="$(awk '$1 == "edge.sip_transactions" {print $2}' "$LOG_DIR/status.txt")"
    WAITING="$(awk '$1 == "distributor.calls_waiting" {print $2}' "$LOG_DIR/status.txt")"
    timeout 15 curl -s "http://$IP:$ACD_METRICS/metrics" > "$LOG_DIR/metrics.txt" 2>/dev/null || true
    # Call records: every answered call once, once the writer caught up.
    REC_SUMMARY="off"
    if [ "$RECORDS" = 1 ]; then
        for _ in $(seq 1 120); do
            timeout 15 curl -s "http://$IP:$ACD_METRICS/metrics" > "$LOG_DIR/metrics.txt" 2>/dev/null || true
            awk '/^acd_records_pending / {p=$NF} END {exit !(p == "0")}' "$LOG_DIR/metrics.txt" && break
            sleep 0.5
        done
        timeout 60 "$ACDCTL" report --db "sqlite:$LOG_DIR/records.db" --from today --format json \
            > "$LOG_DIR/report.json" 2> "$LOG_DIR/report.err" || true
        REC_SUMMARY="$(jq -r '.total | "offered \(.offered), answered \(.answered), abandoned \(.abandoned)"' \
            "$LOG_DIR/report.json" 2>/dev/null || echo "no report: $(head -c 300 "$LOG_DIR/report.err")")"
        REC_SUMMARY="$REC_SUMMARY; written $(awk '/^acd_records_written_total / {print $NF}' "$LOG_DIR/metrics.txt"), pending $(awk '/^acd_records_pending / {print $NF}' "$LOG_DIR/metrics.txt"), db errors $(awk '/^acd_records_db_errors_total/ {n+=$NF} END {print n+0}' "$LOG_DIR/metrics.txt")"
    fi
    NOT_READY_LIST="$(grep '"a[0-9]' "$LOG_DIR/agent-list.json" | grep -v '"READY"' | head -10 || true)"
    N_NOT_READY="$(grep '"a[0-9]' "$LOG_DIR/agent-list.json" | grep -vc '"READY"' || true)"
    # Leak check: the edge's SIP transactions drain to 0 once Timer J/D (32 s) ran out.
    TXS_SETTLED="$TXS"
    if [ "$SETTLE" -gt 0 ] && [ -n "$TXS" ] && [ "$TXS" != 0 ]; then
        for _ in $(seq 1 $((SETTLE / 2))); do
            sleep 2
            timeout 15 "${CTL[@]}" status > "$LOG_DIR/status-settled.txt" 2>&1 || true
            TXS_SETTLED="$(awk '$1 == "edge.sip_transactions" {print $2}' "$LOG_DIR/status-settled.txt")"
            [ "$TXS_SETTLED" = 0 ] && break
        done
    fi
fi
CPU2="$(subject_cpu)"
HWM="$(status_kb "$ACD_PID" VmHWM)"
RSS2="$(status_kb "$ACD_PID" VmRSS)"
THREADS="$(status_kb "$ACD_PID" Threads)"
FDS="$(ls "/proc/$ACD_PID/fd" 2>/dev/null | wc -l)"
ELAPSED="$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.1f", b - a}')"
PHASE_CPU="$(awk -v a="$CPU0" -v b="$CPU1" 'BEGIN {printf "%.2f", b - a}')"
PER_1000="$(awk -v c="$PHASE_CPU" -v n="$CALLS" 'BEGIN {printf "%.2f", c * 1000 / n}')"
ERRS="$(grep -c ' ERROR ' "$LOG_DIR/$SUBJECT.stderr.log" 2>/dev/null || true)"
# Shedding as acd counted it (reason labels) and UDP dropped at the driver's input.
SHED="$(awk '/^acd_calls_shed_total\{/ {match($0, /reason="[^"]*"/); r=substr($0, RSTART+8, RLENGTH-9);
            s=s (s=="" ? "" : ",") r "=" $NF} END {print (s=="" ? "none" : s)}' "$LOG_DIR/metrics.txt" 2>/dev/null)"
NO_MEDIA="$(awk '/^acd_calls_refused_total\{/ && /status="503"/ {n+=$NF} END {print n+0}' "$LOG_DIR/metrics.txt" 2>/dev/null)"
DROPS="$(awk '/^acd_sip_overload_drops_total/ {n+=$NF} END {print n+0}' "$LOG_DIR/metrics.txt" 2>/dev/null)"
WARNS="$(grep -c ' WARN ' "$LOG_DIR/$SUBJECT.stderr.log" 2>/dev/null || true)"

SUBJECT_LOG="$LOG_DIR/$SUBJECT.stderr.log"
SIPP_PER_1000="$(awk -v c="$SIPP_CPU" -v n="$CALLS" 'BEGIN {printf "%.2f", c * 1000 / n}')"
ALIVE=yes; kill -0 "$ACD_PID" 2>/dev/null || ALIVE=no
VERDICT=FAIL
if [ "$ALIVE" = yes ] && [ "$TRUNK_RC" = 0 ] && [ "$UAS_RC" = 0 ] && [ "$T_OK" = "$CALLS" ] && [ "$T_FAIL" = 0 ] \
        && [ "$A_OK" = "$CALLS" ] && [ "$A_FAIL" = 0 ]; then
    VERDICT=PASS
# Overload run: every call answered and completed or refused at once, every agent READY.
elif [ "$EXPECT_SHED" = 1 ] && [ "$ALIVE" = yes ] && [ "$T_FAIL" = 0 ] && [ "$A_FAIL" = 0 ] \
        && [ "$T_OK" = "$CALLS" ] && [ "$((T_ANSWERED + T_REFUSED))" = "$CALLS" ] \
        && [ "$A_OK" = "$T_ANSWERED" ] && [ "${N_NOT_READY:-1}" = 0 ] && [ "${ACTIVE:-1}" = 0 ]; then
    VERDICT=SHED
fi

# A number for the SUMMARY line, or null ("?" and the like).
num() { if [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then echo "$1"; else echo null; fi; }
summary_json() {
    printf '{"subject":"%s","flow":"%s","did":"%s","rate":%s,"calls":%s,"talk_s":%s,"agents":%s,' \
        "$SUBJECT" "$FLOW" "$DID" "$RATE" "$CALLS" "$TALK" "$N_AGENTS"
    printf '"verdict":"%s","alive":"%s","trunk_rc":%s,"agent_rc":%s,' "$VERDICT" "$ALIVE" "$(num "$TRUNK_RC")" "$(num "$UAS_RC")"
    printf '"ok":%s,"answered":%s,"refused":%s,"failed":%s,"failed_why":"%s","retrans":%s,"invite_retrans":%s,' \
        "$(num "$T_OK")" "$(num "$T_ANSWERED")" "$(num "$T_REFUSED")" "$(num "$T_FAIL")" "$T_WHY" \
        "$(num "$T_RETR")" "$(num "$T_INV_RETR")"
    printf '"agent_ok":%s,"agent_failed":%s,"agent_failed_why":"%s","agent_retrans":%s,"max_concurrent":%s,' \
        "$(num "$A_OK")" "$(num "$A_FAIL")" "$A_WHY" "$(num "$A_RETR")" "$(num "$T_MAX")"
    printf '"invite_200_ms":%s,"invite_200_worst_ms":%s,"invite_503_ms":%s,"call_ms":%s,"call_worst_ms":%s,"expected_call_ms":%s,' \
        "$(num "$RT200")" "$(num "$RT200_WORST")" "$(num "$RT503")" "$(num "$CALL_MS")" "$(num "$CALL_MS_WORST")" "$EXPECTED_MS"
    printf '"send_s":%s,"elapsed_s":%s,"cpu_s":%s,"cpu_ms_per_call":%s,"sipp_cpu_s":%s,"sipp_cpu_ms_per_call":%s,' \
        "$(num "$SEND_S")" "$(num "$ELAPSED")" "$(num "$PHASE_CPU")" "$(num "$PER_1000")" "$(num "$SIPP_CPU")" "$(num "$SIPP_PER_1000")"
    printf '"max_rss_kb":%s,"rss_kb":%s,"threads":%s,"active_after":%s,"not_ready_after":%s,' \
        "$(num "$HWM")" "$(num "$RSS2")" "$(num "$THREADS")" "$(num "$ACTIVE")" "$(num "$N_NOT_READY")"
    printf '"shed":"%s","refused_media":%s,"overload_drops":%s,"rtp_ports":%s,"rtp_needed":%s,' \
        "${SHED:-}" "$(num "$NO_MEDIA")" "$(num "$DROPS")" "$RTP_SIZE" "$RTP_NEEDED"
    printf '"kamailio_children":%s,"rust_log":"%s","load_before":"%s","load_after":"%s"}\n' \
        "$([ "$SUBJECT" = kamailio ] && echo "$KAM_CHILDREN" || echo null)" "${RUST_LOG:-info}" "$LOAD0" "$LOAD1"
}

{
    echo "== $SUBJECT load test: rate $RATE/s, $CALLS calls, talk ${TALK}s, flow $FLOW (DID $DID), $N_AGENTS agents"
    echo "binary:        $([ "$SUBJECT" = acd ] && echo "$ACD" || echo "kamailio, $KAM_CHILDREN UDP children")"
    echo "media:         $RTP_NOTE"
    echo "trunk SIPp:    exit $TRUNK_RC, answered $T_ANSWERED, refused (503) $T_REFUSED, failed $T_FAIL ($T_WHY)"
    echo "               retransmissions $T_RETR (INVITE $T_INV_RETR), max concurrent $T_MAX"
    echo "               INVITE->200 avg ${RT200} ms (worst 1-s avg ${RT200_WORST} ms), INVITE->503 avg ${RT503} ms (worst 1-s avg ${RT503_WORST} ms)"
    echo "               answered calls last ${CALL_MS} ms on average (worst 1-s avg ${CALL_MS_WORST} ms; expected ~${EXPECTED_MS} ms)"
    echo "acd shedding:  acd_calls_shed_total $SHED; 503 (media) $NO_MEDIA; acd_sip_overload_drops_total $DROPS"
    echo "agent SIPp:    exit $UAS_RC, successful $A_OK, failed $A_FAIL ($A_WHY), retransmissions $A_RETR"
    echo "               max concurrent $A_MAX, avg call length $A_LEN"
    echo "trunk phase:   ${ELAPSED}s wall (all calls created within ${SEND_S}s), load avg before [$LOAD0] after [$LOAD1]"
    echo "$SUBJECT CPU:  ${PHASE_CPU}s in the trunk phase (${PER_1000}s per 1000 calls), $CPU2 s total since start"
    echo "SIPp CPU:      ${SIPP_CPU}s in the trunk phase, trunk + agent UAS (${SIPP_PER_1000}s per 1000 calls)"
    if [ -n "$STANDBY_PID" ]; then
        echo "standby CPU:   $(awk -v a="$SCPU0" -v b="$SCPU1" 'BEGIN {printf "%.2f", b - a}')s in the trunk phase; sync timeouts $(awk '/^acd_replication_sync_timeouts_total/ {n+=$NF} END {print n+0}' "$LOG_DIR/metrics.txt" 2>/dev/null)"
    fi
    echo "$SUBJECT memory: VmHWM ${HWM} kB, VmRSS ${RSS0} kB before / ${RSS2} kB after; threads $THREADS, fds $FDS"
    echo "call records:  $REC_SUMMARY"
    echo "$SUBJECT log:  $ERRS ERROR, $WARNS WARN lines ($SUBJECT_LOG)"
    echo "after the run: edge.active_calls ${ACTIVE:-?}, edge.sip_transactions ${TXS:-?} (${TXS_SETTLED:-?} after up to ${SETTLE}s), calls_waiting ${WAITING:-?}, agents not READY ${N_NOT_READY:-?}"
    [ -n "$NOT_READY_LIST" ] && echo "$NOT_READY_LIST"
    if [ "$SUBJECT" = acd ]; then
        echo "queues (acdctl queue list --json):"
        cat "$LOG_DIR/queue-list.json"
    fi
    echo "logs:          $LOG_DIR"
    echo "SUMMARY $(summary_json)"
} | tee "$LOG_DIR/summary.txt"

[ "$ALIVE" = yes ] || echo "$SUBJECT is no longer running!"
case "$VERDICT" in
    PASS) echo "RESULT: PASS"; exit 0 ;;
    SHED) echo "RESULT: PASS (shed $T_REFUSED of $CALLS)"; exit 0 ;;
esac
echo "RESULT: FAIL"
exit 1
