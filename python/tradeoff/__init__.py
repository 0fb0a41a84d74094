"""tradeoff: measure, explain and choose the probability-quality trade-off of aligned LMs.

The adaptor engine (this package's foundation) lives in Rust and is exposed here:

>>> import numpy as np, tradeoff
>>> chain = tradeoff.AdaptorChain.parse("temperature=0.7,top_p=0.9")
>>> logits = np.log(np.array([0.5, 0.25, 0.125, 0.125], dtype=np.float32))
>>> kept = np.isfinite(chain.apply(logits))
>>> draw = tradeoff.sample(logits, chain, seed=0, streams=[0], steps=0)

Corpus statistics (correlations, bootstrap, the IMH correction, resampled corpora) are in
:mod:`tradeoff.stats`.

Nothing here imports torch or transformers; torch tensors are accepted when torch is installed.
"""

from . import stats
from ._core import __version__, get_num_threads, set_num_threads
from .adaptors import (
    ADAPTOR_CLASSES,
    Adaptor,
    AdaptorChain,
    Epsilon,
    Eta,
    LogitsProcessor,
    MinP,
    SampleResult,
    ScoreResult,
    Temperature,
    TopA,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    sample,
    score_tokens,
)

__all__ = [
    "ADAPTOR_CLASSES",
    "Adaptor",
    "AdaptorChain",
    "Epsilon",
    "Eta",
    "LogitsProcessor",
    "MinP",
    "SampleResult",
    "ScoreResult",
    "Temperature",
    "TopA",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "__version__",
    "get_num_threads",
    "sample",
    "score_tokens",
    "set_num_threads",
    "stats",
]
