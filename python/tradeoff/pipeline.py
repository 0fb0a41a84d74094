"""``tradeoff-eval run``: one TOML file describes a whole experiment — models, prompts, the adaptor
grid, sampling, scoring, IMH and resampling, output — and ``run`` executes every stage that is not
complete (generate resumes), then analyze and report.

Sections and keys (unknown keys are errors that name them)::

    out = "runs/my-run"            # the run directory
    seed = 0

    [world]                        # optional: an exact automaton world instead of [models]
    kind = "automaton"             # and [prompts]; its models are built in OUT/world
    seed = 4
    min_eos = 0.15

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

    [score]
    prior_context = "none"
    reward_template = "Human: {prompt} Assistant: {response}"
    reward_max_length = 256
    clamp_token_nll = 25.0
    batch_size = 8

    [analysis]
    n_steps = 200000
    n_corpora = 2000
    corpus_size = 200000
    n_resamples = 2000
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adaptors import AdaptorChain
from .analysis import AnalysisSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "PRESETS",
    "RunConfig",
    "config_from_dict",
    "grid",
    "load_config",
    "plan",
    "run_config",
    "to_toml",
]


class ConfigError(ValueError):
    """A configuration file that cannot describe a run; the message names the key."""


SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "": {"out": (str,), "seed": (int,)},
    "world": {
        "kind": (str,),
        "seed": (int,),
        "min_eos": (float, int),
        "beta": (float, int),
        "n_states": (int,),
        "n_symbols": (int,),
    },  # fmt: skip
    "models": {
        "aligned": (str,),
        "prior": (str,),
        "reward": (str,),
        "dtype": (str,),
        "device": (str,),
        "trust_remote_code": (bool,),
    },  # fmt: skip
    "prompts": {"source": (str,), "max_prompts": (int,), "template": (str,)},
    "generate": {
        "adaptors": (list,),
        "families": (list,),
        "temperatures": (list,),
        "samples_per_prompt": (int,),
        "max_new_tokens": (int,),
        "batch_size": (int,),
        "stop": (list,),
    },  # fmt: skip
    "score": {
        "prior_context": (str,),
        "reward_template": (str,),
        "reward_max_length": (int,),
        "clamp_token_nll": (float, int),
        "batch_size": (int,),
    },  # fmt: skip
    "analysis": {
        "n_steps": (int,),
        "n_corpora": (int,),
        "corpus_size": (int,),
        "n_resamples": (int,),
    },  # fmt: skip
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "": {"seed": 0},
    "world": {
        "kind": "automaton",
        "seed": 4,
        "min_eos": 0.15,
        "beta": 1.0,
        "n_states": 6,
        "n_symbols": 12,
    },  # fmt: skip
    "models": {"dtype": "float32", "device": "cpu", "trust_remote_code": False},
    "prompts": {"template": "{prompt}"},
    "generate": {"samples_per_prompt": 1, "max_new_tokens": 256, "batch_size": 16, "stop": []},
    "score": {
        "prior_context": "formatted",
        "reward_template": "{prompt}{response}",
        "batch_size": 8,
    },  # fmt: skip
    # The analysis stage's own defaults (the paper's sizes), not a copy of them.
    "analysis": {
        key: getattr(AnalysisSettings(), key)
        for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples")
    },
}


@dataclass
class RunConfig:
    """A validated configuration: one dict per section, defaults filled in."""

    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str | None = None

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections.get(section, {})

    @property
    def out(self) -> Path:
        return Path(self[""]["out"])

    @property
    def adaptors(self) -> list[str]:
        return self["generate"]["adaptors"]


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


def config_from_dict(raw: dict[str, Any], origin: str) -> RunConfig:
    """Validates a configuration given as a dict (as parsed from TOML); ``origin`` names it in
    errors."""
    sections: dict[str, dict[str, Any]] = {"": {}}
    for key, value in raw.items():
        if isinstance(value, dict):
            if key not in SCHEMA or key == "":
                raise ConfigError(f"{origin}: unknown section [{key}]; known: "
                                  f"{', '.join(sorted(k for k in SCHEMA if k))}")  # fmt: skip
            sections[key] = dict(value)
        else:
            sections[""][key] = value
    for section, values in sections.items():
        allowed = SCHEMA[section]
        label = f"[{section}] " if section else ""
        for key, value in values.items():
            if key not in allowed:
                raise ConfigError(
                    f"{origin}: unknown key {label}{key!r}; known: {', '.join(sorted(allowed))}"
                )
            types = allowed[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                names = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{origin}: {label}{key!r} must be {names}, got {value!r}")
    for section in list(SCHEMA):
        if section in sections or section in ("", "generate", "score", "analysis"):
            sections[section] = {**DEFAULTS.get(section, {}), **sections.get(section, {})}
    top = sections[""]
    if "out" not in top:
        raise ConfigError(f"{origin}: the key 'out' (the run directory) is missing")
    if "world" in raw:
        if sections["world"]["kind"] != "automaton":
            raise ConfigError(f"{origin}: [world] kind must be 'automaton', got "
                              f"{sections['world']['kind']!r}")  # fmt: skip
        for section in ("models", "prompts"):
            if section in raw:
                raise ConfigError(f"{origin}: [{section}] comes from [world]; remove one of them")
    else:
        sections.pop("world", None)
        for section, key in (("models", "aligned"), ("prompts", "source")):
            if key not in sections.get(section, {}):
                raise ConfigError(f"{origin}: [{section}] {key!r} is missing")
    gen = sections["generate"]
    if "adaptors" in gen and ("families" in gen or "temperatures" in gen):
        raise ConfigError(f"{origin}: [generate] give 'adaptors' or 'families' and "
                          "'temperatures', not both")  # fmt: skip
    if "adaptors" not in gen:
        families = gen.pop("families", ["ancestral"])
        temperatures = gen.pop("temperatures", [1.0])
        gen["adaptors"] = grid(families, temperatures)
    for spec in gen["adaptors"]:
        try:
            AdaptorChain.parse(spec)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{origin}: [generate] adaptors: {error}") from None
    for section, key in (("generate", "samples_per_prompt"), ("generate", "max_new_tokens"),
                         ("generate", "batch_size"), ("score", "batch_size"),
                         ("analysis", "n_steps"), ("analysis", "n_corpora"),
                         ("analysis", "corpus_size"), ("analysis", "n_resamples")):  # fmt: skip
        if sections[section][key] < 1:
            raise ConfigError(f"{origin}: [{section}] {key!r} must be >= 1, got "
                              f"{sections[section][key]}")  # fmt: skip
    if sections["score"]["prior_context"] not in ("formatted", "raw", "none"):
        raise ConfigError(f"{origin}: [score] 'prior_context' must be formatted, raw or none")
    return RunConfig(sections, origin)


def load_config(path: str | Path) -> RunConfig:
    """Reads and validates a TOML configuration."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return config_from_dict(raw, str(path))


