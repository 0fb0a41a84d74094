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
    "ADAPTOR_NAMES",
    "__version__",
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
