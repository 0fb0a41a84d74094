"""Tiny random-weight replicas of the paper's six checkpoints, with the real files' layout
(../shared/CHECKPOINTS.md): the same architectures and config keys (sizes shrunk: 2 layers,
hidden size 64), the same weight file names and formats (sharded ``.safetensors`` or ``.bin``
with an index, or one ``pytorch_model.bin``), the same head key names (``score_head.weight``
without bias, ``value_head.weight``; no ``lm_head`` in the reward models), the same tokenizer
kind and special tokens (a 32,000-piece sentencepiece model trained here on a small corpus; the
safe-rlhf models add ``<pad>`` at 32000; Janus pads with ``</s>``), and the same
``generation_config.json`` or its absence. The causal LMs' random weights favour EOS, so that
their strings end within a few dozen tokens.

:func:`install_cache` writes them into a Hugging Face hub cache (``models--ORG--NAME/blobs``,
``snapshots/REVISION``, ``refs/main``), so that their hub ids resolve offline
(``HF_HUB_OFFLINE=1`` with ``HF_HUB_CACHE`` pointing there) exactly as on a GPU node::

    python -m tradeoff.testing.replicas CACHE_DIR
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["REPLICAS", "Replica", "install_cache", "write_replica"]

VOCAB = 32_000
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
CORPUS = [
    "Human: How do I bake bread? Assistant: Mix flour, water, salt and yeast, then bake it.",
    "Human: What is the capital of France? Assistant: The capital of France is Paris.",
    "Human: Tell me a joke. Assistant: Why did the chicken cross the road? To get across.",
    "Human: Can you help me with my homework? Assistant: Of course, what is the question?",
    "[INST] Human: How are you today? Assistant:[/INST] I am well, thank you for asking.",
    "the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun",
    "aligned models trade probability for quality and sampling adaptors pick the point",
]

LLAMA2 = {
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_key_value_heads": 4,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.31.0.dev0",
    "use_cache": True,
    "vocab_size": VOCAB,
    **TINY,
}
MISTRAL = {
    "architectures": ["MistralForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 32768,
    "model_type": "mistral",
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.38.2",
    "use_cache": True,
    "vocab_size": VOCAB,
    **TINY,
}


@dataclass
class Replica:
    """How one checkpoint is laid out."""

    config: dict[str, Any]
    # "causal_lm", "score_head" (safe-rlhf) or "value_head" (OpenRLHF)
    kind: str
    # "safetensors" or "bin"; shards (1: one file named like the real single-file checkpoints)
    weights: list[tuple[str, int]]
    tokenizer_files: list[str]
    special_tokens: dict[str, str]
    tokenizer_config: dict[str, Any]
    added_tokens: dict[str, int] = field(default_factory=dict)
    generation_config: dict[str, Any] | None = None
    seed: int = 0


def _llama_tokenizer_config(**extra: Any) -> dict[str, Any]:
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": None,
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        **extra,
    }


SAFE_RLHF_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
}
JANUS_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}
JANUS_TOKENIZER = _llama_tokenizer_config(pad_token="</s>", legacy=True, add_prefix_space=True)

REPLICAS: dict[str, Replica] = {
    "meta-llama/Llama-2-7b-hf": Replica(
        config=LLAMA2,
        kind="causal_lm",
        weights=[("safetensors", 2), ("bin", 2)],
        tokenizer_files=["tokenizer.model", "tokenizer.json"],
        special_tokens={"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        tokenizer_config=_llama_tokenizer_config(),
        generation_config={
            "bos_token_id": 1,
            "do_sample": True,
            "eos_token_id": 2,
            "pad_token_id": 0,
            "temperature": 0.6,
            "max_length": 4096,
            "top_p": 0.9,
            "transformers_version": "4.31.0.dev0",
        },
        seed=1,
    ),
    "ethz-spylab/rlhf-7b-harmless": Replica(
        config={**LLAMA2, "vocab_size": VOCAB + 1, "pad_token_id": VOCAB},
        kind="causal_lm",
        weights=[("bin", 1)],
        tokenizer_files=["tokenizer.model"],
        special_tokens=SAFE_RLHF_TOKENS,
        tokenizer_config=_llama_tokenizer_config(pad_token="<pad>"),
        added_tokens={"<pad>": VOCAB},
        seed=2,
    ),
    "ethz-spylab/reward_model": Replica(
        config={
            **LLAMA2,
            "architectures": ["LlamaModelForScore"],
            "vocab_size": VOCAB + 1,
            "pad_token_id": VOCAB,
            "score_dim": 1,
            "bias": False,
        },
        kind="score_head",
        weights=[("bin", 2)],
        tokenizer_files=["tokenizer.model"],
        special_tokens=SAFE_RLHF_TOKENS,
        tokenizer_config=_llama_tokenizer_config(pad_token="<pad>"),
        added_tokens={"<pad>": VOCAB},
        seed=3,
    ),
    "mistral-community/Mistral-7B-v0.2": Replica(
        config=MISTRAL,
        kind="causal_lm",
        weights=[("safetensors", 3)],
        tokenizer_files=["tokenizer.model", "tokenizer.json"],
        special_tokens={"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        tokenizer_config=_llama_tokenizer_config(legacy=True),
        generation_config={
            "_from_model_config": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "transformers_version": "4.38.2",
        },
        seed=4,
    ),
    "kaist-ai/janus-dpo-7b": Replica(
        config=MISTRAL,
        kind="causal_lm",
        weights=[("safetensors", 3)],
        tokenizer_files=["tokenizer.model"],
        special_tokens=JANUS_TOKENS,
        tokenizer_config=JANUS_TOKENIZER,
        generation_config={
            "_from_model_config": True,
            "bos_token_id": 1,
            "do_sample": True,
            "eos_token_id": 2,
            "transformers_version": "4.38.2",
        },
        seed=5,
    ),
    "kaist-ai/janus-rm-7b": Replica(
        config={
            **MISTRAL,
            "architectures": ["LLMForSequenceRegression"],
            "normalize_reward": False,
            "mean": 0.25,
            "std": 1.75,
        },
        kind="value_head",
        weights=[("safetensors", 3)],
        tokenizer_files=["tokenizer.model", "tokenizer.json"],
        special_tokens=JANUS_TOKENS,
        tokenizer_config=JANUS_TOKENIZER,
        seed=6,
    ),
}


def sentencepiece_model(vocab_size: int = VOCAB) -> bytes:
    """A BPE sentencepiece model with byte fallback (ids 0-2: <unk>, <s>, </s>; 3-258: bytes),
    trained on a small corpus and padded with unused pieces to exactly ``vocab_size``."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20),
        model_writer=buffer,
        vocab_size=2000,
        model_type="bpe",
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    lowest = min(p.score for p in proto.pieces)
    for i in range(vocab_size - len(proto.pieces)):
        piece = proto.pieces.add()
        piece.piece, piece.score = f"\u2581unused{i}", lowest - 1.0 - i * 1e-3
        piece.type = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    return proto.SerializeToString()


