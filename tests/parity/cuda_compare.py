#!/usr/bin/env python3
"""Upstream PyTorch moshi's LM on a CUDA device (f32 or bf16) against a CPU
golden made by reference.py, on the golden's own Mimi codes (so only the LM
is compared). Prints one JSON line: tokens identical over how many steps,
the first difference, the largest difference of the golden's top-k logits
and of the end-of-turn probabilities while the token streams agree.

    python3 cuda_compare.py --model-dir DIR --golden goldens/full_crepes --dtype f32|bf16

TF32 is switched off for f32 (it would round every product's inputs to 10
mantissa bits). LMGen's CUDA graphs stay on (upstream's default).
"""

import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.numpy  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import load_upstream_lm  # noqa: E402

from moshi.models.lm import LMGen  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--golden", type=Path, required=True, help="golden path without extension")
    ap.add_argument("--dtype", choices=["f32", "bf16"], required=True)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16

    g = safetensors.numpy.load_file(str(args.golden) + ".safetensors")
    codes, ref_tokens = g["codes"], g["tokens"]
    ref_idx, ref_val, ref_vad = g["logits_topk_idx"], g["logits_topk"], g["vad"]
    lm, _ = load_upstream_lm(args.model_dir, args.device, dtype)
    captured = []
    gen = LMGen(
        lm, use_sampling=False, temp=0.0, temp_text=0.0,
        on_text_logits_hook=lambda logits: captured.append(logits[0, 0, 0].float().cpu().clone()),
    )
    tokens, max_logit, max_vad, first_diff = [], 0.0, 0.0, None
    with gen.streaming(1):
        for step in range(len(ref_tokens)):
            frame = codes[max(step - 1, 0)]
            inp = torch.from_numpy(frame.astype(np.int64))[None, :, None].to(args.device)
            tok, heads = gen.step_with_extra_heads(inp)
            token = int(tok[0, 0, 0])
            logits = captured.pop()
            tokens.append(token)
            if first_diff is None:
                d = (logits[torch.from_numpy(ref_idx[step].astype(np.int64))] - torch.from_numpy(ref_val[step])).abs().max()
                max_logit = max(max_logit, float(d))
                if heads:
                    v = torch.stack([h[0, 0].float().cpu() for h in heads]).numpy()
                    max_vad = max(max_vad, float(np.abs(v - ref_vad[step]).max()))
                if token != int(ref_tokens[step]):
                    first_diff = step
    same = sum(int(a == b) for a, b in zip(tokens, ref_tokens.tolist()))
    print(json.dumps({
        "golden": args.golden.name, "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "dtype": args.dtype, "steps": len(ref_tokens), "tokens_identical": same, "first_difference": first_diff,
        "max_topk_logit_diff_until_then": max_logit, "max_vad_diff_until_then": max_vad,
    }))


if __name__ == "__main__":
    main()
