"""The score stage: teacher-forced scores and rewards for every string of a run, into
``scores.parquet`` — keyed by (prompt_id, config, sample_index) in the samples' order, one group
of columns per scorer. It never touches ``samples.parquet``.

Scorers: ``prior`` (``logp_prior`` under the prior model, conditioned on the formatted prompt,
the raw prompt, or nothing but BOS), ``aligned`` (log pi and log q scored again by a given
aligned model, for text generated elsewhere; they win over generate's in the join) and
``reward`` (a reward model, ``python:module:function``, or ``implicit:BETA`` computed from the
others). Each scorer's work is cut into fixed shards of ``shard_size`` strings (sorted by length
into forward batches of ``batch_size``), stamped with the hash of its settings, its model and the
samples it scored: kill it at any moment and the same command finishes the missing shards, with
the table of an uninterrupted run; under torchrun shard k goes to rank k mod N and rank 0 merges.

A scorer already complete with other settings is refused unless ``replace`` is given (then it is
scored again from scratch); scorers not named now are kept.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import replace as with_changes
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, RunDirError, SettingsMismatchError
from ..models import check_causal_lm, check_device, check_reward, model_identity, parse_reward
from ..rundir import KEY_COLUMNS, SCORE_GROUPS, SCORER_NAMES, RunDir, scores_schema, settings_hash
from ..rundir.manifest import differences
from .parallel import Ranks, ranks, run_shards
from .semantics import CORRECTED, Semantics, authors_prompt, authors_text
from .semantics import semantics as resolve_semantics
from .settings import ModelsSection, ScoreSection

__all__ = ["check_score", "score"]

# The samples' columns a scorer reads.
_INPUTS = [
    "token_logp_aligned",
    "token_logp_adapted",
    "prompt_id",
    "prompt",
    "context",
    "config",
    "sample_index",
    "text",
    "token_ids",
    "stop_reason",
    "logp_aligned",
]
_OVERRIDES = ["logp_aligned", "logp_adapted", "token_logp_aligned", "token_logp_adapted"]


def check_score(models: ModelsSection, score: ScoreSection, *, files: bool = True) -> None:
    """Checks a scoring before any work: something to score, the device, the reward spec and
    template, and (with ``files``) the models' files and a Python reward's import."""
    if models.prior is None and score.aligned is None and models.reward is None:
        raise ConfigError("nothing to score: give `--prior`, `--aligned` and/or `--reward`")
    check_device(models.device)
    if models.reward is not None:
        parse_reward(models.reward)
    if not files:
        return
    if models.prior is not None:
        check_causal_lm(models.prior, "prior model")
    if score.aligned is not None:
        check_causal_lm(score.aligned, "aligned model")
    if models.reward is not None:
        check_reward(models.reward, score.reward_template)


def _group_settings(
    group: str, models: ModelsSection, score: ScoreSection, chosen: Semantics = CORRECTED
) -> dict[str, Any]:
    common = {
        "dtype": models.dtype,
        "batch_size": score.batch_size,
        "max_batch_tokens": score.max_batch_tokens,
        "shard_size": score.shard_size,
    }
    if chosen.authors_scoring:  # the texts, the clamps and the cap are the authors'
        common = {**common, "semantics": chosen.name, "scored_tokens": chosen.scored_tokens}
        if group == "prior":
            return {
                "model": models.prior,
                "prior_context": "text alone, BOS",
                "clamp_token_nll": None,
                **common,
            }
        if group == "aligned":
            return {"model": score.aligned, "clamp_token_nll": chosen.scored_nll_clamp, **common}
    if group == "prior":
        return {
            "model": models.prior,
            "prior_context": score.prior_context,
            "clamp_token_nll": score.clamp_token_nll,
            **common,
        }
    if group == "aligned":
        return {"model": score.aligned, "clamp_token_nll": score.clamp_token_nll, **common}
    spec = parse_reward(models.reward)
    if spec.computed:
        return {
            "source": spec.source,
            **({"semantics": chosen.name} if chosen.authors_scoring else {}),
        }
    return {
        "source": spec.source,
        "reward_template": "authors' text" if chosen.authors_scoring else score.reward_template,
        "reward_max_length": score.reward_max_length,
        "reward_normalize": score.reward_normalize,
        **common,
    }


def _identity(group: str, models: ModelsSection, score: ScoreSection) -> dict[str, Any]:
    if group == "prior":
        return model_identity(models.prior or "")
    if group == "aligned":
        return model_identity(score.aligned or "")
    spec = parse_reward(models.reward)
    return model_identity(spec.source) if spec.kind == "model" else {"name": spec.source}


_MODEL_ROLE = {"prior": "prior", "aligned": "aligned_scorer", "reward": "reward"}


def _fingerprint(identity: dict[str, Any]) -> dict[str, Any]:
    keys = ("config_sha256", "tokenizer_sha256", "weights_sha256", "revision", "name")
    return {k: identity.get(k) for k in keys if k != "name" or len(identity) == 1}


class _Scorer:
    """Scores the rows of one shard for one group; loads its model once."""

    def __init__(
        self,
        group: str,
        models: ModelsSection,
        score: ScoreSection,
        device: str,
        generator_tokenizer: Any,
        chosen: Semantics = CORRECTED,
    ) -> None:
        self.group, self.models, self.score, self.semantics = group, models, score, chosen
        self.generator_tokenizer = generator_tokenizer
        self._batching = {
            "batch_size": score.batch_size,
            "max_batch_tokens": score.max_batch_tokens,
        }
        if group in ("prior", "aligned"):
            from ..models import load_causal_lm

            name = models.prior if group == "prior" else score.aligned
            self.lm = load_causal_lm(
                name or "",
                dtype=models.dtype,
                device=device,
                trust_remote_code=models.trust_remote_code,
                what=f"{group} model",
            )
            self.identity = self.lm.identity
        else:
            from ..models import load_reward

            self.reward = load_reward(
                models.reward or "",
                # The authors' reward model reads their scored text (authors_text).
                template="{response}" if chosen.authors_scoring else score.reward_template,
                max_length=score.reward_max_length,
                dtype=models.dtype,
                device=device,
                batch_size=score.batch_size,
                trust_remote_code=models.trust_remote_code,
                normalize=score.reward_normalize,
            )
            self.identity = getattr(self.reward, "identity", {"name": models.reward})

    def __call__(self, rows: list[dict[str, Any]]) -> pa.Table:
        schema = SCORE_GROUPS[self.group]
        authors = self.semantics.authors_scoring
        if self.group == "reward":
            texts = [authors_text(r["context"], r["text"]) if authors else r["text"] for r in rows]
            values = self.reward([r["prompt"] for r in rows], texts)
            return pa.table({"reward": np.asarray(values, dtype=np.float64)}, schema=schema)
        from ..models.scoring import (
            continuation_ids,
            same_vocabulary,
        )

        tokenizer = self.lm.tokenizer
        shared = self.generator_tokenizer is not None and same_vocabulary(
            self.generator_tokenizer, tokenizer
        )
        if self.group == "prior":
            contexts = {
                "formatted": [r["context"] for r in rows],
                "raw": [r["prompt"] for r in rows],
                "none": [None] * len(rows),
            }[self.score.prior_context]
        else:
            contexts = [r["context"] for r in rows]
        if authors:
            return self._authors(rows, schema)
        items = [
            continuation_ids(
                tokenizer,
                context,
                r["text"],
                token_ids=r["token_ids"] if shared and r.get("token_ids") is not None else None,
                ended_with_eos=r.get("stop_reason") == "eos",
            )
            for context, r in zip(contexts, rows, strict=True)
        ]
        return self._table(items, rows, self.score.clamp_token_nll, schema)

    def _authors(self, rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
        """The authors' scoring: the prior on the stripped text alone with BOS, no clamp; pi and
        q on their scored text, the prompt's positions from the prompt tokenized alone, each
        token's NLL clamped; EOS nowhere; at most ``scored_tokens`` tokens."""
        from ..models.scoring import authors_continuation

        tokenizer, cap = self.lm.tokenizer, self.semantics.scored_tokens or 256
        if self.group == "prior":
            items = [authors_continuation(tokenizer, r["text"].strip(), None, cap) for r in rows]
            return self._table(items, rows, None, schema)
        items = [
            authors_continuation(
                tokenizer, authors_text(r["context"], r["text"]), authors_prompt(r["context"]), cap
            )
            for r in rows
        ]
        return self._table(items, rows, self.semantics.scored_nll_clamp, schema)

    def _table(
        self, items: list[Any], rows: list[dict[str, Any]], clamp: float | None, schema: pa.Schema
    ) -> pa.Table:
        """Scores ``items`` with the group's model (with each row's chain for the aligned group)
        and sums each string's per-token values, each NLL clamped to ``clamp``."""
        from ..models.scoring import clamped_sum, score_continuations

        pad = self.lm.tokenizer.pad_token_id or 0
        if self.group == "prior":
            scored = score_continuations(self.lm.model, items, pad_id=pad, **self._batching)
            return pa.table(
                {
                    "logp_prior": [clamped_sum(s.token_logp, clamp) for s in scored],
                    "n_tokens_prior": [len(s.token_logp) for s in scored],
                    "token_logp_prior": [s.token_logp for s in scored],
                },
                schema=schema,
            )
        scored = score_continuations(
            self.lm.model,
            items,
            chains=[r["config"] for r in rows],
            pad_id=pad,
            **self._batching,
        )
        return pa.table(
            {
                "logp_aligned": [clamped_sum(s.token_logp, clamp) for s in scored],
                "logp_adapted": [clamped_sum(s.token_logp_adapted or [], clamp) for s in scored],
                "token_logp_aligned": [s.token_logp for s in scored],
                "token_logp_adapted": [s.token_logp_adapted for s in scored],
                "n_outside_support": [s.n_outside_support for s in scored],
            },
            schema=schema,
        )


