"""Type stubs for the Rust extension ``tradeoff._core`` (kept by hand; checked by mypy.stubtest)."""

from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Chain",
    "apply",
    "sample",
    "score_tokens",
    "set_num_threads",
    "get_num_threads",
    "simd_level",
    "ADAPTOR_NAMES",
    "__version__",
    "pearson",
    "spearman",
    "kendall",
    "linregress",
    "bootstrap_ci",
    "grouped_rank_replicates",
    "imh",
    "cramers_v",
    "effective_sample_size",
    "resample_means",
    "best_of_n_weights",
    "segment_sum",
    "segment_mean",
    "segment_count",
    "typicality",
    "simpson",
    "tradeoff_line",
    "implied_beta",
]

__version__: str
ADAPTOR_NAMES: list[str]

@final
class Chain:
    def __new__(cls, adaptors: list[tuple[str, float, int]]) -> Chain: ...
    def __len__(self) -> int: ...

def apply(
    logits: npt.NDArray[np.float32], chains: list[Chain], log_probs: bool
) -> npt.NDArray[np.float32]: ...
def sample(
    logits: npt.NDArray[np.float32],
    chains: list[Chain],
    seed: int,
    streams: npt.NDArray[np.uint64],
    steps: npt.NDArray[np.uint64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]
]: ...
def score_tokens(
    logits: npt.NDArray[np.float32], targets: npt.NDArray[np.int64], chains: list[Chain]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]]: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str:
    """The instruction set the kernels use: "avx512", "avx2" or "portable" (capped by the
    environment variable ``TRADEOFF_SIMD``)."""

# --- statistics (tradeoff.stats wraps these) ---

_F64 = npt.NDArray[np.float64]
_U32 = npt.NDArray[np.uint32]
_U64 = npt.NDArray[np.uint64]

def pearson(x: _F64, y: _F64) -> tuple[float, float]: ...
def spearman(x: _F64, y: _F64) -> tuple[float, float]: ...
def kendall(x: _F64, y: _F64) -> tuple[float, float]: ...
def linregress(x: _F64, y: _F64) -> tuple[float, float, float, float, float, float]: ...
def bootstrap_ci(
    x: _F64,
    y: _F64 | None,
    statistic: str,
    n_resamples: int,
    level: float,
    seed: int,
    method: str,
) -> tuple[float, float, float, float, _F64]: ...
def grouped_rank_replicates(
    x: _F64, y: _F64, groups: _U32, group_counts: _U32, n_groups: int
) -> tuple[_F64, _F64]: ...
def imh(
    log_target: _F64, log_proposal: _F64, n_steps: int, seed: int
) -> tuple[_U32, float, float, float]: ...
def cramers_v(a: _U32, b: _U32) -> float: ...
def effective_sample_size(trace: _F64) -> float | None: ...
def resample_means(
    values: npt.NDArray[np.float64],
    n_corpora: int,
    corpus_size: int,
    seed: int,
    indices: _U32 | None,
    weights: _F64 | None,
) -> npt.NDArray[np.float64]: ...
def best_of_n_weights(rewards: _F64, offsets: _U64, n: int) -> _F64: ...
def segment_sum(values: _F64, offsets: _U64) -> _F64: ...
def segment_mean(values: _F64, offsets: _U64) -> _F64: ...
def segment_count(offsets: _U64, n_values: int) -> _U64: ...
def typicality(
    mean_log_probs: _F64, entropy: float, tolerance: float
) -> tuple[_F64, _F64, npt.NDArray[np.bool_]]: ...
def simpson(
    x: _F64, y: _F64, groups: _U32, method: str
) -> tuple[tuple[float, float], _F64, _F64, _U64, _F64, _F64, tuple[float, float], bool]: ...
def tradeoff_line(
    mean_log_prior: _F64, mean_reward: _F64, n_resamples: int, level: float, seed: int
) -> tuple[
    tuple[float, float, float, float, float, float], tuple[float, float, float, float, _F64]
]: ...
def implied_beta(
    log_aligned: _F64, log_prior: _F64, reward: _F64, groups: _U32 | None
) -> tuple[float, float, float, float, float, int]: ...
