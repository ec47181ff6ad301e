#!/usr/bin/env bash
# Regenerates the shipped prompts from texts.tsv (needs espeak-ng and sox:
# `apt-get install espeak-ng sox`). Builds and tests do not run this: the
# WAVs are committed.
#
#   ./generate.sh             every prompt in texts.tsv, choose_language, beep and ringback
#   ./generate.sh NAME...     only these names (both languages)
#
# Output: en/<name>.wav and ru/<name>.wav, 8 kHz mono 8-bit µ-law (what
# acd_media::load_wav reads and what a PCMU leg plays without re-encoding),
# trimmed of silence at both ends, peak-normalised to -3 dBFS, with a short
# fade so fragments joined back to back do not click, then 20 ms of silence
# before and 50 ms after: said numbers and dates keep a gap between words. welcome.wav and moh.wav
# in this directory are hand-made and left alone.
set -euo pipefail

cd "$(dirname "$0")"

EN_VOICE=${EN_VOICE:-en-us}
RU_VOICE=${RU_VOICE:-ru}
# Words per minute: a little slower than espeak's 175 suits the phone.
SPEED=${SPEED:-150}

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool is not installed" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# -D: no dither, so regenerating unchanged texts gives identical files.
to_prompt() { # in.wav out.wav
    sox -D "$1" -r 8000 -c 1 -e mu-law -b 8 "$2" gain -6 \
        rate -v 8000 highpass 120 \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
        norm -3 \
        fade t 0.01 reverse fade t 0.03 reverse \
        pad 0.02 0.05
}

speak() { # voice text out.wav
    espeak-ng -v "$1" -s "$SPEED" -w "$tmp/raw.wav" -- "$2"
    to_prompt "$tmp/raw.wav" "$3"
}

wanted() { # name: whether to (re)generate it
    [ "${#names[@]}" -eq 0 ] && return 0
    local n
    for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}

names=("$@")
mkdir -p en ru
count=0
while IFS=$'\t' read -r name en ru; do
    case "$name" in '' | '#'* | name) continue ;; esac
    wanted "$name" || continue
    if [ "$en" != "-" ]; then
        speak "$EN_VOICE" "$en" "en/$name.wav"
        count=$((count + 1))
    fi
    if [ "$ru" != "-" ]; then
        speak "$RU_VOICE" "$ru" "ru/$name.wav"
        count=$((count + 1))
    fi
done < texts.tsv

if wanted choose_language; then
    espeak-ng -v "$EN_VOICE" -s "$SPEED" -w "$tmp/en.wav" -- "For English, press 1."
    espeak-ng -v "$RU_VOICE" -s "$SPEED" -w "$tmp/ru.wav" -- "Для русского языка нажмите два."
    to_prompt "$tmp/en.wav" "$tmp/en8.wav"
    to_prompt "$tmp/ru.wav" "$tmp/ru8.wav"
    # A pause between the two languages.
    sox -D -n -r 8000 -c 1 -e mu-law -b 8 "$tmp/gap.wav" trim 0 0.4
    sox -D "$tmp/en8.wav" "$tmp/gap.wav" "$tmp/ru8.wav" choose_language.wav
    count=$((count + 1))
fi

if wanted beep; then
    sox -D -n -r 8000 -c 1 -e mu-law -b 8 beep.wav synth 0.4 sine 1000 vol -6dB fade t 0.01 0.4 0.01
    count=$((count + 1))
fi

if wanted ringback; then
    # What a transferred caller hears while the far end rings: the European
    # ring-back tone (425 Hz, 1 s on, 4 s off), played in a loop.
    sox -D -n -r 8000 -c 1 -e mu-law -b 8 ringback.wav synth 1 sine 425 vol -8dB fade t 0.02 1 0.02 pad 0 4
    count=$((count + 1))
fi

echo "generate.sh: $count prompts written"
