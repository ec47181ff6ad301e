#!/usr/bin/env bash
# THE test command: builds the workspace and runs every test, end-to-end
# tests included. On a fresh Debian 12 machine (as root) it first installs
# what the end-to-end tests need (SIPp, baresip). Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

need_sipp() { ! command -v sipp >/dev/null 2>&1; }
if need_sipp || ! command -v timeout >/dev/null 2>&1; then
    echo "run.sh: installing sip-tester (SIPp) ..." >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: sipp is missing and this is not root: run 'apt-get install -y sip-tester' as root" >&2
        exit 1
    fi
    apt-get update || { echo "run.sh: apt-get update failed" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y sip-tester coreutils \
        || { echo "run.sh: apt-get install -y sip-tester failed" >&2; exit 1; }
fi
# `sipp -v` prints its version and exits 99.
sipp_version=$(sipp -v 2>&1 || true)
if ! grep -q 'SIPp v' <<<"$sipp_version"; then
    echo "run.sh: 'sipp -v' does not work:" >&2
    echo "$sipp_version" >&2
    exit 1
fi
echo "run.sh: $(grep -m1 -o 'SIPp v[^ ]*' <<<"$sipp_version")" >&2

# baresip: a real softphone as an agent's phone (tests/tests/baresip.rs). Only
# baresip-core is needed; its recommends (GTK, X11, ffmpeg, GStreamer) are not.
if ! command -v baresip >/dev/null 2>&1; then
    echo "run.sh: installing baresip ..." >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: baresip is missing and this is not root: run 'apt-get install -y baresip' as root" >&2
        exit 1
    fi
    apt-get update || { echo "run.sh: apt-get update failed" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends baresip \
        || { echo "run.sh: apt-get install -y baresip failed" >&2; exit 1; }
fi
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
