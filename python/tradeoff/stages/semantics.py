"""Two semantics for the paper's experiments, kept apart: ``corrected`` (what the paper means: a
working IMH correction, EOS scored, the prompt's context, the right reward sign) and ``authors``
(what the published code did, difference by difference; ../shared/PAPER.md, "What the authors'
code actually does"). Each difference is one named field, so that every stage asks the same
object and every difference can be pinned by a test that fails under the other semantics.

Where each difference acts: the analysis (``imh_accepts_every_proposal``, ``drop_duplicates``,
``drop_empty_text``, ``pooled_ancestral_only_at_t1``). The differences of generation and scoring
(the hidden top-k, the length cap that counts the prompt, the prior on the text alone, the clamp
of pi and q, EOS not scored, the reward's text and the DPO figure's sign) are listed here for the
stages that will read them; until they do, the configuration does not offer ``authors``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..adaptors import AdaptorChain
from ..errors import ConfigError

__all__ = ["AUTHORS", "CORRECTED", "SEMANTICS", "Semantics", "semantics"]


@dataclass(frozen=True)
class Semantics:
    """What a run measures (see the module)."""

    name: str
    # The authors' acceptance test, `(min(1, ratio) > u,)`, is a one-element tuple: always
    # true, so the "corrected" chain is draws with replacement from q's own strings.
    imh_accepts_every_proposal: bool
    # Their cleaning: `drop_duplicates()` over the rows, and strings with empty text dropped
    # (a string that is only EOS is a string of q under the corrected semantics).
    drop_duplicates: bool
    drop_empty_text: bool
    # The published pooled correlations: 31 configurations, the strict ancestral run only at
    # temperature 1.
    pooled_ancestral_only_at_t1: bool
    # Generation: transformers' default top_k=50 before top-p, typical and eta (not when
    # scoring log q); `max_length` counts the prompt.
    hidden_top_k: int | None
    length_counts_prompt: bool


CORRECTED = Semantics(
    name="corrected",
    imh_accepts_every_proposal=False,
    drop_duplicates=False,
    drop_empty_text=False,
    pooled_ancestral_only_at_t1=False,
    hidden_top_k=None,
    length_counts_prompt=False,
)
AUTHORS = Semantics(
    name="authors",
    imh_accepts_every_proposal=True,
    drop_duplicates=True,
    drop_empty_text=True,
    pooled_ancestral_only_at_t1=True,
    hidden_top_k=50,
    length_counts_prompt=True,
)
SEMANTICS = {s.name: s for s in (CORRECTED, AUTHORS)}


def semantics(name: str | Semantics) -> Semantics:
    if isinstance(name, Semantics):
        return name
    if name not in SEMANTICS:
        raise ConfigError(f"`semantics` must be one of {', '.join(SEMANTICS)}; got {name!r}")
    return SEMANTICS[name]


def in_pooled_correlation(config: str, chosen: Semantics) -> bool:
    """Whether a configuration enters the pooled correlations (the authors pooled the strict
    ancestral run only at temperature 1)."""
    if not chosen.pooled_ancestral_only_at_t1:
        return True
    family, temperature = AdaptorChain.parse(config).split_temperature()
    return len(family) > 0 or temperature == 1.0


def generation_chain(config: str, chosen: Semantics) -> AdaptorChain:
    """The chain a string is drawn with: the configuration's, with the authors' hidden top-k in
    transformers' warper order (temperature, top-k, then the rest) when the configuration has
    top-p, typical or eta and no top-k of its own."""
    chain = AdaptorChain.parse(config)
    if chosen.hidden_top_k is None:
        return chain
    names = {a.name for a in chain}
    if "top_k" in names or not names & {"top_p", "typical", "eta"}:
        return chain
    from ..adaptors import TopK

    temperatures = [a for a in chain if a.name == "temperature"]
    rest = [a for a in chain if a.name != "temperature"]
    return AdaptorChain([*temperatures, TopK(chosen.hidden_top_k), *rest])
