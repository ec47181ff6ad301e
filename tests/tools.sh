# tests/tools.sh — sourced by tests/run.sh, tests/bench/run.sh and
# tests/bench/media.sh: installs the Debian packages of missing tools.
#
#   install_tools WHO "tool:package" ...
# Installs the package of every tool not on PATH (as root; apt-get update
# first), then checks each tool is there. Returns 1, naming what is missing,
# when it cannot; a tool is never silently skipped.
install_tools() {
    local who="$1" entry tool
    shift
    local missing=()
    for entry in "$@"; do
        tool=${entry%%:*}
        command -v "$tool" >/dev/null 2>&1 || missing+=("${entry##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "$who: installing ${missing[*]} ..." >&2
        if [ "$(id -u)" -ne 0 ]; then
            echo "$who: missing ${missing[*]} and this is not root: run 'apt-get install -y --no-install-recommends ${missing[*]}' as root" >&2
            return 1
        fi
        apt-get update || { echo "$who: apt-get update failed" >&2; return 1; }
        # --no-install-recommends: e.g. baresip-core suffices; its recommends
        # (GTK, X11, ffmpeg, GStreamer) are not needed.
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
            || { echo "$who: apt-get install -y ${missing[*]} failed" >&2; return 1; }
    fi
    for entry in "$@"; do
        tool=${entry%%:*}
        command -v "$tool" >/dev/null 2>&1 \
            || { echo "$who: '$tool' (Debian package ${entry##*:}) is still missing" >&2; return 1; }
    done
}
