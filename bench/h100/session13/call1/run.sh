# Session 13, first device call: attention key chunk (64/128/256 keys per
# workgroup) and matvec_batch rows per invocation (4/2/1/auto) against the
# committed engine, B = 1/8/16/64, then the hour at 16 and 64 parallel
# streams; the lone stream merging attention on its own (as batches do). Carry .gl, .bin (stt-cli.gz: committed engine; stt-cli-exp.gz:
# exp.diff; cycle.wav).
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli.gz > /tmp/stt; chmod +x /tmp/stt
gunzip -c .bin/stt-cli-exp.gz > /tmp/stt-exp; chmod +x /tmp/stt-exp
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
mkdir -p /tmp/r
summary() {
  python3 - $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[1].split('/')[-1], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
  tar czf $OUT/results.tgz -C /tmp/r .
}
lm() {  # name, binary, env..., extra args
  name=$1; bin=$2; shift 2
  env "$@" timeout 90 $bin bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,16,64 --profile-steps 10 $KV > /tmp/r/$name.json 2> /tmp/r/$name.err
  summary /tmp/r/$name.json
}
KV= lm base /tmp/stt
KV= lm exp /tmp/stt-exp
KV= lm c128 /tmp/stt-exp STT_EXP_CHUNK=128
KV= lm c256 /tmp/stt-exp STT_EXP_CHUNK=256
KV= lm r1 /tmp/stt-exp STT_EXP_RPI=1
KV= lm r2 /tmp/stt-exp STT_EXP_RPI=2
KV= lm rauto /tmp/stt-exp STT_EXP_RPI=auto
KV= lm merge /tmp/stt-exp STT_EXP_MERGE=1
KV=--kv-f16 lm base_f16 /tmp/stt
KV=--kv-f16 lm c256rauto_f16 /tmp/stt-exp STT_EXP_CHUNK=256 STT_EXP_RPI=auto
python3 - <<'PY'
import wave
src = wave.open('.bin/cycle.wav')
frames = src.readframes(src.getnframes())
out = wave.open('/tmp/hour.wav', 'wb')
out.setparams(src.getparams())
need = 3600 * src.getframerate() * src.getsampwidth()
data = frames * (need // len(frames) + 1)
out.writeframes(data[:need])
out.close()
PY
for p in 16 64; do
  /usr/bin/time -v timeout 60 /tmp/stt transcribe --model /tmp/full --lm model-q4k.gguf -v --mimi gpu --parallel $p /tmp/hour.wav > /tmp/r/hour_p$p.txt 2> /tmp/r/hour_p$p.err; grep -E "all inputs|Maximum resident|Elapsed" /tmp/r/hour_p$p.err
  tar czf $OUT/results.tgz -C /tmp/r .
done
