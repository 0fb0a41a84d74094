"""The generate stage: strings per prompt and adaptor configuration from the aligned model, into
``samples.parquet`` — the only file it writes besides its shards and the manifest.

Everything that can be checked is checked before any work (:func:`check_generate`); the manifest
is written only when the work starts. Work is a :class:`~tradeoff.generation.WorkPlan` cut into
fixed shards of ``shard_size`` strings, stamped with the hash of the settings and the model's
identity, so a resumed, re-sharded or multi-process run equals one uninterrupted run, and shards
of other settings are refused rather than relabelled. The backend (``hf``, ``vllm``) owns only
the model loop: within a shard it keeps ``batch_size`` strings in flight (continuous batching).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import ConfigError, RunDirError
from ..generation import (
    GenerationRequest,
    GenerationSettings,
    Prompt,
    PromptSource,
    WorkPlan,
    check_backend,
    check_request,
    load_prompts,
    open_backend,
    parse_prompt_source,
    prompts_sha256,
)
from ..models import check_causal_lm, check_device, model_identity
from ..rundir import SAMPLES_SCHEMA, RunDir, settings_hash
from .parallel import ranks, run_shards
from .semantics import CORRECTED, Semantics, generation_chain
from .semantics import semantics as resolve_semantics
from .settings import GenerateSection, ModelsSection, PromptsSection

__all__ = ["GenerateCheck", "check_generate", "check_output", "generate"]


@dataclass
class GenerateCheck:
    """What :func:`check_generate` found: the parsed prompt source and its prompts."""

    source: PromptSource
    prompts: list[Any]


def check_output(path: str | Path) -> None:
    """An output directory that can be made and written (checked without making it)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} exists and is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(
            f"run directory {str(path)!r} cannot be made: {str(existing)!r} is a file"
        )
    import os

    if not os.access(existing, os.W_OK):
        raise RunDirError(
            f"run directory {str(path)!r} is not writable ({str(existing)!r} is "
            "read-only); give a directory you can write to"
        )


def check_generate(
    models: ModelsSection,
    prompts: PromptsSection,
    generate: GenerateSection,
    *,
    files: bool = True,
    semantics: str | Semantics = CORRECTED,
) -> GenerateCheck | None:
    """Checks a generation before any work: the backend, the device, and (with ``files``) the
    prompt file and the aligned model's files. The sections' own values are checked when they
    are made."""
    check_backend(generate.backend)
    check_device(models.device)
    if models.aligned is None:
        raise ConfigError("`aligned` (the model that generates) is missing")
    if prompts.source is None:
        raise ConfigError("`prompts` (the prompt source) is missing")
    if not files:
        return None
    check_causal_lm(models.aligned, "aligned model")
    source = parse_prompt_source(prompts.source)
    chosen = resolve_semantics(semantics)
    selected = load_prompts(
        prompts.source, limit=prompts.max_prompts, template=prompts.template, semantics=chosen.name
    )
    return GenerateCheck(source, selected)


def _settings_record(
    prompts_list: list[Prompt],
    prompts: PromptsSection,
    generate: GenerateSection,
    models: ModelsSection,
    seed: int,
) -> dict[str, Any]:
    return {
        "prompts": prompts.source,
        "prompts_sha256": prompts_sha256(prompts_list),
        "n_prompts": len(prompts_list),
        "adaptors": generate.configs,
        "samples_per_prompt": generate.samples_per_prompt,
        "max_new_tokens": generate.max_new_tokens,
        "seed": seed,
        "template": prompts.template,
        "batch_size": generate.batch_size,
        "shard_size": generate.strings_per_shard,
        "max_batch_tokens": generate.max_batch_tokens,
        "overlap": generate.overlap,
        "stop_strings": list(generate.stop),
        "eos_token_ids": list(generate.eos_token_ids) if generate.eos_token_ids else None,
        "dtype": models.dtype,
        "backend": generate.backend,
    }


