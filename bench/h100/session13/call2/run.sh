# Session 13, second device call: the committed engine (attention 128 keys
# per workgroup; matvec_batch two rows per invocation on short grids)
# against the previous one (bb90953's engine) and PyTorch moshi LMGen in the
# same call, f32 and f16 KV, then the hour with 16 parallel streams. Carry
# .gl, .bin (stt-cli.gz: previous; stt-cli-new.gz: this commit; cycle.wav),
# .whl.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli.gz > /tmp/stt-old; chmod +x /tmp/stt-old
gunzip -c .bin/stt-cli-new.gz > /tmp/stt; chmod +x /tmp/stt
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
mkdir -p /tmp/r
summary() {
  python3 - $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[1].split('/')[-1], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), 'mem %.2f GB' % (e['gpu_cache_and_activation_bytes'] / 1e9), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
  tar czf $OUT/results.tgz -C /tmp/r .
}
lm() {  # name, binary, extra args
  name=$1; bin=$2; shift 2
  timeout 90 $bin bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,16,64 --profile-steps 10 "$@" > /tmp/r/$name.json 2> /tmp/r/$name.err
  summary /tmp/r/$name.json
}
lm new_f32 /tmp/stt
lm old_f32 /tmp/stt-old
lm new_f16 /tmp/stt --kv-f16
lm old_f16 /tmp/stt-old --kv-f16
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
timeout 200 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,16,64 > /tmp/r/lm_pt.json 2> /tmp/r/lm_pt.err
python3 -c "
import json; d=json.load(open('/tmp/r/lm_pt.json'))
for b, e in d['batches'].items(): print('pytorch B=%s %.3f ms' % (b, e['ms_per_step_median']))"
tar czf $OUT/results.tgz -C /tmp/r .
lm new_f32_again /tmp/stt
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
for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  /usr/bin/time -v timeout 60 /tmp/stt transcribe --model /tmp/full --lm model-q4k.gguf -v --mimi gpu --parallel 16 $flag /tmp/hour.wav > /tmp/r/hour_$kv.txt 2> /tmp/r/hour_$kv.err; grep -E "all inputs|Maximum resident|Elapsed" /tmp/r/hour_$kv.err
  tar czf $OUT/results.tgz -C /tmp/r .
done
