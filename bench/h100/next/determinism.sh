# Prepared in session 13, not yet run (no device machine started for it).
# Is the engine deterministic on hardware, and is a segment's transcript
# independent of the lanes beside it? Session 13 call 1 (one binary, one
# H100, one call) transcribed the hour with 16 and with 64 parallel
# streams and the words differ from the 4th word of the first segment on
# (8 452 vs 8 468 words); session 12's 16-stream run of that binary gave
# 8 467. Each segment is a fresh stream, bit-identical to itself alone on
# lavapipe (cli/tests/parallel.rs, gpu_batch.rs), so on lavapipe these
# would all agree.
# 1. gpu_batch and gpu_mimi tests (lavapipe's bit-for-bit and tolerance
#    checks) on the device's GPU.
# 2. The hour's first 120 s (three segments): one stream twice, 2 and 16
#    parallel streams, with Mimi on the GPU and on the CPU (the CPU Mimi is
#    deterministic: a difference there is the LM's).
# 3. The same with --no-gpu-features --matvec-lanes 8 (no subgroup
#    reductions, lavapipe's lanes): if that agrees where step 2 did not,
#    the subgroup path is the cause. (Also worth a try, needs a build:
#    `zero_initialize_workgroup_memory: true` in pipelines.rs, off now.)
# 4. The hour at 16 streams twice, and at 64.
# Carry .gl, .bin3 (stt-cli.gz; gpu_batch.gz, gpu_mimi.gz: `cargo test
# --release -p stt-cli --test gpu_batch --test gpu_mimi --no-run`'s binaries,
# built where CARGO_TARGET_TMPDIR is /root/.cache/stt-web-target/tmp;
# cycle.wav as in session 12).
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
mkdir -p /tmp/r /root/.cache/stt-web-target/tmp
for t in gpu_batch gpu_mimi; do
  gunzip -c .bin3/$t.gz > /tmp/$t; chmod +x /tmp/$t
  STT_REQUIRE_GPU=1 timeout 150 /tmp/$t --test-threads 2 > /tmp/r/test_$t.txt 2>&1; echo "$t rc $?"
  grep -E "^test |test result|panicked|differs" /tmp/r/test_$t.txt | head -20
  tar czf $OUT/results.tgz -C /tmp/r .
done
gunzip -c .bin3/stt-cli.gz > /tmp/stt; chmod +x /tmp/stt
/tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
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
T="/tmp/stt transcribe --model /tmp/full --lm model-q4k.gguf"
for mimi in gpu cpu; do
  for p in 1 1b 2 16; do
    timeout 120 $T --mimi $mimi --parallel ${p%b} /tmp/head.wav > /tmp/r/head_${mimi}_p$p.txt 2>/dev/null
  done
  python3 - $mimi <<'PY'
import sys
m = sys.argv[1]
t = {p: open('/tmp/r/head_%s_p%s.txt' % (m, p)).read() for p in ['1', '1b', '2', '16']}
print('head, Mimi on the', m, {p: len(v.split()) for p, v in t.items()},
      'one stream twice identical:', t['1'] == t['1b'],
      '2 streams = 1:', t['2'] == t['1'], '16 streams = 1:', t['16'] == t['1'])
PY
  tar czf $OUT/results.tgz -C /tmp/r .
done
X="--no-gpu-features --matvec-lanes 8"
for p in 1 1b 16; do
  timeout 120 $T --mimi gpu $X --parallel ${p%b} /tmp/head.wav > /tmp/r/head_plain_p$p.txt 2>/dev/null
done
python3 -c "
t = {p: open('/tmp/r/head_plain_p%s.txt' % p).read() for p in ['1', '1b', '16']}
print('head, no subgroups, 8 lanes:', {p: len(v.split()) for p, v in t.items()}, 'alone twice identical:', t['1'] == t['1b'], '16 streams = 1:', t['16'] == t['1'])"
tar czf $OUT/results.tgz -C /tmp/r .
for run in p16a p16b p64; do
  timeout 60 $T --mimi gpu -v --parallel ${run:1:2} /tmp/hour.wav > /tmp/r/hour_$run.txt 2> /tmp/r/hour_$run.err; grep -E "words" /tmp/r/hour_$run.err
  tar czf $OUT/results.tgz -C /tmp/r .
done
cmp /tmp/r/hour_p16a.txt /tmp/r/hour_p16b.txt && echo "hour at 16 streams twice identical"
cmp /tmp/r/hour_p16a.txt /tmp/r/hour_p64.txt && echo "hour at 16 and 64 streams identical"