def generate(
    out: str | Path,
    *,
    models: ModelsSection,
    prompts: PromptsSection,
    generate: GenerateSection,
    seed: int,
    semantics: str | Semantics = CORRECTED,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generates ``samples_per_prompt`` strings per prompt and adaptor configuration into the run
    directory ``out``; resumes an interrupted run with the same settings; under torchrun, splits
    the batches across processes. Under the authors' ``semantics``, strings are drawn with their
    hidden top-k and ``max_new_tokens`` counts the prompt. Returns a summary of what ran."""
    chosen = resolve_semantics(semantics)
    run = RunDir(out)
    check_output(run.path)
    checked = check_generate(models, prompts, generate, semantics=chosen)
    assert checked is not None
    group = ranks()
    plan = WorkPlan(
        len(checked.prompts),
        len(generate.adaptors),
        generate.samples_per_prompt,
        generate.strings_per_shard,
    )
    settings = _settings_record(checked.prompts, prompts, generate, models, seed)
    settings["semantics"] = chosen.name
    identity = model_identity(models.aligned or "")
    manifest = run.manifest()
    run.check_settings(manifest, "generate", settings, {"aligned": identity})
    # The hash binds the shards to the settings and the model's files (and dtype).
    digest = settings_hash(settings, {"aligned": {**_weights(identity), "dtype": models.dtype}})
    shards = run.shards("generate")
    # Shards of other settings (say, after the manifest was deleted) are never relabelled.
    shards.refuse_foreign(shards.scan(digest, plan.batch_rows, plan.n_batches))
    run.check_writable()
    request = GenerationRequest(
        aligned=models.aligned or "",
        prompts=checked.prompts,
        chains=[generation_chain(spec, chosen) for spec in generate.adaptors],
        names=generate.configs,
        settings=GenerationSettings(
            max_new_tokens=generate.max_new_tokens,
            seed=seed,
            template=prompts.template,
            stop_strings=tuple(generate.stop),
            eos_token_ids=tuple(generate.eos_token_ids) if generate.eos_token_ids else None,
            max_total_tokens=generate.max_new_tokens if chosen.length_counts_prompt else None,
            batch_size=generate.batch_size,
            max_batch_tokens=generate.max_batch_tokens,
            overlap=generate.overlap_flag,
        ),
        dtype=models.dtype,
        device=group.device(models.device),
        trust_remote_code=models.trust_remote_code,
        # How the engine runs, not what it draws: outside the settings hash (like world size).
        options={"tensor_parallel_size": generate.tensor_parallel_size},
    )
    check_request(generate.backend, request)
    backend = open_backend(generate.backend, request)
    identities = {"aligned": identity, **backend.identity}
    # The work starts: the manifest says what is being made.
    if group.rank == 0:
        run.remove_temporaries()
        manifest["settings"]["generate"] = settings
        manifest["models"].update(identities)
        manifest["backend"] = {"name": generate.backend, **getattr(backend, "info", {})}
        manifest["semantics"] = chosen.name
        record = manifest["stages"].get("generate", {})
        if record.get("settings_hash") != digest:
            record = {"status": "running", "settings_hash": digest}
        manifest["stages"]["generate"] = record
        run.write_manifest(manifest)

    def compute(k: int) -> pa.Table:
        return pa.Table.from_pylist(backend.run_batch(plan.batch(k)), schema=SAMPLES_SCHEMA)

    def rate(table: pa.Table, seconds: float) -> dict[str, Any]:
        rate.tokens += sum(table.column("n_tokens").to_pylist())  # type: ignore[attr-defined]
        shown = {"tok_per_s": f"{rate.tokens / max(seconds, 1e-9):.0f}"}  # type: ignore[attr-defined]
        stats = getattr(backend, "stats", None)
        if stats is not None and stats.slot_steps:
            shown["slots_used"] = f"{stats.occupancy:.0%}"
        return shown

    rate.tokens = 0  # type: ignore[attr-defined]
    done = run_shards(
        shards,
        settings_hash=digest,
        n_batches=plan.n_batches,
        expected_rows=plan.batch_rows,
        compute=compute,
        group=group,
        description="generate",
        show=progress,
        postfix=rate,
    )
    if group.rank == 0:
        manifest = run.manifest()
        if done.run_here or not run.table_is_current(run.samples_path, digest, plan.n_items):
            table = shards.read(range(plan.n_batches), SAMPLES_SCHEMA)
            run.write_table(run.samples_path, table, digest)
        manifest["stages"]["generate"] = {
            "status": "complete",
            "settings_hash": digest,
            "n_strings": plan.n_items,
            "n_batches": plan.n_batches,
            "world_size": group.world,
        }
        run.write_manifest(manifest)
    group.barrier()
    tokens = rate.tokens  # type: ignore[attr-defined]
    return {
        "rank": group.rank,
        "world_size": group.world,
        "run": str(run.path),
        "strings": plan.n_items,
        "configs": generate.configs,
        "batches": plan.n_batches,
        "batches_run_here": done.run_here,
        "batches_resumed": done.resumed,
        "tokens_generated_here": tokens,
        "seconds": done.seconds,
        "tokens_per_second": tokens / done.seconds if done.seconds > 0 else None,
        "samples": str(run.samples_path),
        "engine": stats.as_dict() if (stats := getattr(backend, "stats", None)) else None,
    }


def _weights(identity: dict[str, Any]) -> dict[str, Any]:
    """The parts of an identity that say which model it is (not where it was loaded from)."""
    return {
        k: identity.get(k)
        for k in ("config_sha256", "tokenizer_sha256", "weights_sha256", "revision")
    }
