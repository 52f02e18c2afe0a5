# Ran on 372bbc5 (the last device seconds of session 12): Q4_0 at B = 1,
# full KV cache, f32 KV.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli.gz > /tmp/stt; chmod +x /tmp/stt
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt synth --preset full --seed 1 --gguf q4_0 --out /tmp/full > /dev/null
ls /tmp/full
timeout 40 /tmp/stt bench --model /tmp/full --lm $(ls /tmp/full | grep -i "q4.*gguf" | head -1) --steps 100 > $OUT/lm_q40.json 2> $OUT/lm_q40.err
python3 -c "
import json; d=json.load(open('$OUT/lm_q40.json'))['gpu']; print('q4_0 B=1', d['ms_per_step_median'], 'ms')"
# Then, same warm machine (call 5): PyTorch at B = 1 (lm_pt.json) and the
# Q4_0 bench again (lm_q40_again.json):
#   pip install --target /tmp/site .whl/*.whl; PYTHONPATH=/tmp/site python3 bench/lm_pytorch.py --model-dir /tmp/full --batch 1
#   /tmp/stt bench --model /tmp/full --lm model-q40.gguf --steps 100
