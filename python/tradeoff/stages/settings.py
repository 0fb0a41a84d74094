"""The settings of a run: one dataclass per configuration section, holding the only defaults.

``tradeoff-eval run CONFIG.toml`` reads these sections from TOML; ``generate`` and ``score`` on
the command line build the same sections from their options (whose defaults and help are read
from here); the stage functions take them as their inputs. Each field carries its accepted types
and its help text; :meth:`Section.check` checks every value that can be checked without files or
models, with errors that name the key (``[generate] 'batch_size'``) or the option
(``--batch-size``).

They live under ``stages`` (not ``app``) because the stages take them as inputs, and nothing
below ``app`` may import it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..adaptors import AdaptorChain
from ..errors import ConfigError, check_seed

__all__ = [
    "AnalysisSettings",
    "GenerateSection",
    "ModelsSection",
    "PromptsSection",
    "RunSection",
    "SECTIONS",
    "ScoreSection",
    "Section",
    "WorldSection",
    "grid",
    "toml_label",
]

Label = Callable[[str], str]


def toml_label(section: str) -> Label:
    """How a TOML key is named in errors: ``[generate] 'batch_size'`` (top level: ``'seed'``)."""
    return lambda key: f"[{section}] {key!r}" if section else repr(key)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    types: tuple[type, ...],
    help: str,
    factory: Callable[[], Any] | None = None,
    optional: bool = False,
) -> Any:
    """A field with its accepted TOML/Python types and its help text (shared with the CLI)."""
    metadata = {"types": types, "help": help, "optional": optional}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


class Section:
    """A configuration section: typed fields with defaults, checked by :meth:`check`."""

    name: ClassVar[str] = ""

    @classmethod
    def help(cls, key: str) -> str:
        return cls._field(key).metadata["help"]

    @classmethod
    def default(cls, key: str) -> Any:
        f = cls._field(key)
        return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default

    @classmethod
    def _field(cls, key: str) -> dataclasses.Field:
        return next(f for f in dataclasses.fields(cls) if f.name == key)  # type: ignore[arg-type]

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_values(cls, values: dict[str, Any], label: Label | None = None) -> Any:
        """The section from raw values (as TOML gives them): unknown keys and wrong types are
        ConfigErrors naming the key; then :meth:`check`."""
        label = label or toml_label(cls.name)
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for key, value in values.items():
            if key not in known:
                where = f"[{cls.name}] " if cls.name else ""
                raise ConfigError(f"unknown key {where}{key!r}; known: {', '.join(sorted(known))}")
            meta = known[key].metadata
            if value is None and meta["optional"]:
                continue
            types = meta["types"]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                names = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{label(key)} must be {names}, got {value!r}")
        section = cls(**values)
        section.check(label)
        return section

    def check(self, label: Label) -> None:
        """Checks the values' ranges (types are checked by :meth:`from_values`)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _positive(label: Label, key: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{label(key)} must be >= 1, got {value!r}")


def _number(
    label: Label, key: str, value: Any, *, positive: bool = False, unit: bool = False
) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{label(key)} must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{label(key)} must be > 0, got {value!r}")
    if unit and not 0 < value < 1:
        raise ConfigError(f"{label(key)} must be in (0, 1), got {value!r}")


def _seed(label: Label, key: str, value: Any) -> None:
    try:
        check_seed(value)
    except (TypeError, ConfigError):
        raise ConfigError(f"{label(key)} must be an integer in [0, 2**64), got {value!r}") from None


def _strings(label: Label, key: str, values: Any, *, non_empty: bool = True) -> None:
    for value in values:
        if not isinstance(value, str) or (non_empty and not value):
            raise ConfigError(f"{label(key)} must hold non-empty strings, got {value!r}")


@dataclass
class RunSection(Section):
    """The top level of a configuration file."""

    name: ClassVar[str] = ""
    out: str | None = setting(
        None,
        types=(str,),
        optional=True,
        help="the run's output directory (the run directory is OUT/run)",
    )
    seed: int = setting(0, types=(int,), help="the run seed: every random draw derives from it")
    semantics: str = setting(
        "corrected",
        types=(str,),
        help="corrected (what the paper means: a working IMH step, EOS scored, the prompt's "
        "context, DPO's reward sign) or authors (what the published code did, difference by "
        "difference; see tradeoff.stages.semantics)",
    )

    def check(self, label: Label) -> None:
        _seed(label, "seed", self.seed)
        if self.semantics not in ("corrected", "authors"):
            raise ConfigError(f"{label('semantics')} must be corrected or authors; got "
                              f"{self.semantics!r}")  # fmt: skip


