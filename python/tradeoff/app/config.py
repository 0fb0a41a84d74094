"""Run configurations: one TOML file describes a whole experiment — models, prompts, the adaptor
grid, sampling, scoring, IMH and resampling, output — as the sections of
:mod:`tradeoff.stages.settings` (which hold every default). ``--set section.key=value`` overrides
a key of a file or a preset, checked like the file.

Sections and keys (unknown keys are errors that name them)::

    out = "runs/my-run"            # the output directory; the run directory is OUT/run
    seed = 0

    [world]                        # optional: an exact automaton world instead of [models]
    kind = "automaton"             # and [prompts]; its models are built in OUT/world
    preset = "reversal"            # or "independent"; seed, min_eos, beta, n_states and
    seed = 163                     # n_symbols override the preset's

    [models]
    aligned = "org/aligned-model"  # local directory or hub id
    prior = "org/base-model"
    reward = "org/reward-model"    # or implicit:BETA or python:module:function
    dtype = "float16"
    device = "auto"
    trust_remote_code = false

    [prompts]
    source = "hh-rlhf:data/test.jsonl.gz"    # or a .jsonl / .parquet / .txt file
    max_prompts = 1000
    template = "Human: {prompt} Assistant:"

    [generate]
    families = ["ancestral", "top_k=50", "top_p=0.9"]   # crossed with temperatures,
    temperatures = [0.5, 1.0, 1.5]                      # or `adaptors = [...]` in full
    samples_per_prompt = 2
    max_new_tokens = 256
    batch_size = 16
    stop = []
    backend = "hf"                 # or "vllm" (pip install "tradeoff[vllm]")
    tensor_parallel_size = 1       # GPUs per engine (vllm)

    [score]
    prior_context = "none"
    reward_template = "Human: {prompt} Assistant: {response}"
    reward_max_length = 256
    clamp_token_nll = 25.0
    batch_size = 8
    shard_size = 512

    [analysis]
    n_steps = 200000
    n_corpora = 2000
    corpus_size = 200000
    n_resamples = 2000
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputFileError
from ..stages.settings import (
    SECTIONS,
    AnalysisSettings,
    GenerateSection,
    ModelsSection,
    PromptsSection,
    RunSection,
    ScoreSection,
    WorldSection,
    grid,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "RunConfig",
    "apply_overrides",
    "config_from_dict",
    "grid",
    "load_config",
    "parse_override",
    "to_toml",
]


@dataclass
class RunConfig:
    """A validated configuration: one section object each, defaults filled in."""

    run: RunSection
    models: ModelsSection
    prompts: PromptsSection
    generate: GenerateSection
    score: ScoreSection
    analysis: AnalysisSettings
    world: WorldSection | None = None
    path: str | None = None

    @property
    def out(self) -> Path:
        return Path(self.run.out or "")

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def adaptors(self) -> list[str]:
        return self.generate.adaptors

    @property
    def sections(self) -> dict[str, dict[str, Any]]:
        """Every section as a dict (the world's only when there is one)."""
        sections = {"": self.run.to_dict()}
        for name in ("world", "models", "prompts", "generate", "score", "analysis"):
            section = getattr(self, name)
            if section is not None:
                sections[name] = section.to_dict()
        return sections

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections.get(section, {})


def config_from_dict(raw: dict[str, Any], origin: str) -> RunConfig:
    """Validates a configuration given as a dict (as parsed from TOML); ``origin`` names it in
    errors, which name the key."""
    try:
        config = _config(raw)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}") from None
    config.path = origin
    return config


def _config(raw: dict[str, Any]) -> RunConfig:
    values: dict[str, dict[str, Any]] = {"": {}}
    for key, value in raw.items():
        if isinstance(value, dict):
            if key not in SECTIONS or key == "":
                known = ", ".join(sorted(k for k in SECTIONS if k))
                raise ConfigError(f"unknown section [{key}]; known: {known}")
            values[key] = dict(value)
        else:
            values[""][key] = value
    if "seed" in values.get("analysis", {}):
        raise ConfigError("unknown key [analysis] 'seed'; the analysis takes the top-level 'seed'")
    top = RunSection.from_values(values[""])
    if top.out is None:
        raise ConfigError("the key 'out' (the run directory) is missing")
    world = WorldSection.from_values(values["world"]) if "world" in values else None
    if world is not None:
        for section in ("models", "prompts"):
            if section in values:
                raise ConfigError(f"[{section}] comes from [world]; remove one of them")
    models = ModelsSection.from_values(values.get("models", {}))
    prompts = PromptsSection.from_values(values.get("prompts", {}))
    if world is None:
        if models.aligned is None:
            raise ConfigError("[models] 'aligned' is missing")
        if prompts.source is None:
            raise ConfigError("[prompts] 'source' is missing")
    return RunConfig(
        run=top,
        world=world,
        models=models,
        prompts=prompts,
        generate=GenerateSection.from_values(values.get("generate", {})),
        score=ScoreSection.from_values(values.get("score", {})),
        analysis=AnalysisSettings.from_values({**values.get("analysis", {}), "seed": top.seed}),
    )


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` (``key=value`` for the top level) as (section, key, value). The
    value is read as TOML (``3``, ``1.5``, ``true``, ``["a", "b"]``, ``"text"``) and, when it is
    not valid TOML, taken as a string (``--set models.aligned=org/model``)."""
    name, sep, value_text = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"`--set` must be section.key=value, got {text!r}")
    section, _, key = name.rpartition(".")
    if section not in SECTIONS or section == "" and "." in name:
        known = ", ".join(sorted(k for k in SECTIONS if k))
        raise ConfigError(
            f"`--set {text}`: unknown section {section!r}; known: {known} (or a "
            "top-level key such as seed)"
        )
    if key not in SECTIONS[section].keys():
        where = f"[{section}] " if section else ""
        known = ", ".join(sorted(SECTIONS[section].keys()))
        raise ConfigError(f"`--set {text}`: unknown key {where}{key!r}; known: {known}")
    try:
        value = tomllib.loads(f"v = {value_text}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text
    return section, key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``raw`` with the ``--set`` overrides applied."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        section, key, value = parse_override(text)
        target = raw if section == "" else raw.setdefault(section, {})
        if section == "generate" and key in ("families", "temperatures"):
            target.pop("adaptors", None)
        if section == "generate" and key == "adaptors":
            target.pop("families", None)
            target.pop("temperatures", None)
        target[key] = value
    return raw


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"configuration {str(path)!r} is a directory, not a TOML file")
    if not path.is_file():
        raise InputFileError(f"configuration file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise InputFileError(f"configuration file {str(path)!r} is not UTF-8 text") from None


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:  # type: ignore[assignment]
    """Reads and validates a TOML configuration, with ``--set`` overrides."""
    return config_from_dict(apply_overrides(read_toml(path), list(overrides)), str(path))


def to_toml(raw: dict[str, Any]) -> str:
    """A configuration dict as TOML (strings, numbers, booleans, lists of those)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = [
        f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict) and v is not None
    ]
    for section, values in raw.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [
                f"{k} = {value(v)}" for k, v in values.items() if v is not None
            ]
    return "\n".join(lines) + "\n"
