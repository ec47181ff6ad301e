# tests/load/procs.sh — process helpers sourced by tests/load/calls.sh and
# tests/bench/media.sh: every process they start runs under `timeout`, and
# these stop exactly those.

# Stops the `timeout` wrappers whose pids are given: TERM, a bounded wait
# (acd takes ~2 s to shut down: it cuts gRPC streams after 2 s), then KILL of
# the wrapper and its child (timeout does not pass on SIGKILL).
stop_wrappers() {
    local p
    for p in "$@"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    for _ in $(seq 1 100); do
        local alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do
        if kill -0 "$p" 2>/dev/null; then
            for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null || true; done
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

# Child pid of a `timeout` wrapper (the real process), bounded wait.
child_of() {
    local p="$1" c=""
    for _ in $(seq 1 100); do
        c="$(cat "/proc/$p/task/$p/children" 2>/dev/null | awk '{print $1}')"
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.02
    done
    return 1
}

# UDP port bound? (from /proc/net/udp, without touching it)
udp_bound() {
    local hex; hex="$(printf ':%04X' "$1")"
    awk -v want="$hex" 'NR>1 && $2 ~ want"$" {f=1} END {exit !f}' /proc/net/udp
}
