# Session 9, call 1: f16 against f32 KV cache, B = 1, 8, 64, and PyTorch
# LMGen at the same batch sizes, on the full-size synthetic model (Q4_K).
set -x
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
gunzip -c .bin/stt-cli.gz > /tmp/stt-cli; chmod +x /tmp/stt-cli
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv
date; time /tmp/stt-cli synth --preset full --seed 1 --gguf q4_k --out /tmp/full; date
for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  timeout 150 /tmp/stt-cli bench --model /tmp/full --lm model-q4k.gguf --steps 200 --profile-steps 5 --streams 1,8,64 $flag > $OUT/bench_$kv.json 2> $OUT/bench_$kv.err
done
PYTHONUNBUFFERED=1 timeout 150 python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1,8,64 > $OUT/pytorch.json 2> $OUT/pytorch.err
for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  timeout 60 /tmp/stt-cli transcribe --model /tmp/full --lm model-q4k.gguf --backend gpu $flag --format json .bin/bria.mp3 > $OUT/bria_$kv.json 2> $OUT/bria_$kv.err
done
cmp $OUT/bria_f32.json $OUT/bria_f16.json && echo "bria: f16 KV words identical to f32"
tail -3 $OUT/*.err
