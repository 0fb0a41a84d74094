"""The vLLM backend (``--backend vllm``; ``pip install "tradeoff[vllm]"``): vLLM's V1 engine
runs the model (paged KV cache, continuous batching, CUDA graphs, tensor parallelism); the
adaptors and the draw stay tradeoff's.

**One implementation of the adaptors.** A custom logits processor (vLLM's class-based
``LogitsProcessor``, :func:`processor_class`) applies each request's chain and draws its token
with :func:`tradeoff.sample` from the Hugging Face backend's stream ``(seed, stream, step)``,
``step`` the tokens the request has drawn so far, then forces it (every other logit -inf); the
request's own sampling is temperature 1 with no truncation, penalty or bias, so nothing composes
after ours (:func:`tradeoff.generation.forced.check_sampling_params` refuses anything else). The
processor's logic is :class:`~tradeoff.generation.forced.ForcedDraws`, which needs no vLLM.

**The same strings, the same records.** Contexts are tokenised here, as the Hugging Face backend
tokenises them, and given to vLLM as token ids; a string's budget, its end-of-string ids and its
stop strings are the HF backend's (:mod:`tradeoff.generation.strings`): vLLM stops at the EOS ids
(``stop_token_ids``, its own EOS rule off) and the stop strings, and the end is then found again
with the HF backend's rule, so ``stop_reason`` means the same. log pi and log q of each token come
from the processor (a sink file per shard, read when the engine returns).

**Scale.** Under torchrun each rank opens its own engine on its own GPU (``cuda:LOCAL_RANK``;
with ``tensor_parallel_size`` k, GPUs ``k*LOCAL_RANK`` to ``k*LOCAL_RANK + k - 1``); the generate
stage owns shards and resume, and the engine generates one shard at a time, ``batch_size``
strings in flight at most (vLLM's ``max_num_seqs``). ``max_batch_tokens`` and ``overlap`` are the
HF engine's and are not used: vLLM sizes its KV cache from ``gpu_memory_utilization``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adaptors import AdaptorChain
from ..errors import ConfigError
from .backend import GenerationRequest, GenerationSettings
from .forced import ForcedDraws, check_sampling_params, read_sink, request_args
from .strings import StringPlan, end_reason, string_record
from .work import Prompt, WorkItem

__all__ = [
    "INSTALL",
    "PROCESSOR",
    "VLLM_VERSION",
    "EngineRequest",
    "VllmGenerator",
    "check_available",
    "check_request",
    "open_backend",
    "processor_class",
]

# The vLLM release the extra pins (its V1 engine's class-based logits processors and
# SamplingParams.extra_args).
VLLM_VERSION = "0.11.0"
INSTALL = 'pip install "tradeoff[vllm]"'
# The processor as vLLM loads it in its engine and worker processes ("module:attribute").
PROCESSOR = f"{__name__}:TradeoffLogitsProcessor"

# torchrun's variables: vLLM would read them as its own distributed launch.
_TORCHRUN_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_MAX_RESTARTS",
)


def check_available() -> None:
    """vLLM is installed (a one-line ConfigError saying what to install otherwise)."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            f"the vllm backend needs vLLM (version {VLLM_VERSION}), which is not installed: "
            f"{INSTALL}"
        )


@dataclass
class EngineRequest:
    """One work item as a request to the engine: its context's token ids and the keyword
    arguments of its ``vllm.SamplingParams``."""

    item: WorkItem
    key: int
    budget: int
    prompt_token_ids: list[int]
    sampling: dict[str, Any]


@dataclass
class EngineOutput:
    """What the engine returns for one request: its tokens and vLLM's finish reason
    (``stop``, ``length`` or None)."""

    token_ids: list[int]
    finish_reason: str | None = None


# An engine: requests in, one output per request (in the requests' order).
Engine = Callable[[Sequence[EngineRequest]], Sequence[EngineOutput]]


