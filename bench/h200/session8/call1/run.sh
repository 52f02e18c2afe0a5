set -x
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
gunzip -c .bin/stt-cli.gz > /tmp/stt-cli; chmod +x /tmp/stt-cli
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv
date; time /tmp/stt-cli synth --preset en-full --seed 3 --gguf q4_k --out /tmp/en; date
/tmp/stt-cli bench --model /tmp/en --lm model-q4k.gguf --profile-steps 20 --streams 1,8,64 > $OUT/en_bench.json 2> $OUT/en_bench.err
PYTHONUNBUFFERED=1 timeout 200 python3 bench/lm_pytorch.py --model-dir /tmp/en --batch 1,8,64 > $OUT/en_pytorch.json 2> $OUT/en_pytorch.err
/tmp/stt-cli transcribe --model /tmp/en --lm model-q4k.gguf --backend gpu -v --format json .bin/bria.mp3 > $OUT/en_bria.json 2> $OUT/en_bria.err
/tmp/stt-cli transcribe --model /tmp/en --lm model-q4k.gguf --backend gpu --parallel 4 -v --format json .bin/bria.mp3 > $OUT/en_bria_p4.json 2> $OUT/en_bria_p4.err
tail -5 $OUT/*.err; head -c 600 $OUT/en_pytorch.json
