# Ran on 9948872 with exp.diff (session 11's prepared runtime-checks switch + session11/call1/variants.patch + s8/zx; this script replaces session 11's unrun next/run.sh).
# Session 12, first device call: session 11's next/ (wgpu runtime checks on
# and off) plus two batch-kernel layouts: s8 (matvec_batch with eight
# streams per workgroup: bench's exp diff, kernels/matvec_batch8.wgsl) and
# zx (stream groups along the grid's x, rows along z, so the workgroups
# reading one weight tile run together and share it in L2).
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli-exp.gz > /tmp/stt; chmod +x /tmp/stt
nvidia-smi --query-gpu=name --format=csv,noheader
/tmp/stt synth --preset full --seed 1 --gguf q4_k --out /tmp/full > /dev/null
run() { # name exp streams
  STT_EXP=$2 timeout 60 /tmp/stt bench --model /tmp/full --lm model-q4k.gguf --steps 100 --streams $3 --profile-steps 10 > $OUT/$1.json 2> /tmp/$1.err || tail -3 /tmp/$1.err
  python3 - $OUT/$1.json $1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d['gpu_batched']:
    p = e['profile']['us_per_step_by_kind']
    print(sys.argv[2], 'B=%d %.3f ms' % (e['streams'], e['ms_per_step_median']), ' '.join('%s=%.0f' % (k.split('.')[-2] if '.' in k else k, v) for k, v in p.items()), flush=True)
PY
}
run checked "" 1
run unchecked unchecked 1
run noloop noloop 1
run nobounds nobounds 1
run unchecked_mv4 unchecked,mv4 1
run unchecked_mvc_att2 unchecked,mvc,att2 1
run checked64 "" 64
run unchecked64 unchecked 64
run s8_64 s8 64
run zx_64 zx 64
run s8zx_64 s8,zx 64
run s8zx_unchecked_64 s8,zx,unchecked 64
run s8zx_8 s8,zx 8
run checked8 "" 8
