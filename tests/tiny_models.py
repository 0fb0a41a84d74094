"""Tiny local models for the tests: a byte-level BPE tokenizer trained here with `tokenizers`, and
GPT-2 and Llama architectures with random weights, saved with ``save_pretrained`` so that the tests
load them through the same code path users take. No network."""

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


def make_tokenizer(directory: Path, *, add_bos: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
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


def save_tiny_model(directory: Path, architecture: str = "gpt2", seed: int = 0) -> Path:
    """A random-weight model of the given architecture ("gpt2" or "llama") with its tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(directory, add_bos=architecture == "llama")
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(seed)
    if architecture == "gpt2":
        config = GPT2Config(n_positions=256, n_embd=32, n_layer=2, n_head=2, **ids)
        model = GPT2LMHeadModel(config)
    elif architecture == "llama":
        config = LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            **ids,
        )
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(architecture)
    # Larger weights than the default init: peakier, more varied next-token distributions.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    model.save_pretrained(directory)
    return directory
