# Prepared in session 14, not yet run: no device machine came up in that
# session. One call, about 9 minutes of device time; save() writes
# $OUT/results.tgz after every part, so a cut call keeps what ran.
#
# Build first (this commit, CARGO_TARGET_DIR=$HOME/.cache/stt-web-target,
# so the test binaries' CARGO_TARGET_TMPDIR is the path made below), then
# put into .bin3/ as .xz (xz -9: the carry limit is 64 MiB):
#   stt-cli        this commit
#   stt-cli-exp    + exp.diff (STT_EXP_ZERO: workgroup memory zeroed;
#                  STT_EXP_LOOPS: wgpu's loop counters back on)
#   stt-cli-loads  + loads4.diff (attention.wgsl and matvec.wgsl with four
#                  loads in flight, terms added in the plain loops' order:
#                  the same bits by construction)
#   stt-cli-loads8 + loads4.diff + att8.diff (attention with eight)
#   stt-cli-prologue + prologue.diff (matvec.wgsl's RmsNorm prologue: x
#                  and the norm weights loaded once, before the sum, the
#                  tile written from registers: one dependent global read
#                  fewer per workgroup of in_proj and linear_in; same bits)
#   stt-cli-cols   + mimi_columns.diff (session 15: conv1d_split_columns.wgsl,
#                  conv1d_split's sums with the input read along columns,
#                  for Mimi calls of >= 32 output columns; same bits, tested
#                  on lavapipe by gpu_mimi with 32 frames per call). Session
#                  15 built it at 5dba54e (d0db6e6 + device
#                  errors kept per thread: no kernel change) + the diff.
#   gpu_mimi_cols  gpu_mimi's test binary with mimi_columns.diff applied
#   gpu_batch, gpu_mimi  `cargo test --release -p stt-cli --test gpu_batch
#                  --test gpu_mimi --no-run`'s binaries
#   cycle.wav      bria, loona and the French clip with 2 s silences (as in
#                  session 12)
#   audio/         ../shared/fixtures/audio (the test binaries read the
#                  clips at the absolute path they were built with)
# Carry .gl and .bin3. (Session 14 left .bin3 built this way at d0db6e6 on
# its machine, git-ignored; rebuild if the kernels or the CLI changed.)
#
# 1. Determinism (session 13 saw the hour's words differ between 16 and
#    64 streams on one H100, from the 4th word of the first segment):
#    gpu_batch and gpu_mimi on the device's GPU; the hour's first 120 s
#    alone twice and with 2 and 16 streams, Mimi on the GPU and on the CPU
#    (the CPU Mimi is deterministic, so a difference there is the LM's);
#    without subgroups at 8 lanes; with workgroup memory zeroed; with loop
#    counters on. On lavapipe all of these agree (parallel.rs; session 14
#    also checked 1 against 3 streams with --mimi gpu on lavapipe).
# 2. Loads in flight and the prologue: ms per step at B = 1, 8, 64, f16
#    and f32 KV, this commit against loads, loads8 and prologue in the
#    same call, and their words. Then GPU Mimi, ms per frame and per-kernel
#    GPU time at 25 frames per call and the whole clip in one, this commit
#    against stt-cli-cols (session 15).
# 3. The hour at 16 streams twice and at 64, then 16 streams with Mimi
#    taking 125 and 250 frames per call (--mimi-chunk-frames) instead of
#    25: fewer, larger Mimi calls per lane.
# They run in the order 2, 1, 3 (session 15): the kernel figures take two
# minutes, so a call cut short still has them; the unxz'd test binaries
# run after them.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
mkdir -p /tmp/r /root/.cache/stt-web-target/tmp
# The fixtures where the test binaries look: CARGO_MANIFEST_DIR/../../shared
# with CARGO_MANIFEST_DIR = /work/main/cli here (it must exist to resolve ..).
mkdir -p /work/main/cli /work/shared/fixtures
[ -e /work/shared/fixtures/audio/bria.mp3 ] || cp -r .bin3/audio /work/shared/fixtures/audio
unxz_to() { python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" $1 $2; chmod +x $2; }
save() { tar czf $OUT/results.tgz -C /tmp/r .; }
for b in stt-cli stt-cli-exp stt-cli-loads stt-cli-loads8 stt-cli-prologue stt-cli-cols; do unxz_to .bin3/$b.xz /tmp/$b; done
/tmp/stt-cli synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
python3 - <<'PY'
import wave
src = wave.open('.bin3/cycle.wav')
frames = src.readframes(src.getnframes())
for name, secs in [('hour', 3600), ('head', 120)]:
    out = wave.open('/tmp/%s.wav' % name, 'wb')
    out.setparams(src.getparams())
    need = secs * src.getframerate() * src.getsampwidth()
    out.writeframes((frames * (need // len(frames) + 1))[:need])
    out.close()
PY
A="--model /tmp/full --lm model-q4k.gguf"
summary() {
  python3 - $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[1].split('/')[-1], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']),
          ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
  save
}
lm() {
  name=$1; bin=$2; shift 2
  timeout 90 $bin bench $A --steps 100 --streams 1,8,64 --profile-steps 10 "$@" > /tmp/r/$name.json 2> /tmp/r/$name.err
  summary /tmp/r/$name.json
}
for kv in f16 f32; do
  F=; [ $kv = f16 ] && F=--kv-f16
  lm base_$kv /tmp/stt-cli $F; lm loads_$kv /tmp/stt-cli-loads $F; lm loads8_$kv /tmp/stt-cli-loads8 $F
  lm prologue_$kv /tmp/stt-cli-prologue $F
done
lm base_f16_again /tmp/stt-cli --kv-f16
# Mimi on the GPU: this commit against conv1d_split_columns (mimi_columns.diff)
# at 25 frames per call (files, the hour's lanes) and the whole 45 s in one.
mimi() {
  name=$1; bin=$2; shift 2
  timeout 150 $bin bench $A --steps 20 --streams 1 --mimi-frames 560 --gpu-mimi --profile-steps 5 \
    --audio .bin3/audio/bria.mp3 "$@" > /tmp/r/$name.json 2> /tmp/r/$name.err
  python3 - /tmp/r/$name.json <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))['mimi']['gpu']
for mode in ('frame_by_frame', 'chunked'):
    e = g[mode]
    top = sorted(e['gpu_profile']['by_dispatch'], key=lambda d: -d['us_per_call'])[:4]
    print(sys.argv[1].split('/')[-1], mode, e['chunk_frames'], 'frames/call: %.4f ms/frame' % e['ms_per_frame_median'],
          ' '.join('%s=%.0f' % (d['label'], d['us_per_call']) for d in top), flush=True)
PY
  save
}
for c in 25 560; do mimi mimi_base_$c /tmp/stt-cli --mimi-chunk $c; mimi mimi_cols_$c /tmp/stt-cli-cols --mimi-chunk $c; done
for t in gpu_batch gpu_mimi; do
  unxz_to .bin3/$t.xz /tmp/$t
  STT_REQUIRE_GPU=1 timeout 150 /tmp/$t --test-threads 2 > /tmp/r/test_$t.txt 2>&1; echo "$t rc $?"
  grep -E "test result|panicked|differs" /tmp/r/test_$t.txt | head -8
done; save
# conv1d_split_columns on the GPU: one frame per call against 32 must stay
# bit-identical there too (the driver, not lavapipe, decides how fmas fuse).
unxz_to .bin3/gpu_mimi_cols.xz /tmp/gpu_mimi_cols
STT_REQUIRE_GPU=1 timeout 150 /tmp/gpu_mimi_cols gpu_mimi_codes > /tmp/r/test_gpu_mimi_cols.txt 2>&1
echo "gpu_mimi_cols rc $?"; grep -E "test result|panicked|differ" /tmp/r/test_gpu_mimi_cols.txt | head -4; save
first2min() { name=$1; shift; timeout 120 "$@" /tmp/head.wav > /tmp/r/$name.txt 2>/tmp/r/$name.err || echo "$name failed"; }
for mimi in gpu cpu; do
  for p in 1 1b 2 16; do first2min ${mimi}_p$p /tmp/stt-cli transcribe $A --mimi $mimi --parallel ${p%b}; done
done
for p in 1 1b 16; do first2min plain_p$p /tmp/stt-cli transcribe $A --mimi cpu --no-gpu-features --matvec-lanes 8 --parallel ${p%b}; done
for p in 1 1b 16; do STT_EXP_ZERO=1 first2min zero_p$p /tmp/stt-cli-exp transcribe $A --mimi cpu --parallel ${p%b}; done
for p in 1 1b 16; do STT_EXP_LOOPS=1 first2min loops_p$p /tmp/stt-cli-exp transcribe $A --mimi cpu --parallel ${p%b}; done
for p in 1 16; do first2min loads_p$p /tmp/stt-cli-loads transcribe $A --mimi cpu --parallel $p; done
first2min loads8_p1 /tmp/stt-cli-loads8 transcribe $A --mimi cpu --parallel 1
first2min prologue_p1 /tmp/stt-cli-prologue transcribe $A --mimi cpu --parallel 1
save
python3 - <<'PY'
import glob, os
t = {os.path.basename(f)[:-4]: open(f).read().split() for f in sorted(glob.glob('/tmp/r/*_p*.txt'))}
def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
for k, v in t.items():
    alone = k.split('_')[0] + '_p1'
    print('%-10s %5d words; first word unlike %s: %s; unlike cpu_p1: %s'
          % (k, len(v), alone, first_diff(t[alone], v), first_diff(t['cpu_p1'], v)))
PY
for run in p16c25 p16c25b p64c25 p16c125 p16c250; do
  p=${run:1:2}; c=${run#*c}; c=${c%b}
  timeout 80 /tmp/stt-cli transcribe $A --mimi gpu -v --parallel $p --mimi-chunk-frames $c /tmp/hour.wav \
    > /tmp/r/hour_$run.txt 2> /tmp/r/hour_$run.err
  echo "$run: $(grep -E 'all inputs' /tmp/r/hour_$run.err) $(wc -w < /tmp/r/hour_$run.txt) words"
  save
done
cmp /tmp/r/hour_p16c25.txt /tmp/r/hour_p16c25b.txt && echo "hour at 16 streams twice: identical"
cmp /tmp/r/hour_p16c25.txt /tmp/r/hour_p64c25.txt && echo "hour at 16 and 64 streams: identical"
save