def score(
    run_dir: str | Path,
    *,
    models: ModelsSection,
    score: ScoreSection,
    replace: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Scores a generated run (see the module) into ``scores.parquet``; returns a summary."""
    start = time.perf_counter()
    run = RunDir(run_dir)
    run.require_samples()
    check_score(models, score)
    manifest = run.read_manifest()
    assert manifest is not None  # require_samples checked it
    generated = manifest["stages"].get("generate", {})
    if generated.get("status") != "complete" or "settings_hash" not in generated:
        raise RunDirError(
            f"run directory {str(run.path)!r} has no complete generate stage; "
            "finish it first (run the generate command again)"
        )
    samples_hash = generated["settings_hash"]
    n_rows = int(generated.get("n_strings", 0))
    # The run's semantics, recorded when it was generated. The authors scored pi and q again
    # (their way), so under their semantics the generating model re-scores them.
    chosen = resolve_semantics(manifest.get("semantics", CORRECTED.name))
    if chosen.authors_scoring and score.aligned is None:
        generator = manifest["models"].get("aligned", {})
        score = with_changes(score, aligned=generator.get("path") or generator.get("name"))
    requested = [
        g
        for g, wanted in (
            ("prior", models.prior),
            ("aligned", score.aligned),
            ("reward", models.reward),
        )
        if wanted
    ]
    recorded = manifest["settings"].get("score", {})
    record = manifest["stages"].get("score", {"groups": {}})
    record.setdefault("groups", {})
    reward_spec = parse_reward(models.reward) if models.reward else None
    if reward_spec is not None and reward_spec.computed and models.prior is None:
        prior_done = record["groups"].get("prior", {}).get("status") == "complete"
        if not prior_done:
            raise ConfigError("`--reward implicit:BETA` needs log p: also give `--prior`")

    computed = {"reward"} if reward_spec is not None and reward_spec.computed else set()
    # A clamp asked for applies to every log-likelihood the analysis reads: without a model to
    # score pi and q again, generate's per-token values are summed again with the clamp.
    if (
        not chosen.authors_scoring
        and score.clamp_token_nll is not None
        and "aligned" not in requested
        and recorded_from_generation(manifest)
    ):
        requested.append("aligned")
        computed.add("aligned")
    group_settings = {g: _group_settings(g, models, score, chosen) for g in requested}
    if "aligned" in computed:
        group_settings["aligned"] = {"from": "generation", "clamp_token_nll": score.clamp_token_nll}
    identities = {g: _identity(g, models, score) for g in requested if g not in computed}
    replaced: list[str] = []
    for g in requested:
        previous = recorded.get(g)
        if previous is None:
            continue
        changed = differences(previous, group_settings[g])
        recorded_identity = manifest["models"].get(_MODEL_ROLE[g])
        if not changed and recorded_identity is not None and g in identities:
            changed = (
                [f"{g} model files"]
                if differences(_fingerprint(recorded_identity), _fingerprint(identities[g]))
                else []
            )
        if changed and replace:
            replaced.append(g)
        elif changed:
            raise SettingsMismatchError(
                f"run directory {str(run.path)!r} was scored with other {g} settings (different: "
                f"{', '.join(changed)}); pass the same settings to resume it, `--replace` to "
                f"score the {g} again, or generate into a new directory"
            )
    run.check_writable()
    group = ranks()
    device = group.device(models.device)
    samples = run.read_samples(_INPUTS)
    if samples.num_rows != n_rows:
        raise RunDirError(
            f"{run.samples_path} has {samples.num_rows} rows where the manifest "
            f"says {n_rows}; run the generate command again"
        )
    n_batches = -(-n_rows // score.shard_size)

    def rows_in(k: int) -> int:
        return min(score.shard_size, n_rows - k * score.shard_size)

    for g in replaced:  # scored again from scratch
        if group.rank == 0:
            shutil.rmtree(run.shards(f"score-{g}").directory, ignore_errors=True)
        record["groups"].pop(g, None)
    group.barrier()
    hashes: dict[str, str] = {}
    for g in requested:
        fingerprint = {g: _fingerprint(identities[g])} if g in identities else {}
        hashes[g] = settings_hash({**group_settings[g], "samples": samples_hash}, fingerprint)
        if g not in computed:
            shards = run.shards(f"score-{g}")
            shards.refuse_foreign(shards.scan(hashes[g], rows_in, n_batches))
    group.barrier()
    if group.rank == 0:
        run.remove_temporaries()
        for g in requested:
            recorded[g] = group_settings[g]
            if record["groups"].get(g, {}).get("settings_hash") != hashes[g]:
                record["groups"][g] = {"status": "running", "settings_hash": hashes[g]}
            if g in identities:
                manifest["models"][_MODEL_ROLE[g]] = identities[g]
        manifest["settings"]["score"] = recorded
        record["status"] = "running"
        manifest["stages"]["score"] = record
        run.write_manifest(manifest)
    group.barrier()

    generator_tokenizer = None
    if "prior" in requested or ("aligned" in requested and "aligned" not in computed):
        from ..models import load_tokenizer

        generator = manifest["models"].get("aligned", {})
        name = generator.get("path") or generator.get("name")
        # By absolute path when it was a local directory: the run may be scored from elsewhere.
        generator_tokenizer = load_tokenizer(name) if name else None
    columns: list[str] = []
    for g in requested:
        if g in computed:
            columns += SCORE_GROUPS[g].names
            continue
        columns += SCORE_GROUPS[g].names
        shards = run.shards(f"score-{g}")
        if shards.scan(hashes[g], rows_in, n_batches).done == set(range(n_batches)):
            continue  # complete: no model to load
        scorer = _Scorer(g, models, score, device, generator_tokenizer, chosen)
        manifest_identity = scorer.identity
        _run_group(run, g, scorer, samples, hashes[g], n_batches, rows_in, group, progress)
        if group.rank == 0:
            manifest["models"][_MODEL_ROLE[g]] = manifest_identity
        del scorer
    if group.rank == 0:
        # An implicit reward is computed from the current scores whenever they are merged.
        kept = recorded.get("reward", {}).get("source") if reward_spec is None else None
        implicit = (
            reward_spec if reward_spec is not None else (parse_reward(kept) if kept else None)
        )
        implicit = implicit if implicit is not None and implicit.computed else None
        _merge(
            run, manifest, record, samples, n_batches, implicit, hashes, chosen.implicit_reward_sign
        )
        run.write_manifest(manifest)
    group.barrier()
    return {
        "rank": group.rank,
        "world_size": group.world,
        "run": str(run.path),
        "strings": n_rows,
        "columns": sorted(columns),
        "seconds": time.perf_counter() - start,
    }


def recorded_from_generation(manifest: dict[str, Any]) -> bool:
    """Whether the run's log pi and log q are generate's (not scored again by a model)."""
    aligned = manifest["settings"].get("score", {}).get("aligned")
    return aligned is None or aligned.get("from") == "generation"


def _from_generation(samples: pa.Table, clamp: float | None) -> dict[str, Any]:
    """The aligned group's columns from generate's per-token log pi and log q, summed again
    with the clamp."""
    from ..models.scoring import clamped_sum

    pi = samples.column("token_logp_aligned").to_pylist()
    q = samples.column("token_logp_adapted").to_pylist()
    return {
        "logp_aligned": [clamped_sum(t, clamp) for t in pi],
        "logp_adapted": [clamped_sum(t, clamp) for t in q],
        "token_logp_aligned": pi,
        "token_logp_adapted": q,
        "n_outside_support": [int(np.isneginf(np.asarray(t, dtype=float)).sum()) for t in q],
    }


def _run_group(
    run: RunDir,
    g: str,
    scorer: Callable[[list[dict[str, Any]]], pa.Table],
    samples: pa.Table,
    digest: str,
    n_batches: int,
    rows_in: Callable[[int], int],
    group: Ranks,
    progress: bool | None,
) -> None:
    size = rows_in(0)

    def compute(k: int) -> pa.Table:
        return scorer(samples.slice(k * size, rows_in(k)).to_pylist())

    run_shards(
        run.shards(f"score-{g}"),
        settings_hash=digest,
        n_batches=n_batches,
        expected_rows=rows_in,
        compute=compute,
        group=group,
        description=f"score {g}",
        show=progress,
    )


def _merge(
    run: RunDir,
    manifest: dict[str, Any],
    record: dict[str, Any],
    samples: pa.Table,
    n_batches: int,
    implicit: Any,
    hashes: dict[str, str],
    sign: int = 1,
) -> None:
    """scores.parquet from every complete group's shards (the implicit reward computed here)."""
    groups = {g: info for g, info in record["groups"].items() if g in SCORER_NAMES}
    for g in hashes:
        groups[g] = {**groups.get(g, {}), "settings_hash": hashes[g]}
    table = samples.select(list(KEY_COLUMNS))
    present: list[str] = []
    aligned_settings = manifest["settings"].get("score", {}).get("aligned") or {}
    for g in SCORER_NAMES:
        if g not in groups or (g == "reward" and implicit is not None):
            continue
        if g == "aligned" and aligned_settings.get("from") == "generation":
            part = pa.table(
                _from_generation(samples, aligned_settings["clamp_token_nll"]),
                schema=SCORE_GROUPS["aligned"],
            )
            for name in part.column_names:
                table = table.append_column(name, part.column(name))
            groups[g]["status"] = "complete"
            present.append(g)
            continue
        shards = run.shards(f"score-{g}")
        missing = [k for k in range(n_batches) if not shards.path(k).is_file()]
        if missing:
            raise RunDirError(
                f"the {g} scores of {str(run.path)!r} lack {len(missing)} shard(s) in "
                f"{shards.directory}; score the {g} again (the same command with `--replace`)"
            )
        part = shards.read(range(n_batches), SCORE_GROUPS[g])
        for name in part.column_names:
            table = table.append_column(name, part.column(name))
        groups[g]["status"] = "complete"
        present.append(g)
    if implicit is not None:
        if "logp_prior" not in table.column_names:
            raise ConfigError("`--reward implicit:BETA` needs log p: also give `--prior`")
        aligned = (table if "logp_aligned" in table.column_names else samples).column(
            "logp_aligned"
        )
        from ..models import implicit_reward

        # The authors' DPO figure used log p - log pi: the sign is the semantics'.
        values = sign * implicit_reward(
            implicit, aligned.to_numpy(), table.column("logp_prior").to_numpy()
        )
        table = table.append_column("reward", pa.array(values, pa.float64()))
        groups["reward"]["status"] = "complete"
        present.append("reward")
    table = table.cast(scores_schema(present))
    digest = settings_hash({g: groups[g]["settings_hash"] for g in present})
    run.write_table(run.scores_path, table, digest)
    record.update(
        status="complete",
        groups=groups,
        columns=[c for c in table.column_names if c not in KEY_COLUMNS],
        overrides=[c for c in _OVERRIDES if "aligned" in present],
        settings_hash=digest,
    )
    manifest["stages"]["score"] = record
    manifest["stages"].pop("analyze", None)
