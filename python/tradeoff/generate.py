"""Generation with sampling adaptors: the model's forward pass with a KV cache in torch, the
adaptors and the draw in Rust (:func:`tradeoff.sample`).

Work is a list of items (prompt, sample index, adaptor configuration), cut into batches in one
canonical order; a batch's rows may have different configurations (one chain per row). Row r's
token at step t is a pure function of ``(seed, stream, t)`` with the stream derived from
``(prompt id, sample index, configuration)``, so a string does not depend on the batch it was in,
the batch size, the process that ran it, or a resume point.

Each step: the last position's logits -> float32 on the CPU -> ``tradeoff.sample`` (adapt, draw,
and the log-probabilities of the drawn token under the model, ``log pi``, and under the adapted
distribution, ``log q``) -> tokens back to the device. Finished rows leave the batch and its cache.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .adaptors import AdaptorChain
from .adaptors import sample as sample_tokens

__all__ = [
    "GenerationSettings",
    "Generator",
    "Prompt",
    "WorkItem",
    "format_prompt",
    "make_batches",
    "stream_id",
    "work_items",
]


@dataclass(frozen=True)
class Prompt:
    """A prompt and its id (the id keys the random streams; keep it stable across runs)."""

    id: str
    text: str


@dataclass(frozen=True, order=True)
class WorkItem:
    """One string to generate: indices into the prompts, samples and configurations."""

    prompt_index: int
    config_index: int
    sample_index: int


def work_items(n_prompts: int, samples_per_prompt: int, n_configs: int) -> list[WorkItem]:
    """Every (prompt, configuration, sample) in the canonical order."""
    return [
        WorkItem(p, c, s)
        for p in range(n_prompts)
        for c in range(n_configs)
        for s in range(samples_per_prompt)
    ]


def make_batches(items: Sequence[WorkItem], batch_size: int) -> list[list[WorkItem]]:
    """Consecutive batches of ``batch_size`` items (the last may be shorter). Batch k is the same
    in every run with the same items and batch size, which makes resumed and multi-process runs
    reproduce a single uninterrupted run exactly."""
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size}")
    return [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def stream_id(prompt_id: str, sample_index: int, config: str) -> int:
    """The 64-bit random stream of one string, from its prompt id, sample index and configuration
    (a hash, so it does not depend on positions in any list)."""
    key = f"{prompt_id}\x1f{sample_index}\x1f{config}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def format_prompt(tokenizer: Any, template: str, prompt: str) -> str:
    """The model's context for a prompt: ``template.format(prompt=...)``, or the tokenizer's chat
    template (one user turn, generation prompt added) when ``template == "chat"``."""
    if template == "chat":
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("`template` is 'chat' but the tokenizer has no chat template")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    if "{prompt}" not in template:
        raise ValueError(f"`template` must contain '{{prompt}}' or be 'chat', got {template!r}")
    return template.replace("{prompt}", prompt)


@dataclass
class GenerationSettings:
    """How strings end and how they are drawn."""

    max_new_tokens: int
    seed: int
    template: str = "{prompt}"
    stop_strings: tuple[str, ...] = ()
    # None: the model's generation config, else the tokenizer's EOS.
    eos_token_ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"`max_new_tokens` must be an integer >= 1, got {self.max_new_tokens}")
        if not 0 <= self.seed < 2**64:
            raise ValueError(f"`seed` must be an integer in [0, 2**64), got {self.seed}")


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    ids: Any = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return ()
    return tuple(int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids]))


def _new_cache(model: Any) -> Any:
    """An empty dynamic KV cache that the forward passes fill in place."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers 4.x
        return DynamicCache()


@dataclass
class _Row:
    item: WorkItem
    stream: int
    context_ids: list[int]
    tokens: list[int] = field(default_factory=list)
    logp_aligned: list[float] = field(default_factory=list)
    logp_adapted: list[float] = field(default_factory=list)
    stop_reason: str = "length"


