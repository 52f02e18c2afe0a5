# NOT RUN: session 11 had too little device time left to start a machine.
# Ready for the next session's first call: on main, `git apply
# bench/h100/session11/next/exp.diff bench/h100/session11/call1/variants.patch`
# (experiment switches, never to commit as such: `pipelines::shader()` takes
# STT_EXP=unchecked | nobounds | noloop | nodiv and creates the module with
# `create_shader_module_trusted`; the variants are session 10's mvc, mv4,
# att2, mvbc), build stt-cli, gzip it to .bin/stt-cli-exp.gz, run this with
# carry .gl and .bin.
# wgpu's shader runtime checks on (default) and off in one binary: naga
# bounds checks (or the driver's robust buffer access), a counter in every
# loop (force_loop_bounding), zero-divisor guards around every integer / and
# % (int_div_checks). Rename the folder after the device it ran on.
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
