#!/usr/bin/env python3
"""Wraps raw little-endian f32 samples (24 kHz mono, `stt-cli decode-pcm`)
into a 16-bit WAV, for the browser tests' clips. Several inputs are joined,
with `--gap SECONDS` of silence after each (the browser soak's loop).

    f32-to-wav.py IN.f32 [IN.f32 ...] OUT.wav [--gap SECONDS]
"""
import array
import sys
import wave

args = sys.argv[1:]
gap_s = 0.0
if "--gap" in args:
    i = args.index("--gap")
    gap_s = float(args[i + 1])
    del args[i : i + 2]
if len(args) < 2:
    sys.exit(__doc__)
*inputs, out = args
samples = array.array("f")
for raw in inputs:
    with open(raw, "rb") as f:
        samples.frombytes(f.read())
    samples.extend([0.0] * int(gap_s * 24000))
pcm = array.array("h", (max(-32768, min(32767, round(s * 32767))) for s in samples))
with wave.open(out, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(24000)
    w.writeframes(pcm.tobytes())
