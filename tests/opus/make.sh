#!/usr/bin/env bash
# Opus test clips and their libopus reference decodes (issue #17.8).
#
# Clips: 3 s of the shared fixtures, encoded by ffmpeg's libopus in the
# containers people send (Ogg .opus voice notes, WebM from browsers and
# conferencing tools, Matroska, MP4 with a video track). Reference: the
# same file decoded by libopus (`-c:a libopus`, not ffmpeg's own decoder)
# to 48 kHz float, then written as 16-bit FLAC at the original channel
# count. cli/tests/opus.rs decodes both through stt-model's pipeline and
# compares. Needs ffmpeg built with libopus, libx264 and libvpx (Debian's).
set -euo pipefail
cd "$(dirname "$0")"
A=../../../shared/fixtures/audio
q=(-hide_banner -loglevel error -y)
ffmpeg "${q[@]}" -ss 2 -t 3 -i $A/bria.mp3 -ac 1 -c:a libopus -b:a 24k -application voip voice.opus
ffmpeg "${q[@]}" -ss 5 -t 3 -i $A/sample_fr_hibiki_crepes.mp3 -ac 2 -c:a libopus -b:a 96k stereo.opus
ffmpeg "${q[@]}" -ss 10 -t 3 -i $A/bria.mp3 -ac 1 -c:a libopus -b:a 12k -application voip low.webm
ffmpeg "${q[@]}" -ss 20 -t 3 -i $A/sample_fr_hibiki_crepes.mp3 -ac 1 -c:a libopus -b:a 48k -frame_duration 60 frames60.mkv
ffmpeg "${q[@]}" -f lavfi -i color=c=black:s=32x32:r=5 -ss 15 -t 3 -i $A/bria.mp3 -t 3 -shortest \
    -c:v libx264 -c:a libopus -b:a 32k video.mp4
ffmpeg "${q[@]}" -f lavfi -i color=c=black:s=32x32:r=5 -ss 25 -t 3 -i $A/bria.mp3 -t 3 -shortest \
    -c:v libvpx-vp9 -c:a libopus -b:a 32k video.webm
for f in voice.opus stereo.opus low.webm frames60.mkv video.mp4 video.webm; do
    ffmpeg "${q[@]}" -c:a libopus -i "$f" -map 0:a -ar 48000 -sample_fmt s16 -c:a flac "$f.libopus.flac"
done
ls -l
