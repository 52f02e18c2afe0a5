for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
gunzip -c .bin/stt-cli.gz > /tmp/stt-cli; chmod +x /tmp/stt-cli
/tmp/stt-cli synth --preset tiny --seed 1 --lm-dtype f32 --out /tmp/tiny
timeout 560 /tmp/stt-cli soak --model /tmp/tiny --lm model.safetensors --audio .bin/bria.mp3 --audio .bin/loona.mp3 --audio .bin/sample_fr_hibiki_crepes.mp3 --minutes 15 --compare-minutes 10 > $OUT/soak15.json 2> $OUT/soak15.err
echo rc $?; tail -3 $OUT/soak15.err; python3 -c "
import json; r=json.load(open('$OUT/soak15.json'))
print({k:v for k,v in r.items() if k!='per_minute'})
print([(m['audio_s'], m['rss_bytes']>>20, m['words_in_last_minute']) for m in r['per_minute']])"