@dataclass
class WorldSection(Section):
    """An exact automaton world in place of [models] and [prompts]: a named world (``preset``),
    whose seed and shape the other keys override."""

    name: ClassVar[str] = "world"
    kind: str = setting("automaton", types=(str,), help="the world: automaton")
    preset: str = setting(
        "reversal",
        types=(str,),
        help="reversal (a reward that rises with the prior's log-probability string by string, "
        "while the corpora trade one for the other: the paper's reversal) or independent (a "
        "reward drawn independently of the prior: both correlations negative)",
    )
    seed: int | None = setting(
        None, types=(int,), optional=True, help="the seed the world is drawn from (the preset's)"
    )
    min_eos: float | None = setting(
        None, types=(float, int), optional=True, help="least EOS probability per state"
    )
    beta: float | None = setting(
        None, types=(float, int), optional=True, help="the tilt: pi = p exp(r / beta) / Z"
    )
    n_states: int | None = setting(
        None, types=(int,), optional=True, help="states of the prior automaton"
    )
    n_symbols: int | None = setting(
        None, types=(int,), optional=True, help="symbols (tokens other than EOS)"
    )

    def check(self, label: Label) -> None:
        from ..worlds.automaton import PRESETS

        if self.kind != "automaton":
            raise ConfigError(f"{label('kind')} must be 'automaton', got {self.kind!r}")
        if self.preset not in PRESETS:
            raise ConfigError(f"{label('preset')} must be one of {', '.join(PRESETS)}; got "
                              f"{self.preset!r}")  # fmt: skip
        if self.seed is not None:
            _seed(label, "seed", self.seed)
        _number(label, "min_eos", self.min_eos, unit=True)
        _number(label, "beta", self.beta, positive=True)
        _positive(label, "n_states", self.n_states)
        _positive(label, "n_symbols", self.n_symbols)


DTYPE_CHOICES = ("float32", "float16", "bfloat16")
_DEVICE = re.compile(r"cpu|cuda|cuda:\d+|auto")


@dataclass
class ModelsSection(Section):
    """The models: aligned (generates), prior and reward (score)."""

    name: ClassVar[str] = "models"
    aligned: str | None = setting(
        None, types=(str,), optional=True, help="aligned model: local directory or hub id"
    )
    prior: str | None = setting(
        None,
        types=(str,),
        optional=True,
        help="prior model (before alignment): directory or hub id",
    )
    reward: str | None = setting(
        None,
        types=(str,),
        optional=True,
        help="reward: a model directory or hub id (sequence classification or safe-rlhf score "
        "head), implicit:BETA (beta * (log pi - log p)), or python:module:function (imports and "
        "runs that module's code)",
    )
    dtype: str = setting("float32", types=(str,), help="float32, float16 or bfloat16")
    device: str = setting("cpu", types=(str,), help="cpu, cuda, cuda:N or auto (CUDA if any)")
    trust_remote_code: bool = setting(
        False, types=(bool,), help="allow models whose code lives in their repository"
    )

    def check(self, label: Label) -> None:
        if self.dtype not in DTYPE_CHOICES:
            raise ConfigError(
                f"{label('dtype')} must be one of {', '.join(DTYPE_CHOICES)}; got {self.dtype!r}"
            )
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise ConfigError(
                f"{label('device')} must be cpu, cuda, cuda:N or auto; got {self.device!r}"
            )
        if self.reward is not None:
            from ..models.rewards import parse_reward

            try:
                parse_reward(self.reward)
            except ConfigError as error:
                raise ConfigError(f"{label('reward')}: {error}") from None