PAPER_FAMILIES = ["ancestral", "top_k=50", "top_k=30", "top_p=0.9", "top_p=0.95", "typical=0.9",
                  "eta=0.0009"]  # fmt: skip
PAPER_TEMPERATURES = [0.5, 0.75, 1.0, 1.25, 1.5]


def _paper(aligned: str, prior: str, reward: str, template: str, out: str) -> dict[str, Any]:
    return {
        "out": out,
        "seed": 0,
        "models": {
            "aligned": aligned,
            "prior": prior,
            "reward": reward,
            "dtype": "float16",
            "device": "auto",
            "trust_remote_code": False,
        },  # fmt: skip
        "prompts": {
            "source": "hh-rlhf:data/hh-rlhf/harmless-base/test.jsonl.gz",
            "max_prompts": 1000,
            "template": template,
        },  # fmt: skip
        "generate": {
            "families": PAPER_FAMILIES,
            "temperatures": PAPER_TEMPERATURES,
            "samples_per_prompt": 2,
            "max_new_tokens": 256,
            "batch_size": 16,
        },  # fmt: skip
        "score": {
            "prior_context": "none",
            "reward_template": "Human: {prompt} Assistant: {response}",
            "reward_max_length": 256,
            "clamp_token_nll": 25.0,
            "batch_size": 8,
        },  # fmt: skip
        # Written out in full, so that the TOML a preset writes shows every setting.
        "analysis": dict(DEFAULTS["analysis"]),
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's RLHF setting (PAPER.md): Llama-2-7b prior, the safe-rlhf harmless model, the
    # safe-rlhf reward model (score head, end score). The paper caps 256 tokens including the
    # prompt; here 256 new tokens bound it.
    "paper-rlhf": _paper(
        "ethz-spylab/rlhf-7b-harmless",
        "meta-llama/Llama-2-7b-hf",
        "ethz-spylab/reward_model",
        "Human: {prompt} Assistant:",
        "runs/paper-rlhf",
    ),  # fmt: skip
    # The paper's DPO setting: Mistral-7B-v0.2 prior, Janus DPO, the Janus reward model (the
    # implicit reward, implicit:BETA, is the alternative).
    "paper-dpo": _paper(
        "kaist-ai/janus-dpo-7b",
        "mistral-community/Mistral-7B-v0.2",
        "kaist-ai/janus-rm-7b",
        "[INST] Human: {prompt} Assistant:[/INST]",
        "runs/paper-dpo",
    ),  # fmt: skip
}


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"`preset` must be one of {sorted(PRESETS)}, got {name!r}")
    return config_from_dict(json.loads(json.dumps(PRESETS[name])), f"preset {name}")


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

    lines = [f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for section, values in raw.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _available(name: str) -> str:
    """Whether a model is here: a directory, in the local cache, or not available offline."""
    if name.startswith(("implicit:", "python:")):
        return "computed"
    if Path(name).is_dir():
        return "local directory"
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return "in the Hugging Face cache"
    except Exception:  # noqa: BLE001  (no hub library or a malformed id: not available)
        pass
    return "not available offline (download it before running)"


def plan(config: RunConfig) -> dict[str, Any]:
    """What a run would do, computed offline: strings, an upper bound on generated tokens and
    forward passes per model, and which inputs are available here."""
    gen, score = config["generate"], config["score"]
    n_configs = len(config.adaptors)
    if "world" in config.sections:
        n_prompts, prompts_status = 1, "the world's empty prompt"
        models = {"aligned": "world", "prior": "world", "reward": "world"}
    else:
        source = config["prompts"]["source"]
        path = Path(source.removeprefix("hh-rlhf:"))
        limit = config["prompts"].get("max_prompts")
        if path.is_file():
            from .prompts import load_prompts

            n_prompts, prompts_status = len(load_prompts(source, limit=limit)), "found"
        else:
            n_prompts = limit or 0
            prompts_status = "file not found here; the plan assumes max_prompts"
        m = config["models"]
        models = {role: _available(m[role]) for role in ("aligned", "prior", "reward") if role in m}
    strings = n_prompts * gen["samples_per_prompt"] * n_configs
    batches = math.ceil(strings / gen["batch_size"]) if strings else 0
    scoring = math.ceil(strings / score["batch_size"]) if strings else 0
    passes = {"aligned (generation, at most)": batches * (gen["max_new_tokens"])}
    if "world" in config.sections or config["models"].get("prior"):
        passes["prior (scoring)"] = scoring
    reward = "world" if "world" in config.sections else config["models"].get("reward", "")
    if reward and not reward.startswith(("implicit:", "python:")):
        passes["reward model"] = scoring
    return {
        "config": config.path,
        "out": str(config.out),
        "prompts": {"count": n_prompts, "status": prompts_status},
        "configurations": n_configs,
        "strings": strings,
        "generated_tokens_at_most": strings * gen["max_new_tokens"],
        "forward_passes": passes,
        "models": models,
        "imh_steps": config["analysis"]["n_steps"] * n_configs,
        "corpora": config["analysis"]["n_corpora"] * n_configs,
    }


def run_config(config: RunConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Runs every stage that is not complete, then analyze and report; returns the summary."""
    import time

    from .analysis import AnalysisSettings, analyze_run
    from .generate import generate_run
    from .report import write_report
    from .score import score_run

    start = time.perf_counter()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    top, gen, sc, an = config[""], config["generate"], config["score"], config["analysis"]
    exact = None
    if "world" in config.sections:
        from .worlds.automaton import AutomatonSettings
        from .worlds.automaton_hf import exact_for, save_world

        w = config["world"]
        settings = AutomatonSettings(seed=w["seed"], min_eos=float(w["min_eos"]),
                                     beta=float(w["beta"]), n_states=w["n_states"],
                                     n_symbols=w["n_symbols"])  # fmt: skip
        world = out / "world"
        info = world / "world.json"
        if not info.exists() or json.loads(info.read_text())["settings"] != settings.__dict__:
            save_world(world, settings)
        prompts = out / "prompts.jsonl"
        prompts.write_text(json.dumps({"id": "world", "prompt": ""}) + "\n", encoding="utf-8")
        models = {"aligned": str(world / "aligned"), "prior": str(world / "prior"),
                  "reward": str(world / "reward"), "dtype": "float32", "device": "cpu",
                  "trust_remote_code": False}  # fmt: skip
        prompt_source, template, max_prompts = str(prompts), "{prompt}", None

        def exact(name: str) -> dict[str, Any] | None:
            try:
                return exact_for(world, name)
            except ValueError:  # strings need not end under this configuration
                return None

    else:
        models = config["models"]
        prompt_source = config["prompts"]["source"]
        template = config["prompts"]["template"]
        max_prompts = config["prompts"].get("max_prompts")
    run_dir = out / "run"
    generate_run(
        str(run_dir),
        aligned=models["aligned"],
        prompts=prompt_source,
        adaptors=gen["adaptors"],
        samples_per_prompt=gen["samples_per_prompt"],
        max_new_tokens=gen["max_new_tokens"],
        seed=top["seed"],
        template=template,
        batch_size=gen["batch_size"],
        dtype=models["dtype"],
        device=models["device"],
        stop_strings=gen["stop"],
        max_prompts=max_prompts,
        trust_remote_code=models["trust_remote_code"],
        progress=progress,
    )
    from .score import score_settings
    from .store import RunDir

    wanted = score_settings(models.get("prior"), None, models.get("reward"), sc["prior_context"],
                            sc["reward_template"], sc.get("clamp_token_nll"),
                            models["dtype"])  # fmt: skip
    # A complete scoring with the same settings is kept (generate clears it when it rewrites the
    # samples).
    manifest = RunDir(run_dir).read_manifest() or {}
    done = manifest.get("stages", {}).get("score", {}).get("status") == "complete"
    if not (done and manifest.get("settings", {}).get("score") == wanted):
        score_run(
            str(run_dir),
            prior=models.get("prior"),
            reward=models.get("reward"),
            prior_context=sc["prior_context"],
            reward_template=sc["reward_template"],
            reward_max_length=sc.get("reward_max_length"),
            clamp_token_nll=sc.get("clamp_token_nll"),
            batch_size=sc["batch_size"],
            dtype=models["dtype"],
            device=models["device"],
            trust_remote_code=models["trust_remote_code"],
            progress=progress,
        )
    settings = AnalysisSettings(n_steps=an["n_steps"], n_corpora=an["n_corpora"],
                                corpus_size=an["corpus_size"], n_resamples=an["n_resamples"],
                                seed=top["seed"])  # fmt: skip
    summary = analyze_run(str(run_dir), settings=settings, exact=exact)
    summary["report"] = str(write_report(str(run_dir)))
    summary["seconds"] = time.perf_counter() - start
    return summary
