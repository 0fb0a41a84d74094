"""tradeoff's adaptors against transformers' warpers, on the same inputs and thread count.

For each adaptor: the median time of transformers' warper on a torch tensor and of
``AdaptorChain.apply`` on the same float32 array; for sampling: transformers' top-p warper +
softmax + ``torch.multinomial`` against the fused ``tradeoff.sample``. The floor is one read pass
over the array (``numpy.sum``). Prints a markdown table (medians, ratios); see benches/RESULTS.md.

    python benches/adaptors_vs_hf.py                     # B x V = 32 x 128256, flat and peaked
    python benches/adaptors_vs_hf.py --shapes 1x32000 32x32000 --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import torch
from timing import median_seconds
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

import tradeoff

ADAPTORS = [
    ("temperature=0.7", lambda: TemperatureLogitsWarper(0.7)),
    ("top_k=50", lambda: TopKLogitsWarper(50)),
    ("top_p=0.9", lambda: TopPLogitsWarper(0.9)),
    ("min_p=0.05", lambda: MinPLogitsWarper(0.05)),
    ("typical=0.9", lambda: TypicalLogitsWarper(0.9)),
    ("epsilon=0.0003", lambda: EpsilonLogitsWarper(0.0003)),
    ("eta=0.0009", lambda: EtaLogitsWarper(0.0009)),
    ("top_a=0.2", None),
    ("top_nsigma=1.0", None),
]


def make_logits(rows: int, vocab: int, kind: str, seed: int = 0) -> np.ndarray:
    """flat: N(0, 3^2). peaked: N(0, 1) plus five spikes of +8..+16 per row (LM-like)."""
    rng = np.random.default_rng(seed)
    if kind == "flat":
        return (rng.standard_normal((rows, vocab), dtype=np.float32) * 3).astype(np.float32)
    x = rng.standard_normal((rows, vocab), dtype=np.float32)
    spikes = rng.integers(0, vocab, size=(rows, 5))
    x[np.arange(rows)[:, None], spikes] += rng.uniform(8, 16, size=(rows, 5)).astype(np.float32)
    return x


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def run(shape: str, kind: str, repeats: int, hf_repeats: int) -> list[str]:
    rows, vocab = (int(v) for v in shape.split("x"))
    x = make_logits(rows, vocab, kind)
    xt = torch.from_numpy(x)
    ids = torch.zeros((rows, 1), dtype=torch.long)
    floor = median_seconds(lambda: np.sum(x), repeats)
    lines = [f"| {shape} {kind} | read pass (numpy.sum) | – | {fmt_ms(floor)} | – | 1.0 |"]
    with torch.no_grad():
        for spec, warper in ADAPTORS:
            chain = tradeoff.AdaptorChain.parse(spec)
            ours = median_seconds(lambda c=chain: c.apply(x), repeats)
            if warper is None:
                hf_text, ratio = "–", "–"
            else:
                w = warper()
                hf = median_seconds(lambda w=w: w(ids, xt), hf_repeats)
                hf_text, ratio = fmt_ms(hf), f"{hf / ours:.1f}x"
            lines.append(
                f"| {shape} {kind} | apply {spec} | {hf_text} | {fmt_ms(ours)} | {ratio} "
                f"| {ours / floor:.1f} |"
            )
        for spec, warpers in [
            ("top_p=0.9", [TopPLogitsWarper(0.9)]),
            ("temperature=0.7,top_k=50", [TemperatureLogitsWarper(0.7), TopKLogitsWarper(50)]),
            ("ancestral", []),
        ]:
            chain = tradeoff.AdaptorChain.parse(spec)
            streams = np.arange(rows, dtype=np.uint64)

            def hf_sample(warpers=warpers):
                scores = xt
                for w in warpers:
                    scores = w(ids, scores)
                return torch.multinomial(torch.softmax(scores, dim=-1), 1)

            hf = median_seconds(hf_sample, hf_repeats)
            ours = median_seconds(
                lambda c=chain, s=streams: tradeoff.sample(x, c, seed=0, streams=s, steps=0),
                repeats,
            )
            lines.append(
                f"| {shape} {kind} | sample {spec} | {fmt_ms(hf)} | {fmt_ms(ours)} "
                f"| {hf / ours:.1f}x | {ours / floor:.1f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["32x128256"], help="BxV shapes")
    parser.add_argument(
        "--kinds", nargs="+", default=["flat", "peaked"], choices=["flat", "peaked"]
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of tradeoff and floor")
    parser.add_argument("--hf-repeats", type=int, default=3, help="timed runs of transformers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tradeoff.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"threads={args.threads}, torch {torch.__version__}, tradeoff {tradeoff.__version__}"
    )
    print("| input | operation | transformers ms | tradeoff ms | speed-up | tradeoff / floor |")
    print("|---|---|---|---|---|---|")
    for shape in args.shapes:
        for kind in args.kinds:
            for line in run(shape, kind, args.repeats, args.hf_repeats):
                print(line, flush=True)


if __name__ == "__main__":
    main()
