# Session 11, device call 2: the committed kernels (base, = 4dc80e0's)
# against one experiment binary (exp) holding attention_subgroup.wgsl, the
# Q4 nibbles made f32 without a conversion instruction, and the matvec
# input index per block; STT_EXP=oldatt puts attention.wgsl back,
# STT_EXP=i2f the conversion, STT_EXP=merge1 merges the attention splits in
# their own dispatch (attention_merge.wgsl, as batches do) instead of in
# every out_proj workgroup (uncommitted switches: exp.diff beside this, on b8d41c4).
# Full-size synthetic Q4_K, f32 KV unless named, most telling runs first
# (device time was short); PyTorch LMGen bf16 last.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
for b in base exp; do gunzip -c .bin/stt-cli-$b.gz > /tmp/stt-$b; chmod +x /tmp/stt-$b; done
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt-base synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
run() { # name binary exp streams [extra]
  STT_EXP=$3 timeout 120 /tmp/stt-$2 bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams $4 --profile-steps 20 $5 > $OUT/$1.json 2> /tmp/$1.err || tail -3 /tmp/$1.err
  python3 - $OUT/$1.json $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[2], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
}
run base base "" 1,8,64
run new exp "" 1,8,64
run oldatt exp oldatt 1,64
run i2f exp i2f 1,64
run merge1 exp merge1 1
run new_f16 exp "" 1,8,64 --kv-f16
PYTHONUNBUFFERED=1 timeout 150 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > $OUT/pytorch.json 2> /tmp/pytorch.err
tail -c 300 /tmp/pytorch.err; cat $OUT/pytorch.json
