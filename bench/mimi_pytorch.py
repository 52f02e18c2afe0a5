"""Upstream PyTorch Mimi (moshi 0.2.13) encoding speed, printed as JSON: the
comparison `stt-cli bench --mimi-frames` needs in the same run.

For each thread count: the whole signal in one `encode` call on the CPU
(`torch.set_num_threads`), and frame by frame in streaming mode; with CUDA,
the same two on the GPU, the whole signal also with TF32 off (PyTorch lets
cuDNN use TF32 tensor cores for convs by default). Weights: any Mimi safetensors in upstream names
(a synthetic model's is real-size).

    python3 bench/mimi_pytorch.py --mimi DIR/mimi-pytorch-e351c8d8@125.safetensors \
        --audio-f32 PCM.f32 [--threads 1,2,4,8,16] [--frames 100] [--n-q 32]

PCM.f32: 24 kHz mono little-endian f32 (`stt-cli decode-pcm`).
"""

import argparse
import json
import time

import numpy as np
import torch
from moshi.models import loaders


def timed(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mimi", required=True)
    ap.add_argument("--audio-f32", required=True)
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--n-q", type=int, default=32)
    args = ap.parse_args()
    pcm = np.fromfile(args.audio_f32, dtype="<f4")[: args.frames * 1920]
    frames = len(pcm) // 1920
    pcm = pcm[: frames * 1920]
    out = {"bench": "mimi_pytorch", "torch": torch.__version__, "frames": frames, "cpu": {}}
    mimi = loaders.get_mimi(args.mimi, device="cpu", num_codebooks=args.n_q)
    mimi.eval()
    x = torch.from_numpy(pcm).reshape(1, 1, -1)
    with torch.no_grad():
        for n in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(n)
            whole = timed(lambda: mimi.encode(x))

            def stream():
                with mimi.streaming(1):
                    for i in range(frames):
                        mimi.encode(x[:, :, i * 1920 : (i + 1) * 1920])

            framewise = timed(stream, repeats=1)
            out["cpu"][str(n)] = {
                "whole_signal_ms_per_frame": 1e3 * whole / frames,
                "frame_by_frame_ms_per_frame": 1e3 * framewise / frames,
            }
            print(json.dumps({n: out["cpu"][str(n)]}), flush=True)
        if torch.cuda.is_available():
            mimi = mimi.to("cuda")
            xc = x.to("cuda")
            mimi.encode(xc)
            # PyTorch's defaults let cuDNN run convs on TF32 tensor cores
            # (10-bit mantissas); ours are exact f32, so time both.
            tf32_default = torch.backends.cudnn.allow_tf32
            whole = timed(lambda: mimi.encode(xc))
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            mimi.encode(xc)
            whole_f32 = timed(lambda: mimi.encode(xc))

            def stream_cuda():
                with mimi.streaming(1):
                    for i in range(frames):
                        mimi.encode(xc[:, :, i * 1920 : (i + 1) * 1920])

            stream_cuda()
            framewise = timed(stream_cuda, repeats=1)
            out["cuda"] = {
                "device": torch.cuda.get_device_name(),
                "cudnn_allow_tf32_default": tf32_default,
                "whole_signal_ms_per_frame": 1e3 * whole / frames,
                "whole_signal_ms_per_frame_tf32_off": 1e3 * whole_f32 / frames,
                "frame_by_frame_ms_per_frame": 1e3 * framewise / frames,
            }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