class VllmGenerator(StringPlan):
    """Maps shards of work items to engine requests and the engine's outputs back to records
    (``samples.parquet``'s columns). ``engine`` runs the requests (vLLM's in :func:`open_backend`);
    ``model_eos`` are the model's generation config's EOS ids, ``max_positions`` its positions."""

    def __init__(
        self,
        tokenizer: Any,
        prompts: Sequence[Prompt],
        chains: Sequence[AdaptorChain | str],
        settings: GenerationSettings,
        names: Sequence[str] | None = None,
        *,
        engine: Engine | None = None,
        model_eos: Any = None,
        max_positions: int | None = None,
        sink_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(
            tokenizer,
            prompts,
            chains,
            settings,
            names,
            model_eos=model_eos,
            max_positions=max_positions,
        )
        self.engine = engine
        self._sink_dir = Path(sink_dir) if sink_dir is not None else None
        self.name = "vllm"
        self.identity: dict[str, Any] = {}
        self.info: dict[str, Any] = {}

    def requests(self, items: Sequence[WorkItem], sink: str) -> list[EngineRequest]:
        """One engine request per item: key ``i`` for item ``i`` (keys are per shard, as is the
        sink)."""
        stops = list(self.settings.stop_strings)
        out = []
        for key, item in enumerate(items):
            context = self.context_ids(item.prompt_index)
            budget = self.budget(len(context))
            sampling = {
                "n": 1,
                # The engine's own sampling is the identity: the adaptors are tradeoff's.
                "temperature": 1.0,
                "top_p": 1.0,
                "max_tokens": budget,
                # The HF backend's EOS rule: these ids end a string, vLLM's own EOS does not.
                "ignore_eos": True,
                "stop_token_ids": list(self.eos_ids),
                "stop": stops or None,
                "include_stop_str_in_output": True,
                "skip_special_tokens": False,
                # Text is decoded here, as the HF backend decodes it; vLLM needs it only to
                # find stop strings.
                "detokenize": bool(stops),
                "extra_args": request_args(
                    key=key,
                    chain=self.chains[item.config_index],
                    seed=self.settings.seed,
                    stream=self.stream(item),
                    sink=sink,
                ),
            }
            out.append(EngineRequest(item, key, budget, list(context), sampling))
        return out

    def records(
        self, requests: Sequence[EngineRequest], outputs: Sequence[EngineOutput], sink: str
    ) -> list[dict[str, Any]]:
        """The records of the requests from the engine's outputs and the processor's sink."""
        if len(outputs) != len(requests):
            raise RuntimeError(f"the engine returned {len(outputs)} outputs for {len(requests)}")
        drawn = read_sink(sink, (r.key for r in requests))
        records = []
        for request, output in zip(requests, outputs, strict=True):
            tokens, reason = self._end(list(output.token_ids), request.budget, output)
            steps = drawn[request.key]
            aligned, adapted = [], []
            for step, token in enumerate(tokens):
                record = steps.get(step)
                if record is None or int(record["token"]) != token:
                    raise RuntimeError(
                        f"the engine's token {token} at step {step} of "
                        f"{self.prompts[request.item.prompt_index].id!r} is not the token "
                        "tradeoff drew: the engine's sampler changed it (its temperature, "
                        "truncation or penalties must be off) or the processor was not loaded"
                    )
                aligned.append(float(record["logp_aligned"]))
                adapted.append(float(record["logp_adapted"]))
            item = request.item
            records.append(
                string_record(
                    prompt=self.prompts[item.prompt_index],
                    context=self.contexts[item.prompt_index],
                    config=self.configs[item.config_index],
                    sample_index=item.sample_index,
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                    tokens=tokens,
                    stop_reason=reason,
                    logp_aligned=aligned,
                    logp_adapted=adapted,
                )
            )
        return records

    def _end(self, tokens: list[int], budget: int, output: EngineOutput) -> tuple[list[int], str]:
        """The string as the HF backend ends it: its first token after which EOS, a stop string
        or the budget ends it (vLLM stops at the same token; the rule is applied again so that
        ``stop_reason`` means the same)."""
        for n in range(1, len(tokens) + 1):
            reason = end_reason(
                tokens[:n],
                eos=self.eos_ids,
                stop_strings=self.settings.stop_strings,
                budget=budget,
                tokenizer=self.tokenizer,
            )
            if reason is not None:
                return tokens[:n], reason
        # vLLM stopped before the HF rule would: a stop string the HF rule's window of the last
        # tokens does not see whole, or the model's positions.
        stopped = output.finish_reason == "stop" and self.settings.stop_strings
        return tokens, "stop_string" if stopped else "length"

    def run_batch(self, items: Sequence[WorkItem]) -> list[dict[str, Any]]:
        """Generates one shard: one record per item, in the items' order."""
        if self.engine is None:
            raise RuntimeError("no engine: open the backend with open_backend")
        directory = tempfile.mkdtemp(prefix="tradeoff-vllm-", dir=self._sink_dir)
        try:
            sink = str(Path(directory) / "draws.bin")
            requests = self.requests(items, sink)
            return self.records(requests, self.engine(requests), sink)
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# --- vLLM ------------------------------------------------------------------------------------

_PROCESSOR_CLASS: Any = None


def _tensor_parallel_rank() -> int:
    try:
        from vllm.distributed import get_tensor_model_parallel_rank

        return int(get_tensor_model_parallel_rank())
    except Exception:  # not initialised (a single worker)
        return 0


def processor_class() -> type:
    """vLLM's ``LogitsProcessor`` around :class:`ForcedDraws` (built when first asked for, so
    that this module imports without vLLM; vLLM loads it by name, :data:`PROCESSOR`)."""
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is not None:
        return _PROCESSOR_CLASS
    check_available()
    from vllm.v1.sample.logits_processor import LogitsProcessor

    class TradeoffLogitsProcessor(LogitsProcessor):  # type: ignore[misc, valid-type]
        """tradeoff's adaptors and draw for the requests that carry tradeoff's settings."""

        def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool) -> None:
            import torch

            dtype = getattr(getattr(vllm_config, "model_config", None), "dtype", None)
            self.draws = ForcedDraws(
                # Only one rank of a tensor-parallel group writes the sink (all draw the same).
                record=_tensor_parallel_rank() == 0,
                transfer_dtype=dtype if dtype in (torch.bfloat16, torch.float16) else None,
                pin_memory=bool(is_pin_memory) and torch.device(device).type == "cuda",
            )

        @classmethod
        def validate_params(cls, sampling_params: Any) -> None:
            check_sampling_params(sampling_params)

        def is_argmax_invariant(self) -> bool:
            return False  # it forces a token: greedy requests must see it too

        def update_state(self, batch_update: Any) -> None:
            self.draws.update(batch_update)

        def apply(self, logits: Any) -> Any:
            return self.draws.apply(logits)

    TradeoffLogitsProcessor.__module__ = __name__
    TradeoffLogitsProcessor.__qualname__ = "TradeoffLogitsProcessor"
    _PROCESSOR_CLASS = TradeoffLogitsProcessor
    return _PROCESSOR_CLASS