@dataclass
class PromptsSection(Section):
    """Where the prompts come from and how the aligned model sees them."""

    name: ClassVar[str] = "prompts"
    source: str | None = setting(
        None,
        types=(str,),
        optional=True,
        help="prompt file: .jsonl (objects with 'prompt' and optional 'id'), .parquet, text (one "
        "prompt per line), or hh-rlhf:PATH (the paper's selection from a local copy of "
        "HH-RLHF's test split)",
    )
    max_prompts: int | None = setting(
        None, types=(int,), optional=True, help="use the first N prompts"
    )
    template: str = setting(
        "{prompt}",
        types=(str,),
        help='context for the aligned model, e.g. "Human: {prompt} Assistant:", or "chat" for '
        "the tokenizer's chat template (default: the prompt itself)",
    )

    def check(self, label: Label) -> None:
        from ..generation.templates import check_template

        _positive(label, "max_prompts", self.max_prompts)
        try:
            check_template(self.template)
        except ConfigError as error:
            raise ConfigError(f"{label('template')}: {error}") from None


def grid(families: list[str], temperatures: list[float]) -> list[str]:
    """Every family at every temperature, temperature first; 1.0 and ancestral left implicit."""
    configs = []
    for family in families:
        for t in temperatures:
            parts = ([] if float(t) == 1.0 else [f"temperature={t}"]) + (
                [] if family == "ancestral" else [family]
            )
            configs.append(",".join(parts) or "ancestral")
    return configs


OVERLAP: dict[str, bool | None] = {"auto": None, "on": True, "off": False}


@dataclass
class GenerateSection(Section):
    """Sampling: the adaptor grid, how many strings, how they end."""

    name: ClassVar[str] = "generate"
    adaptors: list[str] | None = setting(
        None,
        types=(list,),
        optional=True,
        help="adaptor configurations (chain specs); without them, families x temperatures "
        "(by default: ancestral)",
    )
    families: list[str] | None = setting(
        None, types=(list,), optional=True, help="adaptor families, crossed with temperatures"
    )
    temperatures: list[float] | None = setting(
        None, types=(list,), optional=True, help="temperatures, crossed with families"
    )
    samples_per_prompt: int = setting(1, types=(int,), help="strings per prompt and config")
    max_new_tokens: int = setting(256, types=(int,), help="most tokens per string")
    batch_size: int = setting(
        16,
        types=(int,),
        help="strings in flight: the slots of the continuous batch (a finished string's slot "
        "takes the next one)",
    )
    shard_size: int | None = setting(
        None,
        types=(int,),
        optional=True,
        help="strings per shard, the unit of resume and of torchrun's split (default: 4 x "
        "batch_size); larger shards keep the slots fuller, at the cost of more work redone "
        "after a kill",
    )
    max_batch_tokens: int | None = setting(
        None,
        types=(int,),
        optional=True,
        help="the most tokens (contexts, drawn tokens, KV entries) the strings in flight may "
        "hold when each grows to its length cap; bounds memory where batch_size alone does not",
    )
    overlap: str = setting(
        "auto",
        types=(str,),
        help="run the sampler on the CPU while the device computes (two groups of slots that "
        "alternate): auto (on CUDA), on or off",
    )
    stop: list[str] = setting(types=(list,), factory=list, help="stop strings")
    eos_token_ids: list[int] | None = setting(
        None,
        types=(list,),
        optional=True,
        help="end-of-string token ids (default: the model's generation config)",
    )
    backend: str = setting(
        "hf",
        types=(str,),
        help='generation backend: hf (transformers) or vllm (pip install "tradeoff[vllm]")',
    )
    tensor_parallel_size: int = setting(
        1,
        types=(int,),
        help="GPUs per engine (vllm backend; under torchrun each rank takes this many)",
    )

    def check(self, label: Label) -> None:
        if self.adaptors is not None and (
            self.families is not None or self.temperatures is not None
        ):
            raise ConfigError(
                f"{label('adaptors')}: give 'adaptors' or 'families' and 'temperatures', not both"
            )
        if self.adaptors is None:
            families = self.families if self.families is not None else ["ancestral"]
            temperatures = self.temperatures if self.temperatures is not None else [1.0]
            _strings(label, "families", families)
            for t in temperatures:
                _number(label, "temperatures", t, positive=True)
            self.adaptors = grid(families, temperatures)
            self.families = self.temperatures = None
        if not self.adaptors:
            raise ConfigError(
                f"{label('adaptors')} must name at least one configuration (e.g. ancestral)"
            )
        _strings(label, "adaptors", self.adaptors)
        configs = []
        for spec in self.adaptors:
            try:
                configs.append(str(AdaptorChain.parse(spec)))
            except (ValueError, TypeError) as error:
                bare = label("adaptors").replace("'adaptors'", "adaptors")
                raise ConfigError(f"{bare}: {error}") from None
        twice = sorted({c for c in configs if configs.count(c) > 1})
        if twice:
            raise ConfigError(
                f"{label('adaptors')} lists a configuration twice: {', '.join(twice)}"
            )
        for key in ("samples_per_prompt", "max_new_tokens", "batch_size"):
            _positive(label, key, getattr(self, key))
        _positive(label, "shard_size", self.shard_size)
        _positive(label, "max_batch_tokens", self.max_batch_tokens)
        if self.overlap not in OVERLAP:
            raise ConfigError(f"{label('overlap')} must be auto, on or off; got {self.overlap!r}")
        _strings(label, "stop", self.stop)
        for token in self.eos_token_ids or ():
            if isinstance(token, bool) or not isinstance(token, int) or token < 0:
                raise ConfigError(
                    f"{label('eos_token_ids')} must hold token ids >= 0, got {token!r}"
                )
        from ..generation.backend import BACKENDS

        if self.backend not in BACKENDS:
            raise ConfigError(
                f"{label('backend')} must be one of {', '.join(BACKENDS)}; got {self.backend!r}"
            )
        _positive(label, "tensor_parallel_size", self.tensor_parallel_size)
        if self.tensor_parallel_size > 1 and self.backend != "vllm":
            raise ConfigError(
                f"{label('tensor_parallel_size')} {self.tensor_parallel_size} needs the vllm "
                f"backend (the {self.backend} backend runs one device per process)"
            )

    @property
    def strings_per_shard(self) -> int:
        """The shard size: ``shard_size``, or 4 x ``batch_size``."""
        return self.shard_size if self.shard_size is not None else 4 * self.batch_size

    @property
    def overlap_flag(self) -> bool | None:
        """``overlap`` as the engine takes it (None: decide by the device)."""
        return OVERLAP[self.overlap]

    @property
    def configs(self) -> list[str]:
        """The configurations' names (each chain's canonical spec)."""
        return [str(AdaptorChain.parse(spec)) for spec in self.adaptors or []]


