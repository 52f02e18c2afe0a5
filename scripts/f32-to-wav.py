#!/usr/bin/env python3
"""Wraps raw little-endian f32 samples (24 kHz mono, `stt-cli decode-pcm`)
into a 16-bit WAV, for the browser tests' short clip."""
import array
import sys
import wave

raw, out = sys.argv[1], sys.argv[2]
samples = array.array("f")
with open(raw, "rb") as f:
    samples.frombytes(f.read())
pcm = array.array("h", (max(-32768, min(32767, round(s * 32767))) for s in samples))
with wave.open(out, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(24000)
    w.writeframes(pcm.tobytes())