def __getattr__(name: str) -> Any:
    # vLLM imports PROCESSOR ("module:TradeoffLogitsProcessor") in its own processes.
    if name == "TradeoffLogitsProcessor":
        return processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def engine_devices(device: str, tensor_parallel_size: int) -> list[int] | None:
    """The GPUs (indices among the visible ones) of this process's engine: ``cuda:N`` (a
    torchrun rank's device) takes ``tensor_parallel_size`` GPUs from ``N * size``; ``cuda`` or
    ``auto``: None (vLLM's default, the first ones)."""
    if device in ("cpu",):
        raise ConfigError(
            "the vllm backend runs on CUDA GPUs: give `device` cuda or auto, or use --backend hf "
            "on the CPU"
        )
    if not device.startswith("cuda:"):
        return None
    first = int(device.split(":", 1)[1]) * tensor_parallel_size
    return list(range(first, first + tensor_parallel_size))


@contextlib.contextmanager
def _engine_environment(devices: list[int] | None) -> Iterator[None]:
    """The environment vLLM's processes start in: only this engine's GPUs visible, and no
    torchrun variables (the engine is this rank's own, not one of a distributed launch)."""
    saved = dict(os.environ)
    try:
        if devices is not None:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            names = visible.split(",") if visible else [str(i) for i in range(max(devices) + 1)]
            if max(devices) >= len(names):
                raise ConfigError(
                    f"the engine needs GPUs {devices} but only {len(names)} are visible: lower "
                    "tensor_parallel_size or the number of torchrun processes"
                )
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(names[i] for i in devices)
            for name in _TORCHRUN_VARIABLES:
                os.environ.pop(name, None)
            # The engine in its own process, which starts with the environment above.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _VllmEngine:
    """``vllm.LLM`` with tradeoff's processor, run on token-id prompts."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def __call__(self, requests: Sequence[EngineRequest]) -> list[EngineOutput]:
        from vllm import SamplingParams, TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=r.prompt_token_ids) for r in requests]
        params = [SamplingParams(**r.sampling) for r in requests]
        done = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            EngineOutput(list(o.outputs[0].token_ids), o.outputs[0].finish_reason) for o in done
        ]


def _check_options(options: dict[str, Any]) -> tuple[int, float]:
    size = options.get("tensor_parallel_size", 1)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"`tensor_parallel_size` must be an integer >= 1, got {size!r}")
    memory = options.get("gpu_memory_utilization", 0.9)
    if isinstance(memory, bool) or not isinstance(memory, (int, float)) or not 0 < memory <= 1:
        raise ConfigError(f"`gpu_memory_utilization` must be in (0, 1], got {memory!r}")
    return size, float(memory)


def check_request(request: GenerationRequest) -> None:
    """The HF backend's checks (tokenizer and config.json: EOS ids, contexts within the
    positions), the device and the engine's options."""
    size, _ = _check_options(request.options)
    engine_devices(request.device, size)
    from .hf import check_request as check_contexts

    check_contexts(request)


