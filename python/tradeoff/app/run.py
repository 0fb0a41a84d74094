"""``tradeoff-eval run``: every stage of a configured experiment that is not complete — generate
(resumes), score (keeps a complete scoring with the same settings), analyze, report — after
checking every setting of every stage, so that a mistake in [score] stops the run before the
generation, not after it. ``--dry-run`` runs the same checks and prints the plan.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import TradeoffError
from ..stages.settings import ModelsSection, PromptsSection
from .config import RunConfig

__all__ = ["check", "plan", "run_config"]


@dataclass
class _Inputs:
    """The models and prompts a run uses (a world's, once it is built), and its exact answers."""

    models: ModelsSection
    prompts: PromptsSection
    exact: Callable[[str], dict[str, Any] | None] | None = None


def _world_inputs(config: RunConfig, build: bool) -> _Inputs:
    """The automaton world's models and prompt (built in OUT/world when ``build``)."""
    world_dir = config.out / "world"
    models = ModelsSection(
        aligned=str(world_dir / "aligned"),
        prior=str(world_dir / "prior"),
        reward=str(world_dir / "reward"),
        dtype="float32",
        device="cpu",
    )
    prompts = PromptsSection(source=str(config.out / "prompts.jsonl"), template="{prompt}")
    if not build:
        return _Inputs(models, prompts)
    from ..worlds.automaton import preset_settings
    from ..worlds.automaton_hf import exact_for, save_world

    assert config.world is not None
    w = config.world
    settings = preset_settings(
        w.preset,
        seed=w.seed,
        min_eos=None if w.min_eos is None else float(w.min_eos),
        beta=None if w.beta is None else float(w.beta),
        n_states=w.n_states,
        n_symbols=w.n_symbols,
    )
    info = world_dir / "world.json"
    if not info.exists() or json.loads(info.read_text())["settings"] != settings.__dict__:
        save_world(world_dir, settings)
    prompt_file = Path(prompts.source or "")
    line = json.dumps({"id": "world", "prompt": ""}) + "\n"
    if not prompt_file.is_file() or prompt_file.read_text(encoding="utf-8") != line:
        prompt_file.write_text(line, encoding="utf-8")

    def exact(name: str) -> dict[str, Any] | None:
        try:
            return exact_for(world_dir, name)
        except ValueError:  # strings need not end under this configuration
            return None

    return _Inputs(models, prompts, exact)


def _inputs(config: RunConfig, build: bool = False) -> _Inputs:
    if config.world is not None:
        return _world_inputs(config, build)
    return _Inputs(config.models, config.prompts)


def check(config: RunConfig, *, files: bool = True) -> None:
    """Every check of every stage that can be made before work: the sections' values (checked
    when the configuration was read), devices, backends, the output directory, and with
    ``files`` the prompt file and the models' files."""
    from ..stages.generate import check_generate, check_output
    from ..stages.score import check_score

    inputs = _inputs(config)
    world = config.world is not None
    try:
        check_output(run_directory(config))
        check_generate(
            inputs.models,
            inputs.prompts,
            config.generate,
            files=files and not world,
            semantics=config.run.semantics,
        )
        if inputs.models.prior is not None or inputs.models.reward is not None:
            check_score(inputs.models, config.score, files=files and not world)
    except TradeoffError as error:
        # Name the configuration the setting came from.
        raise type(error)(f"{config.path}: {error}") from None


def _available(name: str) -> str:
    """Whether a model is here: a directory, in the local cache, or not available offline."""
    from ..models import local_model_dir, parse_reward

    if parse_reward(name).kind != "model":
        return "computed"
    if Path(name).is_dir():
        return "local directory"
    if local_model_dir(name) is not None:
        return "in the Hugging Face cache"
    return "not available offline (download it before running)"


def plan(config: RunConfig) -> dict[str, Any]:
    """What a run would do, computed offline after the same checks as a real run (files
    excepted: whether the models and prompts are here is reported, not required): strings, an
    upper bound on generated tokens and forward passes per model, and which inputs are here."""
    from ..generation import load_prompts, parse_prompt_source
    from ..models import parse_reward

    check(config, files=False)
    gen, score = config.generate, config.score
    n_configs = len(config.adaptors)
    if config.world is not None:
        n_prompts, prompts_status = 1, "the world's empty prompt"
        models = {"aligned": "world", "prior": "world", "reward": "world"}
    else:
        source, limit = config.prompts.source or "", config.prompts.max_prompts
        try:
            if parse_prompt_source(source).kind == "hf-dataset":
                raise FileNotFoundError  # counted when it runs: the plan assumes max_prompts
        except FileNotFoundError:
            n_prompts = limit or 0
            prompts_status = "file not found here; the plan assumes max_prompts"
        else:
            selected = load_prompts(
                source,
                limit=limit,
                template=config.prompts.template,
                semantics=config.run.semantics,
            )
            n_prompts, prompts_status = len(selected), "found"
        m = config.models
        models = {
            role: _available(name)
            for role, name in (("aligned", m.aligned), ("prior", m.prior), ("reward", m.reward))
            if name
        }
    strings = n_prompts * gen.samples_per_prompt * n_configs
    batches = math.ceil(strings / gen.batch_size) if strings else 0
    scoring = math.ceil(strings / score.batch_size) if strings else 0
    passes = {"aligned (generation, at most)": batches * gen.max_new_tokens}
    if config.world is not None or config.models.prior:
        passes["prior (scoring)"] = scoring
    reward = "world" if config.world is not None else config.models.reward
    if reward and (reward == "world" or parse_reward(reward).kind == "model"):
        passes["reward model"] = scoring
    return {
        "config": config.path,
        "out": str(config.out),
        "prompts": {"count": n_prompts, "status": prompts_status},
        "configurations": n_configs,
        "strings": strings,
        "generated_tokens_at_most": strings * gen.max_new_tokens,
        "forward_passes": passes,
        "models": models,
        "imh_steps": config.analysis.n_steps * n_configs,
        "corpora": config.analysis.n_corpora * n_configs,
    }


def run_directory(config: RunConfig) -> Path:
    """OUT/run, or OUT/run-authors under the authors' semantics (so that a preset run under both
    semantics keeps both side by side, and each report shows the other)."""
    return config.out / ("run-authors" if config.run.semantics == "authors" else "run")


def run_config(config: RunConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Runs every stage that is not complete, then analyze and report; returns the summary as
    a dict (with the report's path and the seconds taken)."""
    from ..stages.analyze import analyze
    from ..stages.generate import generate
    from ..stages.parallel import ranks
    from ..stages.report import write_report
    from ..stages.score import score

    start = time.perf_counter()
    check(config)
    out = config.out
    group = ranks()
    if group.rank == 0:  # under torchrun, one process builds the world
        out.mkdir(parents=True, exist_ok=True)
        _inputs(config, build=True)
    group.barrier()
    inputs = _inputs(config, build=True)  # built: now only read
    run_dir = run_directory(config)
    generate(
        run_dir,
        models=inputs.models,
        prompts=inputs.prompts,
        generate=config.generate,
        seed=config.seed,
        semantics=config.run.semantics,
        progress=progress,
    )
    if inputs.models.prior is not None or inputs.models.reward is not None:
        models = replace(inputs.models, aligned=None)
        # The configuration is authoritative: a scoring with other settings is redone; one with
        # the same settings resumes (and, complete, only merges again).
        score(run_dir, models=models, score=config.score, replace=True, progress=progress)
    if group.rank != 0:
        return {"rank": group.rank}  # rank 0 analyses and reports for the run
    summary = analyze(run_dir, settings=config.analysis, exact=inputs.exact).to_dict()
    summary["report"] = str(write_report(run_dir))
    summary["seconds"] = time.perf_counter() - start
    return summary
