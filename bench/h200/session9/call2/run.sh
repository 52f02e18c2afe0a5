# Session 9, call 2: attention with tree reductions (after) against the
# serial max/sum loops (before, = call 1's binary), f32 and f16 KV cache,
# B = 1, 8, 64, full-size synthetic model (Q4_K), one call.
set -x
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
for b in before after; do
  src=.bin/stt-cli.gz; [ $b = before ] && src=.bin/stt-cli-before.gz
  gunzip -c $src > /tmp/stt-cli-$b; chmod +x /tmp/stt-cli-$b
done
/tmp/stt-cli-after synth --preset full --seed 1 --gguf q4_k --out /tmp/full
for b in before after; do for kv in f32 f16; do
  flag=; [ $kv = f16 ] && flag=--kv-f16
  timeout 120 /tmp/stt-cli-$b bench --model /tmp/full --lm model-q4k.gguf --steps 100 --profile-steps 3 --streams 1,8,64 $flag > $OUT/bench_${b}_$kv.json 2> $OUT/bench_${b}_$kv.err
done; done
for b in before after; do
  timeout 60 /tmp/stt-cli-$b transcribe --model /tmp/full --lm model-q4k.gguf --backend gpu --format json .bin/bria.mp3 > $OUT/bria_$b.json 2> $OUT/bria_$b.err
done
cmp $OUT/bria_before.json $OUT/bria_after.json && echo "bria: words identical before and after"
