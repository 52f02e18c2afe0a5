# Written in session 10 (which could start no device machine after its
# first call) and run in session 11's first device call, which came up on an
# NVIDIA H100 80GB HBM3, not an H200: the JSON beside this is that run.
# `git apply bench/h100/session11/call1/variants.patch` on 4dc80e0, build
# stt-cli, gzip it to .bin/stt-cli-exp.gz, the unpatched build to
# .bin/stt-cli-base.gz, then run this with carry .gl and .bin. The patch is
# an experiment switch (STT_EXP), never to be committed as such.
#
# Kernel variants of one experiment binary (chosen by STT_EXP) against the
# committed kernels (base), full-size synthetic
# Q4_K, f32 KV, GPU µs per kind. Short on device time: B = 1 first, then
# B = 64, each result written as soon as it exists.
#   mvc:  matvec.wgsl's block loop with a constant trip count (CACHE / 32 / LANES)
#   mv4:  matvec.wgsl's block loop taking 4 blocks per iteration, their
#         loads issued before any is summed (same order of sums)
#   att2: attention.wgsl's K and V loops with constant trip counts
#         (HEAD_DIM / 16, CHUNK · HEAD_DIM / 1024), V index clamped to
#         count − 1 with weight 0 past it
#   mvbc: matvec_batch.wgsl's block loop with a constant trip count
# On lavapipe (session 10) the parity tests tiny_quantized_match_dequantized_cpu,
# mid_f32_matches_cpu and f16_kv_cache_stays_within_its_tolerance pass with
# STT_EXP=att,mv4, att2,mv2 and mvc (att: V guarded by j < count; mv2: two
# blocks per iteration; both also in the patch).
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
for b in base exp; do gunzip -c .bin/stt-cli-$b.gz > /tmp/stt-$b; chmod +x /tmp/stt-$b; done
/tmp/stt-base synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
run() { # name binary exp streams
  STT_EXP=$3 timeout 60 /tmp/stt-$2 bench --model /tmp/full --lm model-q4k.gguf --steps 200 --streams $4 --profile-steps 20 > $OUT/$1.json 2> /tmp/$1.err || tail -3 /tmp/$1.err
  python3 - $OUT/$1.json $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[2], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
}
run base1 base "" 1
run att2 exp att2 1
run mvc exp mvc 1
run mv4 exp mv4 1
# The best matvec variant of the two with att2 (by the B = 1 step).
pick=$(python3 -c "
import json, os
ms = lambda n: json.load(open(os.environ['OUT'] + '/' + n + '.json'))['gpu']['ms_per_step_median']
print(min(['mvc', 'mv4'], key=ms))" 2>/dev/null || echo mvc)
run best1 exp att2,$pick 1
run base64 base "" 64
run best64 exp att2,mvbc 64