PRIOR_CONTEXTS = ("formatted", "raw", "none")


@dataclass
class ScoreSection(Section):
    """Scoring: what the prior conditions on, what the reward model reads, the clamp."""

    name: ClassVar[str] = "score"
    prior_context: str = setting(
        "formatted",
        types=(str,),
        help="what the prior conditions on: the aligned model's formatted prompt (formatted), "
        "the raw prompt (raw), or nothing but BOS (none, the paper's choice)",
    )
    reward_template: str = setting(
        "{prompt}{response}",
        types=(str,),
        help='text the reward model reads, e.g. "Human: {prompt} Assistant: {response}", or chat',
    )
    reward_max_length: int | None = setting(
        None, types=(int,), optional=True, help="truncate the reward model's input to N tokens"
    )
    clamp_token_nll: float | None = setting(
        None,
        types=(float, int),
        optional=True,
        help="clip each token's negative log-likelihood to [0, C] in the sums (the paper: 25)",
    )
    reward_normalize: bool = setting(
        False,
        types=(bool,),
        help="normalise a value-head (OpenRLHF) reward model's scores with the mean and std in "
        "its config, (r - mean) / std; off by default, as in the paper, whose Janus rewards are "
        "unnormalised",
    )
    batch_size: int = setting(32, types=(int,), help="the most strings per forward pass")
    max_batch_tokens: int | None = setting(
        4096,
        types=(int,),
        optional=True,
        help="the most tokens per forward pass of the prior and aligned models (strings x the "
        "longest, padding included); strings are batched by length within it",
    )
    shard_size: int = setting(
        512, types=(int,), help="strings per shard (sorted by length into batches)"
    )
    aligned: str | None = setting(
        None,
        types=(str,),
        optional=True,
        help="re-score log pi and log q with this aligned model (text generated elsewhere)",
    )

    def check(self, label: Label) -> None:
        if self.prior_context not in PRIOR_CONTEXTS:
            raise ConfigError(
                f"{label('prior_context')} must be formatted, raw or none; got "
                f"{self.prior_context!r}"
            )
        from ..models.rewards import check_reward_template

        try:
            check_reward_template(self.reward_template)
        except ConfigError as error:
            raise ConfigError(f"{label('reward_template')}: {error}") from None
        _positive(label, "reward_max_length", self.reward_max_length)
        _number(label, "clamp_token_nll", self.clamp_token_nll, positive=True)
        _positive(label, "batch_size", self.batch_size)
        _positive(label, "max_batch_tokens", self.max_batch_tokens)
        _positive(label, "shard_size", self.shard_size)


