#!/usr/bin/env python3
"""Upstream PyTorch moshi's LM step (LMGen, CUDA graphs on, upstream's
default) at batch sizes B: the comparison `stt-cli bench` needs in the same
run (issue #16). Prints one JSON object: ms per step (median, p90) per B,
streams served in real time (B · 80 ms / step) and peak GPU memory.

    python3 bench/lm_pytorch.py --model-dir DIR [--batch 1,8,64] [--dtype bf16]
        [--warmup 750] [--steps 100]

DIR: a model in upstream names (`stt-cli synth --preset full` writes one;
its `model.safetensors` is the LM). Steps come after `--warmup` steps so
attention reads a full KV cache, as in `stt-cli bench`. The audio codes
are seeded random tokens (the step's cost does not depend on them).
"""

import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parity"))
from reference import load_upstream_lm  # noqa: E402

from moshi.models.lm import LMGen  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--batch", default="1,8,64")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="bf16")
    ap.add_argument("--warmup", type=int, default=None, help="default: the config's context")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16
    lm, cfg = load_upstream_lm(args.model_dir, "cuda", dtype)
    warmup = cfg["context"] if args.warmup is None else args.warmup
    out = {
        "bench": "lm_pytorch", "torch": torch.__version__, "device": torch.cuda.get_device_name(0),
        "dtype": args.dtype, "warmup_steps": warmup, "steps": args.steps, "batches": {},
    }
    gen_codes = torch.Generator(device="cuda").manual_seed(0)
    for b in [int(x) for x in args.batch.split(",")]:
        torch.cuda.reset_peak_memory_stats()
        gen = LMGen(lm, use_sampling=False, temp=0.0, temp_text=0.0)
        times = []
        with gen.streaming(b):
            for i in range(warmup + args.steps):
                codes = torch.randint(0, cfg["card"], (b, cfg["n_q"], 1), device="cuda", generator=gen_codes)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                gen.step(codes)
                torch.cuda.synchronize()
                if i >= warmup:
                    times.append(1e3 * (time.perf_counter() - t0))
        times.sort()
        median = times[len(times) // 2]
        out["batches"][str(b)] = {
            "ms_per_step_median": median,
            "ms_per_step_p90": times[int(0.9 * (len(times) - 1))],
            "streams_in_real_time": b * 80.0 / median,
            "peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(),
        }
        print(json.dumps({b: out["batches"][str(b)]}), file=sys.stderr, flush=True)
        del gen
        torch.cuda.empty_cache()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
