"""The automaton world as real transformers models, so that generation, scoring, IMH and analysis
run on it unchanged: a causal LM for an automaton (p or pi), a sequence classifier for the
additive reward, and a word-level ``tokenizers`` tokenizer. The classes live in this package and
are registered with the Auto classes on import (no remote code); models are saved with
``save_pretrained`` and loaded with ``from_pretrained``.

Token ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, then symbol k is ``s{k}`` = id 3 + k. A string's
tokens after BOS drive the automaton from its start state; the KV cache holds each row's current
state (as a one-number "key" per position), so generation with a cache works as for any model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutput

from .automaton import Automaton, AutomatonSettings, exact_expectations, make_prior, tilt

__all__ = [
    "AutomatonConfig",
    "AutomatonForCausalLM",
    "AutomatonForSequenceClassification",
    "make_tokenizer",
    "save_world",
]

PAD, BOS, EOS, FIRST_SYMBOL = 0, 1, 2, 3


class AutomatonConfig(PretrainedConfig):
    model_type = "tradeoff-automaton"

    def __init__(
        self,
        log_probs: list[list[float]] | None = None,
        next_state: list[list[int]] | None = None,
        start: int = 0,
        reward: list[list[float]] | None = None,
        **kwargs: Any,
    ) -> None:
        self.log_probs = log_probs or [[0.0]]
        self.next_state = next_state or [[0]]
        self.start = start
        self.reward = reward
        n_symbols = len(self.log_probs[0]) - 1
        kwargs.setdefault("vocab_size", FIRST_SYMBOL + n_symbols)
        kwargs.setdefault("num_hidden_layers", 1)
        kwargs.setdefault("num_labels", 1)
        kwargs.update(pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
        super().__init__(**kwargs)


def _vocab_table(log_probs: np.ndarray) -> torch.Tensor:
    """[states + 1, vocab] next-token log-probabilities by token id; the extra last state is
    'ended' (after EOS), which puts all mass on EOS."""
    n_states, width = log_probs.shape
    table = torch.full((n_states + 1, FIRST_SYMBOL + width - 1), float("-inf"), dtype=torch.float64)
    table[:n_states, EOS] = torch.from_numpy(log_probs[:, -1])
    table[:n_states, FIRST_SYMBOL:] = torch.from_numpy(log_probs[:, :-1])
    table[n_states, EOS] = 0.0
    return table


class _AutomatonBase(PreTrainedModel):
    config_class = AutomatonConfig
    base_model_prefix = "automaton"
    _supports_cache_class = True

    def __init__(self, config: AutomatonConfig) -> None:
        super().__init__(config)
        log_probs = np.asarray(config.log_probs, dtype=np.float64)
        next_state = np.asarray(config.next_state, dtype=np.int64)
        n_states = log_probs.shape[0]
        # After a symbol: next_state; after EOS or in the 'ended' state: 'ended'.
        transitions = torch.full((n_states + 1, config.vocab_size), n_states, dtype=torch.long)
        transitions[:n_states, FIRST_SYMBOL:] = torch.from_numpy(next_state)
        transitions[:n_states, PAD] = torch.arange(n_states)  # padding keeps the state
        transitions[:n_states, BOS] = config.start
        self.register_buffer("transitions", transitions)
        self.table = torch.nn.Parameter(_vocab_table(log_probs).float(), requires_grad=False)
        self.post_init()

    def _init_weights(self, module: Any) -> None:
        pass  # the tables are the model

    def states(self, input_ids: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        """The state before each position's token is read ([B, T]), and the state after the
        last one ([B]); rows start at ``previous`` (or the start state)."""
        batch, length = input_ids.shape
        current = (
            previous.long()
            if previous is not None
            else torch.full((batch,), self.config.start, dtype=torch.long, device=input_ids.device)
        )
        before = torch.empty((batch, length), dtype=torch.long, device=input_ids.device)
        for t in range(length):
            before[:, t] = current
            current = self.transitions[current, input_ids[:, t]]
        return before, current


def _cached_state(cache: Any) -> torch.Tensor | None:
    if cache is None or cache.get_seq_length() == 0:
        return None
    layer = cache.layers[0] if hasattr(cache, "layers") else None
    keys = layer.keys if layer is not None else cache.key_cache[0]
    return keys[:, 0, -1, 0]


class AutomatonForCausalLM(_AutomatonBase, GenerationMixin):
    """Next-token logits of the automaton: position t's logits are the distribution after
    reading tokens 0..t."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        past_key_values: Any = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        cache = cache if cache is not None else past_key_values
        ids = input_ids
        if attention_mask is not None:
            ids = torch.where(attention_mask[:, -ids.shape[1] :].bool(), ids, PAD)
        before, last = self.states(ids, _cached_state(cache))
        after = torch.cat([before[:, 1:], last[:, None]], dim=1)  # the state after each token
        if cache is not None:
            key = after[:, None, :, None].to(self.table.dtype)
            cache.update(key, key, 0)
        logits = self.table[after]
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        # transformers 5 names the output field `cache`; 4.x named it `past_key_values`.
        field = (
            "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
        )
        return CausalLMOutputWithPast(logits=logits, **{field: cache})


