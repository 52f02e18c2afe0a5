# Session 10, call 1: the previous binary (164da4c) and this one (loads issued
# ahead in matvec, matvec_batch and attention), f32 and f16 KV, B = 1, 8, 64,
# full-size synthetic Q4_K, with per-kind GPU times; PyTorch LMGen bf16 in the
# same call. The "new" binary was built from the uncommitted tree that
# became 92dcb34, so its JSON's "commit" reads 164da4c too; it alone has
# "dependent_dispatch_us".
set -x
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
for b in base new; do gunzip -c .bin/stt-cli-$b.gz > /tmp/stt-$b; chmod +x /tmp/stt-$b; done
/tmp/stt-new synth --preset full --seed 1 --gguf q4_k --out /tmp/full
for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  for b in base new; do
    timeout 150 /tmp/stt-$b bench --model /tmp/full --lm model-q4k.gguf --steps 200 --streams 1,8,64 --profile-steps 20 $flag > $OUT/${b}_$kv.json 2> /dev/null
  done
done
PYTHONUNBUFFERED=1 timeout 200 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > $OUT/pytorch.json 2> $OUT/pytorch.err
tail -c 600 $OUT/pytorch.err; cat $OUT/pytorch.json
