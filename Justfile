# stt-web recipes. `just` is optional: every recipe is a plain command.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/stt-web-target")

# Transcribe audio files with the upstream model (downloaded once).
transcribe +ARGS:
    cargo run --release -p stt-cli -- transcribe {{ARGS}}

# Word error rate on a corpus with references (LibriSpeech folder or JSONL
# manifest): `just eval LibriSpeech/test-clean -o report.json`.
eval +ARGS:
    cargo run --release -p stt-cli -- eval {{ARGS}}

# Formatting, clippy (native + wasm32) and every test.
test:
    scripts/test

# A synthetic model: `just synth /tmp/tiny tiny` or `just synth /tmp/full full`.
synth DIR PRESET="tiny":
    cargo run --release -p stt-cli -- synth --out {{DIR}} --preset {{PRESET}} --gguf q4_0,q4_k,q8_0

# Build the browser engine into browser/web/pkg (wasm32 + wasm-bindgen).
web:
    scripts/build-web

# The browser app: builds the wasm package and runs `stt-cli serve`
# (`just serve --model DIR`, `just serve --https`); open the URL it prints.
serve *ARGS:
    scripts/serve {{ARGS}}

# The browser app with a tiny synthetic model (its words are gibberish).
serve-synthetic *ARGS:
    scripts/serve-synthetic {{ARGS}}

# Check that stt-model builds for the browser.
wasm-check:
    cargo clippy --release -p stt-model --target wasm32-unknown-unknown -- -D warnings

# Regenerate the parity goldens with upstream PyTorch moshi 0.2.13 (a venv in
# /tmp, ~7 GB; cases as arguments, default all) and compare, full size included.
parity-upstream *CASES:
    tests/parity/regenerate.sh {{CASES}}
    cargo test --release -p stt-cli --test parity_upstream -- --include-ignored --nocapture

# LM step speed as JSON: `just bench /tmp/full model-q4k.gguf`.
bench DIR LM="model-q4k.gguf":
    cargo run --release -p stt-cli -- bench --model {{DIR}} --lm {{LM}}

# Batched LM steps as JSON (1, 8, 16 and 64 streams at once, per-kernel GPU
# times): `just bench-batch /tmp/full`.
bench-batch DIR LM="model-q4k.gguf":
    cargo run --release -p stt-cli -- bench --model {{DIR}} --lm {{LM}} --streams 1,8,16,64 --profile-steps 3

# The browser figures (headless Chromium) as JSON: `just bench-browser /tmp/tiny /tmp/full`
# (synthetic models: tiny and full presets with q4_k; see bench/README.md).
bench-browser TINY FULL CLIP="../shared/fixtures/audio/bria.mp3":
    scripts/build-web
    node bench/browser.mjs --tiny {{TINY}} --full {{FULL}} --clip {{CLIP}}

# Fuzz every parser of untrusted bytes (weights, tokenizers, audio, config,
# worker messages) with libFuzzer for SECONDS each (nightly + cargo-fuzz,
# installed here on first use). Crashes land in fuzz/artifacts/<target>/;
# replay one with `STT_FUZZ_REPRO=target:PATH cargo test -p stt-fuzz
# --release repro -- --ignored`. CI runs the same targets over the seed
# corpus and seeded mutations on stable (fuzz-targets/tests/corpus.rs).
# Overflow checks stay on for our own parsers; audio is fuzzed as it ships
# (-O: release arithmetic): symphonia 0.5's MKV packet timestamps overflow
# in debug builds on a block dated before its cluster (release wraps, and
# nothing here reads packet timestamps).
fuzz SECONDS="120":
    rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz && for t in gguf safetensors lm_weights sentencepiece tokenizer_json audio config worker_message; do \
        mkdir -p work/$t && cp -n corpus/$t/* work/$t/ ; \
        release=; [ $t = audio ] && release=-O; \
        cargo +nightly fuzz run $release $t work/$t -- -max_total_time={{SECONDS}} -rss_limit_mb=4096 -max_len=65536 || exit 1; \
    done

# An hour-long live stream (the fixtures looped with 2 s pauses) through the
# GPU engine, with moshi's CPU LM beside it for the first 10 minutes: RSS per
# minute, words after every context wrap, identical words, as JSON.
# `just soak /tmp/stt-tiny model.safetensors`.
soak DIR LM="model.safetensors" MINUTES="60":
    cargo run --release -p stt-cli -- soak --model {{DIR}} --lm {{LM}} --minutes {{MINUTES}} --compare-minutes 10 \
        --audio ../shared/fixtures/audio/bria.mp3 --audio ../shared/fixtures/audio/loona.mp3 \
        --audio ../shared/fixtures/audio/sample_fr_hibiki_crepes.mp3

# The browser app recording Chromium's fake microphone (the fixtures looped,
# 2 s pauses) with the real engine for MINUTES: words every minute and the
# Chromium processes' RSS per minute, as JSON (browser/tests/soak.mjs).
# `just soak-browser /tmp/stt-tiny`.
soak-browser DIR MINUTES="10" BACKEND="cpu":
    cargo build --release -p stt-cli
    scripts/build-web
    mkdir -p "$CARGO_TARGET_DIR/soak-clip"
    for c in bria loona sample_fr_hibiki_crepes; do \
        "$CARGO_TARGET_DIR/release/stt-cli" decode-pcm ../shared/fixtures/audio/$c.mp3 "$CARGO_TARGET_DIR/soak-clip/$c.f32"; done
    cd "$CARGO_TARGET_DIR/soak-clip" && python3 {{justfile_directory()}}/scripts/f32-to-wav.py \
        bria.f32 loona.f32 sample_fr_hibiki_crepes.f32 soak.wav --gap 2
    STT_CLI="$CARGO_TARGET_DIR/release/stt-cli" node browser/tests/soak.mjs {{DIR}} "$CARGO_TARGET_DIR/soak-clip/soak.wav" {{MINUTES}} {{BACKEND}}