class AutomatonForSequenceClassification(_AutomatonBase):
    """The additive reward r(y) = sum of w(state, token) along the tokens after BOS, EOS
    included; an input without EOS is scored as if it ended there (its EOS weight added)."""

    def __init__(self, config: AutomatonConfig) -> None:
        super().__init__(config)
        reward = np.asarray(config.reward, dtype=np.float64)
        n_states = reward.shape[0]
        table = torch.zeros((n_states + 1, config.vocab_size), dtype=torch.float64)
        table[:n_states, EOS] = torch.from_numpy(reward[:, -1])
        table[:n_states, FIRST_SYMBOL:] = torch.from_numpy(reward[:, :-1])
        self.reward_table = torch.nn.Parameter(table, requires_grad=False)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> SequenceClassifierOutput:
        ids = input_ids
        if attention_mask is not None:
            ids = torch.where(attention_mask.bool(), ids, PAD)
        before, last = self.states(ids, None)
        total = self.reward_table[before, ids].sum(dim=1)
        ended = (ids == EOS).any(dim=1)
        total = total + torch.where(ended, 0.0, self.reward_table[last, EOS].to(total.dtype))
        return SequenceClassifierOutput(logits=total[:, None].float())


AutoConfig.register(AutomatonConfig.model_type, AutomatonConfig, exist_ok=True)
AutoModelForCausalLM.register(AutomatonConfig, AutomatonForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(
    AutomatonConfig, AutomatonForSequenceClassification, exist_ok=True
)


def make_tokenizer(n_symbols: int) -> PreTrainedTokenizerFast:
    """Word-level: symbols are the words ``s0 .. s{n-1}``, separated by spaces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {"<pad>": PAD, "<bos>": BOS, "<eos>": EOS}
    vocab.update({f"s{k}": FIRST_SYMBOL + k for k in range(n_symbols)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def _config(model: Automaton, reward: np.ndarray | None, architecture: str) -> AutomatonConfig:
    config = AutomatonConfig(
        log_probs=model.log_probs.tolist(),
        next_state=model.next_state.tolist(),
        start=model.start,
        reward=None if reward is None else reward.tolist(),
    )
    config.architectures = [architecture]
    return config


def save_world(directory: str | Path, settings: AutomatonSettings) -> dict[str, Path]:
    """Writes ``prior/``, ``aligned/`` (causal LMs), ``reward/`` (sequence classifier), each with
    the tokenizer, and ``world.json`` (settings, log Z); returns their paths."""
    directory = Path(directory)
    prior, reward = make_prior(settings)
    aligned, log_z = tilt(prior, reward, settings.beta)
    tokenizer = make_tokenizer(settings.n_symbols)
    paths = {name: directory / name for name in ("prior", "aligned", "reward")}
    for name, model, cls, table in (
        ("prior", prior, AutomatonForCausalLM, None),
        ("aligned", aligned, AutomatonForCausalLM, None),
        ("reward", prior, AutomatonForSequenceClassification, reward),
    ):
        hf = cls(_config(model, table, cls.__name__))
        hf.save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    info = {"settings": settings.__dict__, "log_z": log_z}
    (directory / "world.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    paths["world"] = directory / "world.json"
    return paths


def load_world(directory: str | Path) -> tuple[AutomatonSettings, Automaton, np.ndarray]:
    """The settings, prior automaton and reward table of a saved world."""
    info = json.loads((Path(directory) / "world.json").read_text(encoding="utf-8"))
    settings = AutomatonSettings(**info["settings"])
    prior, reward = make_prior(settings)
    return settings, prior, reward


def exact_for(directory: str | Path, chain: str) -> dict[str, Any]:
    """Exact expectations for a configuration of a saved world."""
    settings, prior, reward = load_world(directory)
    return exact_expectations(prior, reward, settings.beta, chain)
