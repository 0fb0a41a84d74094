"""Two semantics for the paper's experiments, kept apart: ``corrected`` (what the paper means: a
working IMH correction, EOS scored, the prompt's context, the right reward sign) and ``authors``
(what the published code did, difference by difference; ../shared/PAPER.md, "What the authors'
code actually does"). Each difference is one named field, so that every stage asks the same
object and every difference can be pinned by a test that fails under the other semantics. A run
records its semantics in the manifest when it is generated; score and analyze follow it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..adaptors import AdaptorChain
from ..errors import ConfigError

__all__ = [
    "AUTHORS",
    "CORRECTED",
    "SEMANTICS",
    "Semantics",
    "authors_prompt",
    "authors_text",
    "generation_chain",
    "in_pooled_correlation",
    "semantics",
]


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
    # Strings cut at the length cap are samples of a truncated q, kept by the authors; the
    # corrected analysis keeps only strings that ended.
    drop_unfinished: bool
    # The published pooled correlations: 31 configurations, the strict ancestral run only at
    # temperature 1.
    pooled_ancestral_only_at_t1: bool
    # Generation: transformers' default top_k=50 before top-p, typical and eta (not when
    # scoring log q); `max_length` counts the prompt.
    hidden_top_k: int | None
    length_counts_prompt: bool
    # Scoring: texts stripped of surrounding whitespace (their pipeline's `.strip()`); the prior
    # on the text alone with BOS, at most `scored_tokens - 1` tokens, no clamp; pi and q on BOS +
    # prompt + text (`scored_tokens` in all), the prompt's positions found by tokenising it
    # alone, each token's NLL clamped to [0, 25]; EOS scored nowhere; the prompt re-stripped so
    # the text reads `Human: X  Assistant: Y` (two spaces).
    authors_scoring: bool
    scored_tokens: int | None
    scored_nll_clamp: float | None
    # The DPO figure's reward: log p - log pi, the negative of beta (log pi - log p).
    implicit_reward_sign: int


CORRECTED = Semantics(
    name="corrected",
    imh_accepts_every_proposal=False,
    drop_duplicates=False,
    drop_empty_text=False,
    drop_unfinished=True,
    pooled_ancestral_only_at_t1=False,
    hidden_top_k=None,
    length_counts_prompt=False,
    authors_scoring=False,
    scored_tokens=None,
    scored_nll_clamp=None,
    implicit_reward_sign=1,
)
AUTHORS = Semantics(
    name="authors",
    imh_accepts_every_proposal=True,
    drop_duplicates=True,
    drop_empty_text=True,
    drop_unfinished=False,
    pooled_ancestral_only_at_t1=True,
    hidden_top_k=50,
    length_counts_prompt=True,
    authors_scoring=True,
    scored_tokens=256,
    scored_nll_clamp=25.0,
    implicit_reward_sign=-1,
)
SEMANTICS = {s.name: s for s in (CORRECTED, AUTHORS)}


def semantics(name: str | Semantics) -> Semantics:
    """The semantics of a name (``corrected`` or ``authors``)."""
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


def authors_prompt(context: str) -> str:
    """The conditioning prompt of the authors' scoring, from the templated prompt (their
    ``transform_prompt``): ``Human: X Assistant:`` re-stripped to ``Human: X  Assistant:`` (the
    Llama models); ``[INST] Human: X Assistant:[/INST]`` kept (the Janus models)."""
    context = context.strip()
    if context.startswith("[INST]"):
        inner = context[len("[INST]") : -len("[/INST]")] if context.endswith("[/INST]") else context
        inner = inner.strip()
        if "Human:" in inner and "Assistant" in inner:
            inner = inner[len("Human: ") : -len("Assistant:")]
        return f"[INST] Human: {inner.strip()} Assistant:[/INST]"
    if "Human:" in context and "Assistant" in context:
        return f"Human: {context[len('Human: ') : -len('Assistant:')]} Assistant:"
    return context


def authors_text(context: str, text: str) -> str:
    """The scored text of the authors' code (``transform_prompt_and_text`` with the prompt
    included): ``Human: X  Assistant: Y`` (two spaces) or ``[INST] Human: X Assistant:[/INST]Y``,
    with the generated text stripped."""
    context, text = context.strip(), text.strip()
    if context.startswith("[INST] Human: "):
        return (
            f"[INST] Human: {context[len('[INST] Human: ') : -len(' Assistant:[/INST]')]} "
            f"Assistant:[/INST]{text}"
        )
    if "Human:" in context and "Assistant" in context:
        return f"Human: {context[len('Human: ') : -len('Assistant:')]} Assistant: {text}"
    return f"{context}{text}"
