#!/usr/bin/env bash
# THE test command: builds the workspace and runs every test, end-to-end
# tests included. On a fresh Debian 12 machine (as root) it first installs
# what the end-to-end tests need (SIPp, baresip, etcd, Kamailio, coreutils,
# procps, iproute2, PostgreSQL, util-linux, Chromium and ChromeDriver). Extra
# arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every external program the tests run, with the Debian package that brings
# it. Missing ones are installed in one go (as root); anything still missing
# afterwards fails the run: nothing is skipped.
TOOLS=(
    "sipp:sip-tester"       # SIPp: trunks and softphones (tests/src/sipp.rs)
    "baresip:baresip"       # a real softphone as an agent's phone (tests/tests/baresip.rs)
    "timeout:coreutils"     # bounds every SIPp run
    "/bin/kill:procps"      # SIGUSR1 makes SIPp print its final statistics
    "pkill:procps"          # ends a test's Chromium by its profile (tests/tests/wallboard.rs)
    "etcd:etcd-server"      # leadership of the distributor pair (tests/src/etcd.rs)
    "kamailio:kamailio"     # SIP load balancer in front of two edges (deploy/kamailio)
    "ip:iproute2"           # network namespaces of the partition test (tests/src/netns.rs)
    "bridge:iproute2"       # its bridge ports (isolated on/off)
    "pg_ctlcluster:postgresql"  # PostgreSQL server for the call records tests (tests/src/postgres.rs)
    "runuser:util-linux"    # runs PostgreSQL as its own user (it refuses root)
    "chromium:chromium"     # headless browser for the wallboard test
    "chromedriver:chromium-driver"  # WebDriver for it
    "python3:python3"       # the bench pipeline's ramp.py/results.py/table.py (tests/tests/bench_scripts.rs)
)
# shellcheck source=tests/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
install_tools run.sh "${TOOLS[@]}" || exit 1

# The PostgreSQL server binaries live under /usr/lib/postgresql/<version>/bin,
# not on PATH; the tests find them there.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
    || { echo "run.sh: no /usr/lib/postgresql/*/bin/postgres (package postgresql)" >&2; exit 1; }

# `sipp -v` prints its version and exits 99.
sipp_version=$(sipp -v 2>&1 || true)
if ! grep -q 'SIPp v' <<<"$sipp_version"; then
    echo "run.sh: 'sipp -v' does not work:" >&2
    echo "$sipp_version" >&2
    exit 1
fi
echo "run.sh: $(grep -m1 -o 'SIPp v[^ ]*' <<<"$sipp_version")" >&2

# The IVR tests replay SIPp's own captures (speech, RFC 4733 key presses),
# which the sip-tester package ships.
for pcap in g711a dtmf_2833_1 dtmf_2833_2 dtmf_2833_pound; do
    [ -f "/usr/share/sip-tester/$pcap.pcap" ] \
        || { echo "run.sh: /usr/share/sip-tester/$pcap.pcap (package sip-tester) is missing" >&2; exit 1; }
done

# `baresip -h` prints its version and usage and exits non-zero.
baresip_version=$(baresip -h 2>&1 || true)
if ! grep -q 'baresip v' <<<"$baresip_version"; then
    echo "run.sh: 'baresip -h' does not work:" >&2
    echo "$baresip_version" >&2
    exit 1
fi
echo "run.sh: $(grep -m1 -o 'baresip v[^ ]*' <<<"$baresip_version")" >&2

# The end-to-end tests run target/debug/acd and acdctl: build them first.
cargo build --workspace --bins --tests

if cargo nextest --version >/dev/null 2>&1; then
    # nextest does not run doctests; run them first so the summary of the
    # whole suite is the last thing printed.
    cargo test --workspace --doc --quiet
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
