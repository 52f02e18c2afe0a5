# Session 9, call 3: the final kernels (f32 and f16 KV cache) and PyTorch
# LMGen bf16 at B = 1, 8, 64 in one call, full-size synthetic model (Q4_K).
set -x
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
gunzip -c .bin/stt-cli.gz > /tmp/stt-cli; chmod +x /tmp/stt-cli
/tmp/stt-cli synth --preset full --seed 1 --gguf q4_k --out /tmp/full
for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  timeout 120 /tmp/stt-cli bench --model /tmp/full --lm model-q4k.gguf --steps 200 --streams 1,8,64 $flag > $OUT/bench_$kv.json 2> /dev/null
done
PYTHONUNBUFFERED=1 timeout 200 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > $OUT/pytorch.json 2> $OUT/pytorch.err
tail -c 1500 $OUT/pytorch.err; cat $OUT/pytorch.json
