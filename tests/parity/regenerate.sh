#!/usr/bin/env bash
# Regenerates the parity goldens in tests/parity/goldens with upstream PyTorch
# moshi (see tests/parity/README.md): makes a venv with the pinned packages,
# writes the synthetic models with `stt-cli synth`, decodes the fixture clips
# with `stt-cli decode-pcm` (so both sides see the same 24 kHz samples) and
# runs reference.py on each case. Arguments: case names (default: all).
#
# Environment: PARITY_VENV (default /tmp/parity-venv), PARITY_WORK (models and
# PCM, default /tmp/stt-parity-work; the full-size model takes 4.4 GB there).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stt-web-target}"
export NO_TORCH_COMPILE=1
STT_WEB_COMMIT="${STT_WEB_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)}"
export STT_WEB_COMMIT
VENV="${PARITY_VENV:-/tmp/parity-venv}"
WORK="${PARITY_WORK:-/tmp/stt-parity-work}"
CLIPS="$ROOT/../shared/fixtures/audio"
OUT="$ROOT/tests/parity/goldens"
SEED=1
ALL_CASES="tiny_chirp tiny_bria tiny_crepes mid_bria full_crepes"
CASES="${*:-$ALL_CASES}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet -r tests/parity/requirements.txt
cargo build --release -p stt-cli
CLI="$CARGO_TARGET_DIR/release/stt-cli"
mkdir -p "$WORK" "$OUT"

model() { # preset → model dir (written once per run of this script)
    local dir="$WORK/$1-seed$SEED"
    if [ ! -e "$dir/.done-$$" ]; then
        rm -rf "$dir"
        "$CLI" synth --out "$dir" --preset "$1" --seed "$SEED" --lm-dtype f32 >&2
        touch "$dir/.done-$$"
    fi
    echo "$dir"
}

pcm() { # clip seconds → raw f32 file decoded by our audio path
    local out="$WORK/${1%.mp3}-$2s.f32"
    "$CLI" decode-pcm "$CLIPS/$1" "$out" --seconds "$2"
    echo "$out"
}

reference() { # case preset args…
    local case="$1" preset="$2"
    shift 2
    "$VENV/bin/python" tests/parity/reference.py --model-dir "$(model "$preset")" \
        --preset "$preset" --seed "$SEED" --out "$OUT/$case" "$@"
}

for case in $CASES; do
    case "$case" in
    tiny_chirp)
        reference tiny_chirp tiny --chirp-seconds 10 \
            --input-desc "log chirp 100 Hz to 4 kHz with noise at -30 dB, 10 s" ;;
    tiny_bria)
        reference tiny_bria tiny --pcm "$(pcm bria.mp3 10)" \
            --input-desc "bria.mp3, first 10 s, as stt-cli decode-pcm decodes it" ;;
    tiny_crepes)
        reference tiny_crepes tiny --pcm "$(pcm sample_fr_hibiki_crepes.mp3 10)" \
            --input-desc "sample_fr_hibiki_crepes.mp3, first 10 s, as stt-cli decode-pcm decodes it" ;;
    mid_bria)
        reference mid_bria mid --pcm "$(pcm bria.mp3 30)" \
            --latent-frames "0:8,8::16" --full-logit-steps "0:4,4::50" \
            --input-desc "bria.mp3, first 30 s, as stt-cli decode-pcm decodes it" ;;
    full_crepes)
        reference full_crepes full --pcm "$(pcm sample_fr_hibiki_crepes.mp3 4)" --frames 50 \
            --latent-frames "0:50:4" --full-logit-steps "0:" \
            --input-desc "sample_fr_hibiki_crepes.mp3, first 50 frames (4 s), as stt-cli decode-pcm decodes it" ;;
    *)
        echo "unknown case $case (known: $ALL_CASES)" >&2
        exit 2 ;;
    esac
done
du -ch "$OUT"/* | tail -1
