"""Tiny local models, for trying the pipeline without a model hub and for the tests: a byte-level
BPE tokenizer trained here with ``tokenizers``, GPT-2 and Llama architectures with random weights,
and reward models in both supported layouts, all saved with ``save_pretrained`` so that they load
through the same code path as real models. No network.

    python -m tradeoff.testing.tiny DIR     # DIR/aligned, DIR/prior, DIR/reward, DIR/prompts.jsonl
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

CORPUS = [
    "Human: How do I bake bread? Assistant: Mix flour, water, salt and yeast, then bake it.",
    "Human: What is the capital of France? Assistant: The capital of France is Paris.",
    "Human: Tell me a joke. Assistant: Why did the chicken cross the road? To get across.",
    "Human: How are you today? Assistant: I am well, thank you for asking.",
    "the quick brown fox jumps over the lazy dog while the cat sleeps in the sun",
    "aligned models trade probability for quality and sampling adaptors pick the point",
] * 20

SPECIAL = ["<pad>", "<bos>", "<eos>"]


def make_tokenizer(
    directory: Path, *, add_bos: bool, vocab_size: int = 400
) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    if add_bos:
        bos = tok.token_to_id("<bos>")
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    fast.save_pretrained(directory)
    return fast


def save_tiny_model(
    directory: Path, architecture: str = "gpt2", seed: int = 0, vocab_size: int = 400
) -> Path:
    """A random-weight model of the given architecture ("gpt2" or "llama") with its tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(directory, add_bos=architecture == "llama", vocab_size=vocab_size)
    torch.manual_seed(seed)
    if architecture == "gpt2":
        config = GPT2Config(
            n_positions=256,
            n_embd=32,
            n_layer=2,
            n_head=2,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = GPT2LMHeadModel(config)
    elif architecture == "llama":
        model = LlamaForCausalLM(tiny_llama_config(tokenizer))
    else:
        raise ValueError(architecture)
    # Larger weights than the default init: peakier, more varied next-token distributions.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    model.save_pretrained(directory)
    return directory


def tiny_llama_config(tokenizer: PreTrainedTokenizerFast, **extra) -> LlamaConfig:
    """Two layers, 32 wide, grouped-query attention: small, but every code path of a Llama."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def save_sequence_classification_reward(directory: Path, seed: int = 1) -> Path:
    """Reward source (a): a Llama sequence classifier with one label."""
    from transformers import LlamaForSequenceClassification

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(directory, add_bos=True)
    torch.manual_seed(seed)
    LlamaForSequenceClassification(tiny_llama_config(tokenizer, num_labels=1)).save_pretrained(
        directory
    )
    return directory


def save_score_head_reward(directory: Path, seed: int = 2) -> Path:
    """Reward source (b), the safe-rlhf layout: one state dict with the backbone under `model.`
    and a linear `score_head`, architectures = ["LlamaForScore"]."""
    from safetensors.torch import save_file
    from transformers import LlamaModel

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(directory, add_bos=True)
    config = tiny_llama_config(tokenizer)
    config.architectures = ["LlamaForScore"]
    torch.manual_seed(seed)
    backbone = LlamaModel(config)
    head = torch.nn.Linear(config.hidden_size, 1)
    state = {f"model.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    state.update({f"score_head.{k}": v.contiguous() for k, v in head.state_dict().items()})
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(directory)
    return directory


PROMPTS = [
    "How do I bake bread?",
    "What is the capital of France?",
    "Tell me a joke.",
    "How are you today?",
    "What should I cook for dinner?",
    "Why is the sky blue?",
    "How do I learn to swim?",
    "What is a good name for a cat?",
]


def make_demo(directory: Path) -> dict[str, Path]:
    """An aligned and a prior model (Llama architecture, same tokenizer), a score-head reward
    model and a prompt file, under ``directory``."""
    import json

    directory = Path(directory)
    paths = {
        "aligned": save_tiny_model(directory / "aligned", "llama", seed=0),
        "prior": save_tiny_model(directory / "prior", "llama", seed=1),
        "reward": save_score_head_reward(directory / "reward", seed=2),
        "prompts": directory / "prompts.jsonl",
    }
    lines = [json.dumps({"id": f"q{i}", "prompt": p}) for i, p in enumerate(PROMPTS)]
    paths["prompts"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tradeoff.testing.tiny",
        description="Write tiny random-weight models (aligned, prior, reward) and a prompt file.",
    )
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    for name, path in make_demo(args.directory).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