@dataclass
class AnalysisSettings(Section):
    """IMH and resampling sizes (the paper's by default) and the bootstrap's."""

    name: ClassVar[str] = "analysis"
    n_steps: int = setting(200_000, types=(int,), help="IMH steps per configuration")
    n_corpora: int = setting(2_000, types=(int,), help="corpora resampled from each chain")
    corpus_size: int = setting(200_000, types=(int,), help="strings per resampled corpus")
    n_resamples: int = setting(2_000, types=(int,), help="bootstrap resamples of the means")
    # String-level intervals resample strings (above LARGE_SAMPLE pairs, a fifth as many times),
    # the pooled corpus-level ones configurations; one configuration's corpora take none.
    correlation_resamples: int = setting(
        1_000, types=(int,), help="bootstrap resamples of the correlations"
    )
    level: float = setting(0.95, types=(float,), help="confidence level of the intervals")
    seed: int = setting(0, types=(int,), help="seed of the analysis' random draws")
    typical_share: float = setting(
        0.1,
        types=(float,),
        help="share of the pooled corpora taken as typical for the aligned model: those whose "
        "mean log pi lies closest to -H(pi)",
    )
    typical_epsilon: float | None = setting(
        None,
        types=(float, int),
        optional=True,
        help="typical corpora: mean log pi within this many nats of -H(pi) (instead of a share)",
    )
    best_of_n: dict[str, Any] | None = setting(
        None,
        types=(dict,),
        optional=True,
        help='best-of-n from one configuration\'s samples, e.g. {base = "ancestral", n = [2, 4, '
        "8]}: needs at least max(n) samples per prompt of the base",
    )
    per_prompt_min_samples: int = setting(
        10,
        types=(int,),
        help="per-prompt trade-off lines for the prompts with at least this many kept strings "
        "in every pooled configuration (>= 2)",
    )

    def check(self, label: Label) -> None:
        for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples", "correlation_resamples"):
            _positive(label, key, getattr(self, key))
        _number(label, "level", self.level, unit=True)
        _seed(label, "seed", self.seed)
        if not 0 < self.typical_share <= 1:
            raise ConfigError(
                f"{label('typical_share')} must be in (0, 1], got {self.typical_share!r}"
            )
        _number(label, "typical_epsilon", self.typical_epsilon, positive=True)
        if self.per_prompt_min_samples < 2:
            raise ConfigError(
                f"{label('per_prompt_min_samples')} must be an integer >= 2 (a per-prompt mean "
                f"needs strings to weigh), got {self.per_prompt_min_samples!r}"
            )
        if self.best_of_n is not None:
            self.best_of_n = _best_of_n(label, self.best_of_n)


def _best_of_n(label: Label, value: dict[str, Any]) -> dict[str, Any]:
    """``{base, n}`` checked and normalised: the base's canonical spec, n sorted and unique."""
    unknown = sorted(set(value) - {"base", "n"})
    if unknown:
        raise ConfigError(
            f"{label('best_of_n')} takes the keys base and n; got {', '.join(unknown)}"
        )
    base = value.get("base", "ancestral")
    if not isinstance(base, str):
        raise ConfigError(f"{label('best_of_n')}: base must be a configuration spec, got {base!r}")
    try:
        base = str(AdaptorChain.parse(base))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{label('best_of_n')}: base: {error}") from None
    sizes = value.get("n", [2, 4, 8])
    if (
        not isinstance(sizes, list)
        or not sizes
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes)
    ):
        raise ConfigError(
            f"{label('best_of_n')}: n must be a non-empty list of integers >= 1, got {sizes!r}"
        )
    return {"base": base, "n": sorted(set(sizes))}


SECTIONS: dict[str, type[Section]] = {
    "": RunSection,
    "world": WorldSection,
    "models": ModelsSection,
    "prompts": PromptsSection,
    "generate": GenerateSection,
    "score": ScoreSection,
    "analysis": AnalysisSettings,
}
