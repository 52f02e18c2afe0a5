# Ran on 372bbc5; the experiment binary: exp.diff on 372bbc5.
# Session 12, second device call (experiments at the end): the committed engine (wgpu's loop counters
# off) against PyTorch in the same call, B = 1 / 8 / 64 with f32 and f16 KV,
# and the hour end to end (bench/README.md "session 12"). Carry .gl, .bin
# (stt-cli.gz, cycle.wav: bria, loona and the French clip with 2 s silences
# at 24 kHz, made with ffmpeg + sox), .whl.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli.gz > /tmp/stt; chmod +x /tmp/stt
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
summary() {
  python3 - $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[1].split('/')[-1], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
}
timeout 120 /tmp/stt bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,64 --profile-steps 10 > $OUT/lm_f32.json 2> $OUT/lm_f32.err; summary $OUT/lm_f32.json
timeout 120 /tmp/stt bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,64 --profile-steps 10 --kv-f16 > $OUT/lm_f16.json 2> $OUT/lm_f16.err; summary $OUT/lm_f16.json
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
timeout 200 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > $OUT/lm_pt.json 2> $OUT/lm_pt.err; python3 -c "
import json; d=json.load(open('$OUT/lm_pt.json')); print('pytorch', json.dumps(d)[:600])"
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
for p in 16; do
  /usr/bin/time -v timeout 100 /tmp/stt transcribe --model /tmp/full --lm model-q4k.gguf -v --mimi gpu --parallel $p /tmp/hour.wav > $OUT/hour_p$p.txt 2> $OUT/hour_p$p.err; grep -E "all inputs|Maximum resident|Elapsed" $OUT/hour_p$p.err
done
# Experiments (.bin/stt-cli-exp.gz: exp.diff on this commit): the
# single-stream matvec's input prologue skipped (timing only: the results
# are wrong), and each lane count for every projection.
gunzip -c .bin/stt-cli-exp.gz > /tmp/stt-exp; chmod +x /tmp/stt-exp
for e in base nopro lanes32; do
  STT_EXP=$e timeout 60 /tmp/stt-exp bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8 --profile-steps 10 > $OUT/exp_$e.json 2> $OUT/exp_$e.err; summary $OUT/exp_$e.json
done
