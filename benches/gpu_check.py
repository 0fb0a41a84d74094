"""The GPU round trip against transformers' warpers on the GPU (information, not a gate).

For each B x V: logits live on the device (as a model's last-position logits would);
tradeoff's path copies them to the CPU as float32, runs the fused ``tradeoff.sample`` and sends the
tokens back; transformers' path runs its warpers + softmax + ``torch.multinomial`` on the device.
Prints a markdown table of medians (ms) for ``top_p=0.9`` and ancestral sampling. Finishes in a
few minutes on one GPU.

    python benches/gpu_check.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from timing import device_seconds
from transformers.generation.logits_process import TopPLogitsWarper

import tradeoff

SHAPES = [(1, 32000), (32, 32000), (32, 128256), (8, 151936)]


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    return statistics.median(device_seconds(fn, device) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device, e.g. cuda or cuda:1")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"# {name}, torch {torch.__version__}, tradeoff {tradeoff.__version__}, {args.dtype}")
    print("| B x V | adaptor | transformers on device ms | tradeoff round trip ms | ratio |")
    print("|---|---|---|---|---|")
    for rows, vocab in SHAPES:
        gen = torch.Generator(device=device).manual_seed(0)
        logits = (torch.randn(rows, vocab, generator=gen, device=device) * 3).to(dtype)
        ids = torch.zeros((rows, 1), dtype=torch.long, device=device)
        streams = np.arange(rows, dtype=np.uint64)
        for spec, warpers in [("top_p=0.9", [TopPLogitsWarper(0.9)]), ("ancestral", [])]:
            chain = tradeoff.AdaptorChain.parse(spec)

            def hf(warpers=warpers, logits=logits, ids=ids):
                scores = logits.float()
                for w in warpers:
                    scores = w(ids, scores)
                return torch.multinomial(torch.softmax(scores, dim=-1), 1)

            def ours(chain=chain, logits=logits, streams=streams):
                cpu = logits.to("cpu", torch.float32)
                draw = tradeoff.sample(cpu, chain, seed=0, streams=streams, steps=0)
                return draw.tokens.to(device, non_blocking=True)

            t_hf = timed(hf, device, args.repeats)
            t_ours = timed(ours, device, args.repeats)
            print(
                f"| {rows} x {vocab} | {spec} | {t_hf * 1e3:.2f} | {t_ours * 1e3:.2f} "
                f"| {t_hf / t_ours:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
