# tests/bench/args.sh — sourced by routed.sh and signalling.sh: their common
# command line (-q, -o OUT_DIR, -h) and environment.
#   bench_args NAME "$@"   sets HERE, ROOT, QUICK, OUT (created)
bench_args() {
    local name="$1" opt
    shift
    HERE="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
    ROOT="$(cd "$HERE/../.." && pwd)"
    QUICK=0
    OUT=""
    OPTIND=1
    while getopts "qo:h" opt; do
        case "$opt" in
            q) QUICK=1 ;;
            o) OUT="$OPTARG" ;;
            h) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "${BASH_SOURCE[1]}"; exit 0 ;;
            *) exit 2 ;;
        esac
    done
    OUT="${OUT:-$ROOT/target/bench/$name-$(date -u +%Y%m%dT%H%M%S)}"
    mkdir -p "$OUT"
    # acd logs ~7 INFO lines per call; like Kamailio's config (no per-call
    # log line), the benches log warnings only unless RUST_LOG says otherwise.
    export RUST_LOG="${RUST_LOG:-warn}"
}
