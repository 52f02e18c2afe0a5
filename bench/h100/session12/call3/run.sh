# Ran on 372bbc5.
# Session 12, third call (same warm machine as call 2, whose lm_*.json did
# not come back: over the file count): the committed engine f32 and f16 KV
# and PyTorch again, in one tar.
gunzip -c .bin/stt-cli.gz > /tmp/stt; chmod +x /tmp/stt
ls /tmp/full > /dev/null || /tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
mkdir -p /tmp/c3
timeout 100 /tmp/stt bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,64 --profile-steps 10 > /tmp/c3/lm_f32.json 2> /tmp/c3/lm_f32.err
timeout 100 /tmp/stt bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams 1,8,64 --profile-steps 10 --kv-f16 > /tmp/c3/lm_f16.json 2> /tmp/c3/lm_f16.err
PYTHONPATH=/tmp/site timeout 150 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > /tmp/c3/lm_pt.json 2> /tmp/c3/lm_pt.err
tar -C /tmp/c3 -czf $OUT/call3.tar.gz .
python3 -c "
import json
for f in ['lm_f32','lm_f16']:
    d=json.load(open('/tmp/c3/%s.json'%f)); print(f, [(e['streams'], round(e['ms_per_step_median'],3)) for e in d['gpu_batched']])
d=json.load(open('/tmp/c3/lm_pt.json')); print('pt', [(b, round(v['ms_per_step_median'],3)) for b,v in d['batches'].items()])"