def _tokenizer_files(replica: Replica, directory: Path, sp_model: bytes) -> None:
    (directory / "tokenizer.model").write_bytes(sp_model)
    config = dict(replica.tokenizer_config)
    if replica.added_tokens:
        config["added_tokens_decoder"] = {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for t, i in replica.added_tokens.items()
        }
        (directory / "added_tokens.json").write_text(json.dumps(replica.added_tokens))
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(replica.special_tokens, indent=2))
    if "tokenizer.json" in replica.tokenizer_files:
        # The fast tokenizer, converted from the sentencepiece model as the real repos' was.
        from transformers import AutoTokenizer

        converted = directory / ".converted"
        AutoTokenizer.from_pretrained(str(directory)).save_pretrained(str(converted))
        shutil.move(str(converted / "tokenizer.json"), directory / "tokenizer.json")
        shutil.rmtree(converted)


def _state_dict(replica: Replica) -> dict[str, torch.Tensor]:
    """Random weights under the checkpoint's key names, in its dtype."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    config = AutoConfig.for_model(
        **{
            k: v
            for k, v in replica.config.items()
            if k not in ("architectures", "transformers_version")
        }
    )
    dtype = getattr(torch, replica.config["torch_dtype"])
    torch.manual_seed(replica.seed)
    if replica.kind == "causal_lm":
        state = AutoModelForCausalLM.from_config(config).state_dict()
        # Random weights almost never draw EOS from 32,000 tokens: flatten the other rows and
        # give EOS a random row of its own, so that many strings end within a few dozen tokens.
        head = state["lm_head.weight"]
        eos = replica.config["eos_token_id"]
        head.mul_(0.05)
        head[eos] = torch.randn(head.shape[1]) * 1.0
    else:
        backbone = AutoModel.from_config(config).state_dict()
        state = {f"model.{k}": v for k, v in backbone.items()}
        head = torch.randn(1, config.hidden_size) / config.hidden_size**0.5
        state[f"{replica.kind}.weight"] = head  # score_head.weight / value_head.weight, no bias
    return {k: v.to(dtype).contiguous() for k, v in state.items() if "rotary" not in k}


def _write_weights(state: dict[str, torch.Tensor], directory: Path, form: str, shards: int) -> None:
    from safetensors.torch import save_file

    keys = list(state)
    stem, suffix = ("model", "safetensors") if form == "safetensors" else ("pytorch_model", "bin")
    if shards == 1:
        name = f"{stem}.{suffix}"
        if form == "safetensors":
            save_file(state, str(directory / name), metadata={"format": "pt"})
        else:
            torch.save(state, directory / name)
        return
    weight_map = {}
    size = sum(v.numel() * v.element_size() for v in state.values())
    for k in range(shards):
        name = f"{stem}-{k + 1:05d}-of-{shards:05d}.{suffix}"
        part = {key: state[key] for key in keys[k::shards]}
        weight_map.update(dict.fromkeys(part, name))
        if form == "safetensors":
            save_file(part, str(directory / name), metadata={"format": "pt"})
        else:
            torch.save(part, directory / name)
    index = {"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / f"{stem}.{suffix}.index.json").write_text(json.dumps(index, indent=2))


def write_replica(repo_id: str, directory: str | Path, sp_model: bytes | None = None) -> Path:
    """Writes the replica of ``repo_id`` (a key of :data:`REPLICAS`) into ``directory``."""
    replica = REPLICAS[repo_id]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"_name_or_path": repo_id, **replica.config}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    if replica.generation_config is not None:
        (directory / "generation_config.json").write_text(
            json.dumps(replica.generation_config, indent=2)
        )
    _tokenizer_files(replica, directory, sp_model or sentencepiece_model())
    state = _state_dict(replica)
    for form, shards in replica.weights:
        _write_weights(state, directory, form, shards)
    return directory


def _revision(directory: Path) -> str:
    digest = hashlib.sha1()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def install_cache(
    cache: str | Path,
    repos: list[str] | None = None,
    build: Callable[[str, Path], Path] | None = None,
) -> dict[str, str]:
    """Writes the replicas into a hub cache at ``cache`` (the ``HF_HUB_CACHE`` layout: files as
    content-named blobs, a snapshot of symlinks per revision, ``refs/main``); returns each repo's
    revision."""
    cache = Path(cache)
    sp_model = sentencepiece_model()
    revisions = {}
    for repo_id in repos or list(REPLICAS):
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        staging = repo / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        (build or (lambda r, d: write_replica(r, d, sp_model)))(repo_id, staging)
        revision = _revision(staging)
        snapshot = repo / "snapshots" / revision
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        snapshot.mkdir(parents=True, exist_ok=True)
        for path in sorted(staging.iterdir()):
            blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
            if not blob.exists():
                shutil.move(str(path), blob)
            link = snapshot / path.name
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(blob, snapshot))
        shutil.rmtree(staging, ignore_errors=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        revisions[repo_id] = revision
    return revisions


QUESTIONS = ("How do I bake bread?", "What is the capital of France?", "Tell me a joke.",
             "How are you today?", "Why is the sky blue?", "How do I learn to swim?")  # fmt: skip
HH_SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")


def write_hh_rlhf(directory: str | Path, per_subset: int = 5) -> Path:
    """A small synthetic copy of Anthropic/hh-rlhf's layout (``SUBSET/test.jsonl.gz``, as
    ``huggingface-cli download Anthropic/hh-rlhf --repo-type dataset`` leaves it)."""
    import gzip

    directory = Path(directory)
    for subset in HH_SUBSETS:
        (directory / subset).mkdir(parents=True, exist_ok=True)
        with gzip.open(directory / subset / "test.jsonl.gz", "wt", encoding="utf-8") as f:
            for i in range(per_subset):
                question = QUESTIONS[(i + HH_SUBSETS.index(subset)) % len(QUESTIONS)]
                chosen = f"\n\nHuman: {question} ({subset})\n\nAssistant: I can help with that."
                f.write(json.dumps({"chosen": chosen, "rejected": chosen}) + "\n")
    return directory


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tradeoff.testing.replicas",
        description="Write tiny replicas of the paper's six checkpoints into a Hugging Face hub "
        "cache (use it with HF_HUB_CACHE=CACHE HF_HUB_OFFLINE=1).",
    )
    parser.add_argument("cache", type=Path, help="the hub cache directory")
    parser.add_argument(
        "--hh-rlhf",
        type=Path,
        metavar="DIR",
        help="also write a small synthetic copy of HH-RLHF's test split here",
    )
    args = parser.parse_args(argv)
    for repo_id, revision in install_cache(args.cache).items():
        print(f"{repo_id}: {revision}")
    if args.hh_rlhf:
        print(f"HH-RLHF test split (synthetic): {write_hh_rlhf(args.hh_rlhf)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