def _generation_eos(path: str, config: dict[str, Any]) -> Any:
    """The EOS ids of the model's generation config, as the HF backend reads them from the
    loaded model (transformers makes the generation config from config.json when the model has
    no generation_config.json), or None."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path).eos_token_id
    except OSError:
        return config.get("eos_token_id")


def open_backend(request: GenerationRequest) -> VllmGenerator:
    """Starts a vLLM engine for the aligned model, with tradeoff's processor."""
    check_available()
    import vllm

    from ..models import load_tokenizer, model_config, position_limit

    size, memory = _check_options(request.options)
    devices = engine_devices(request.device, size)
    tokenizer = load_tokenizer(request.aligned, trust_remote_code=request.trust_remote_code)
    config = model_config(request.aligned, "aligned model")
    limit = position_limit(config)
    with _engine_environment(devices):
        llm = vllm.LLM(
            model=request.aligned,
            tokenizer=request.aligned,
            dtype=request.dtype,
            trust_remote_code=request.trust_remote_code,
            tensor_parallel_size=size,
            gpu_memory_utilization=memory,
            max_num_seqs=request.settings.batch_size or 256,
            max_model_len=limit,
            # The model's generation config must not change the requests' sampling.
            generation_config="vllm",
            logits_processors=[PROCESSOR],
            seed=0,
        )
    generator = VllmGenerator(
        tokenizer,
        request.prompts,
        request.chains,
        request.settings,
        names=request.names,
        engine=_VllmEngine(llm),
        model_eos=_generation_eos(request.aligned, config),
        max_positions=limit,
    )
    generator.info = {"vllm": vllm.__version__, "tensor_parallel_size": size}
    return generator
