"""A small adaptor example: how sampling adaptors trade probability for diversity.

A synthetic "language model" (2,000 random next-token distributions over a 5,000-token vocabulary,
peaked like real ones) is sampled under several adaptor chains. For each chain the table shows the
average support size and the average log-probability of the drawn tokens under the raw model:
truncating adaptors and low temperatures buy likelihood, high temperatures spend it.
"""

from __future__ import annotations

import time

import numpy as np

import tradeoff

SPECS = [
    "ancestral",
    "temperature=0.5",
    "temperature=1.5",
    "top_k=50",
    "top_p=0.9",
    "typical=0.9",
    "min_p=0.05",
    "eta=0.0009",
    "temperature=1.5,top_p=0.95",
]


def synthetic_logits(rows: int = 2000, vocab: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(rows, vocab)).astype(np.float32)
    spikes = rng.integers(0, vocab, size=(rows, 8))
    x[np.arange(rows)[:, None], spikes] += rng.uniform(4.0, 9.0, size=(rows, 8)).astype(np.float32)
    return x


def main() -> None:
    logits = synthetic_logits()
    streams = np.arange(len(logits), dtype=np.uint64)
    print(f"tradeoff {tradeoff.__version__}: {logits.shape[0]} rows x {logits.shape[1]} tokens")
    print(f"{'adaptor chain':<30} {'support':>9} {'mean log p(token)':>18} {'ms':>7}")
    for spec in SPECS:
        chain = tradeoff.AdaptorChain.parse(spec)
        start = time.perf_counter()
        draw = tradeoff.sample(logits, chain, seed=0, streams=streams, steps=0)
        ms = 1000 * (time.perf_counter() - start)
        print(
            f"{str(chain):<30} {draw.support_size.mean():>9.1f} "
            f"{draw.logp_base.mean():>18.3f} {ms:>7.1f}"
        )


if __name__ == "__main__":
    main()