class Generator:
    """Generates batches of work items with one model and a list of adaptor configurations."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompts: Sequence[Prompt],
        chains: Sequence[AdaptorChain | str],
        settings: GenerationSettings,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.chains = [AdaptorChain.coerce(c) for c in chains]
        self.configs = [str(c) or "ancestral" for c in self.chains]
        # transformers 5 names the forward argument `cache`; 4.x named it `past_key_values`.
        parameters = inspect.signature(model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are needed after the prompt (older names, or none).
        self._last_logits_only = next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in parameters),
            {},
        )
        self.settings = settings
        self.eos_ids = settings.eos_token_ids or _eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.eos_ids[0] if self.eos_ids else 0
        self.device = next(model.parameters()).device
        self.contexts = [format_prompt(tokenizer, settings.template, p.text) for p in self.prompts]
        self._context_ids: dict[int, list[int]] = {}

    def context_ids(self, prompt_index: int) -> list[int]:
        if prompt_index not in self._context_ids:
            ids = self.tokenizer(self.contexts[prompt_index], add_special_tokens=True)["input_ids"]
            if not ids:
                raise ValueError(
                    f"prompt {self.prompts[prompt_index].id!r} tokenizes to no tokens; "
                    "give a non-empty prompt or template"
                )
            self._context_ids[prompt_index] = list(ids)
        return self._context_ids[prompt_index]

    @torch.inference_mode()
    def run_batch(self, items: Sequence[WorkItem]) -> list[dict[str, Any]]:
        """Generates one batch and returns one record per item, in the items' order."""
        rows = [
            _Row(
                i,
                stream_id(
                    self.prompts[i.prompt_index].id, i.sample_index, self.configs[i.config_index]
                ),
                self.context_ids(i.prompt_index),
            )
            for i in items
        ]
        width = max(len(r.context_ids) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            input_ids[b, width - len(r.context_ids) :] = torch.tensor(r.context_ids)
            mask[b, width - len(r.context_ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = _new_cache(self.model)
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **self._last_logits_only,
            **{self._cache_argument: cache},
        )
        logits = out.logits[:, -1, :]
        last_position = positions[:, -1]
        active = list(range(len(rows)))
        streams = np.array([r.stream for r in rows], dtype=np.uint64)
        eos = set(self.eos_ids)
        for step in range(self.settings.max_new_tokens):
            draw = sample_tokens(
                logits.float().cpu(),
                [self.chains[rows[b].item.config_index] for b in active],
                seed=self.settings.seed,
                streams=streams[active],
                steps=step,
            )
            tokens = draw.tokens.tolist()
            keep: list[int] = []
            for j, b in enumerate(active):
                row = rows[b]
                row.tokens.append(tokens[j])
                row.logp_aligned.append(float(draw.logp_base[j]))
                row.logp_adapted.append(float(draw.logp_adapted[j]))
                if tokens[j] in eos:
                    row.stop_reason = "eos"
                elif self.settings.stop_strings and self._hit_stop_string(row):
                    row.stop_reason = "stop_string"
                else:
                    keep.append(j)
            if not keep or step + 1 == self.settings.max_new_tokens:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask = mask[index]
                last_position = last_position[index]
                active = [active[j] for j in keep]
            next_ids = torch.tensor([[rows[b].tokens[-1]] for b in active], device=self.device)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            last_position = last_position + 1
            out = self.model(
                input_ids=next_ids,
                attention_mask=mask,
                position_ids=last_position[:, None],
                use_cache=True,
                **{self._cache_argument: cache},
            )
            logits = out.logits[:, -1, :]
        return [self._record(r) for r in rows]

    def _hit_stop_string(self, row: _Row) -> bool:
        # Decode only the tail that can hold a stop string just completed by the last token.
        text = self.tokenizer.decode(row.tokens[-16:], skip_special_tokens=False)
        return any(s in text for s in self.settings.stop_strings)

    def _record(self, row: _Row) -> dict[str, Any]:
        item = row.item
        prompt = self.prompts[item.prompt_index]
        finished = row.stop_reason != "length"
        return {
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "context": self.contexts[item.prompt_index],
            "config": self.configs[item.config_index],
            "sample_index": item.sample_index,
            "text": self.tokenizer.decode(row.tokens, skip_special_tokens=True),
            "token_ids": row.tokens,
            "n_tokens": len(row.tokens),
            "finished": finished,
            "stop_reason": row.stop_reason,
            "logp_aligned": float(np.sum(row.logp_aligned)),
            "logp_adapted": float(np.sum(row.logp_adapted)),
            "token_logp_aligned": row.logp_aligned,
            "token_logp_adapted": row.logp_adapted,
        }

    def run(self, batches: Iterable[Sequence[WorkItem]]) -> Iterable[list[dict[str, Any]]]:
        for batch in batches:
            yield self.run_batch(batch)


# --- the generate stage of a run directory -------------------------------------------------------


def distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size): from torch.distributed under torchrun (initialised here, gloo on CPU
    and NCCL on CUDA), else (0, 1)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def generate_run(
    out: str,
    *,
    aligned: str,
    prompts: str,
    adaptors: Sequence[str],
    samples_per_prompt: int,
    max_new_tokens: int,
    seed: int,
    template: str = "{prompt}",
    batch_size: int = 16,
    dtype: str = "float32",
    device: str = "cpu",
    stop_strings: Sequence[str] = (),
    eos_token_ids: Sequence[int] | None = None,
    max_prompts: int | None = None,
    trust_remote_code: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generates ``samples_per_prompt`` strings per prompt and adaptor configuration into the run
    directory ``out`` (``samples.parquet``); resumes an interrupted run with the same settings;
    under torchrun, splits the batches across processes. Returns a summary."""
    import os
    import sys
    import time

    from tqdm import tqdm

    from .models import load_causal_lm
    from .prompts import load_prompts
    from .store import RunDir

    if samples_per_prompt < 1:
        raise ValueError(f"`samples_per_prompt` must be an integer >= 1, got {samples_per_prompt}")
    if not adaptors:
        raise ValueError("`adaptors` must name at least one configuration (e.g. ancestral)")
    chains = [AdaptorChain.parse(spec) for spec in adaptors]
    configs = [str(c) or "ancestral" for c in chains]
    if len(set(configs)) != len(configs):
        raise ValueError(f"`adaptors` lists a configuration twice: {configs}")
    rank, world = distributed_rank_and_size()
    if world > 1 and device.startswith("cuda"):
        device = f"cuda:{os.environ.get('LOCAL_RANK', rank)}"
    prompt_list = load_prompts(prompts, limit=max_prompts)
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens,
        seed=seed,
        template=template,
        stop_strings=tuple(stop_strings),
        eos_token_ids=tuple(eos_token_ids) if eos_token_ids else None,
    )
    lm = load_causal_lm(aligned, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    run = RunDir(out)
    recorded = {
        "prompts": prompts,
        "prompts_sha256": _file_sha256(prompts.removeprefix("hh-rlhf:")),
        "n_prompts": len(prompt_list),
        "adaptors": configs,
        "samples_per_prompt": samples_per_prompt,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "template": template,
        "batch_size": batch_size,
        "stop_strings": list(stop_strings),
        "eos_token_ids": list(eos_token_ids) if eos_token_ids else None,
        "dtype": dtype,
        "aligned_config_sha256": lm.identity["config_sha256"],
    }
    manifest = run.start("generate", recorded, {"aligned": lm.identity})
    if rank == 0:
        run.write_manifest(manifest)
        run.clean_temporary("generate")
    _barrier(world)

    generator = Generator(lm.model, lm.tokenizer, prompt_list, chains, settings)
    items = work_items(len(prompt_list), samples_per_prompt, len(chains))
    batches = make_batches(items, batch_size)
    done = run.done_batches("generate")
    mine = [k for k in range(len(batches)) if k % world == rank and k not in done]
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(
        total=sum(len(batches[k]) for k in mine),
        desc=f"generate (rank {rank})" if world > 1 else "generate",
        unit="str",
        disable=not show,
        file=sys.stderr,
    )
    start = time.perf_counter()
    tokens = 0
    for k in mine:
        records = generator.run_batch(batches[k])
        run.write_shard("generate", k, records)
        tokens += sum(r["n_tokens"] for r in records)
        bar.update(len(records))
        bar.set_postfix(tok_per_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}")
    bar.close()
    seconds = time.perf_counter() - start
    _barrier(world)
    summary = {
        "rank": rank,
        "world_size": world,
        "run": str(run.path),
        "strings": len(items),
        "configs": configs,
        "batches": len(batches),
        "batches_run_here": len(mine),
        "batches_resumed": len(done),
        "tokens_generated_here": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds if seconds > 0 else None,
        "samples": str(run.samples_path),
    }
    if rank == 0:
        manifest = run.read_manifest() or manifest
        complete = manifest["stages"].get("generate", {}).get("status") == "complete"
        if not (complete and not mine and run.samples_path.exists()):
            run.merge("generate", len(batches))
            # The samples were rewritten: later stages must run again.
            for stage in ("score", "analyze"):
                manifest["stages"].pop(stage, None)
        manifest["stages"]["generate"] = {
            "status": "complete",
            "n_strings": len(items),
            "n_batches": len(batches),
            "world_size": world,
        }
        run.write_manifest(manifest)
    _barrier(world)
    return summary
