"""Generation throughput: tradeoff's generator against ``model.generate()`` with the same warper.

A Llama-architecture model with random weights (6 layers, 512 wide, a 32,000-token vocabulary,
built here; no download) generates ``--new-tokens`` tokens for ``--batch-size`` prompts of
``--prompt-tokens`` tokens, with top-p 0.9 (transformers: ``TopPLogitsWarper`` through
``generate(do_sample=True, top_k=0, top_p=0.9)``). Both sides generate exactly the same number of
tokens (EOS is disabled). Prints tokens per second, the ratio, and the share of tradeoff's step
time spent in the adaptors and the draw (``tradeoff.sample``, on the CPU). Medians of
``--repeats`` runs after a warm-up. Finishes in a few minutes on 2 CPU cores or one GPU.

    python benches/generate_vs_hf.py                       # CPU
    python benches/generate_vs_hf.py --device cuda --dtype bfloat16 --batch-size 32
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from timing import device_seconds
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import tradeoff
import tradeoff.generation.hf as generation
from tradeoff.generation import GenerationSettings, Prompt, work_items
from tradeoff.generation.hf import Generator

VOCAB = 32_000


def word_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over VOCAB made-up words (w0 .. w31996) and 3 special tokens."""
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    vocab.update({f"w{i}": i + 3 for i in range(VOCAB - 3)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def build_model(dtype: torch.dtype, device: torch.device) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model = build_model(dtype, device)
    tokenizer = word_tokenizer()
    g = torch.Generator().manual_seed(1)
    words = torch.randint(3, VOCAB, (args.batch_size, args.prompt_tokens), generator=g)
    prompts = [
        Prompt(f"p{i}", " ".join(f"w{int(t) - 3}" for t in row)) for i, row in enumerate(words)
    ]
    input_ids = tokenizer([p.text for p in prompts], return_tensors="pt")["input_ids"].to(device)
    attention = torch.ones_like(input_ids)
    n_tokens = args.batch_size * args.new_tokens

    def hf() -> None:
        with torch.no_grad():
            model.generate(
                input_ids,
                attention_mask=attention,
                do_sample=True,
                top_k=0,
                top_p=0.9,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                pad_token_id=0,
            )

    settings = GenerationSettings(max_new_tokens=args.new_tokens, seed=0, eos_token_ids=(-1,))
    ours_gen = Generator(model, tokenizer, prompts, ["top_p=0.9"], settings)
    items = work_items(len(prompts), 1, 1)
    adaptor_seconds = [0.0]
    original = generation.sample_tokens

    def timed_sample(*a, **k):
        start = time.perf_counter()
        out = original(*a, **k)
        adaptor_seconds[0] += time.perf_counter() - start
        return out

    def ours() -> None:
        records = ours_gen.run_batch(items)
        assert all(r["n_tokens"] == args.new_tokens for r in records)

    generation.sample_tokens = timed_sample
    hf(), ours()  # warm-up
    hf_times, our_times, shares = [], [], []
    for _ in range(args.repeats):
        hf_times.append(device_seconds(hf, device))
        adaptor_seconds[0] = 0.0
        t = device_seconds(ours, device)
        our_times.append(t)
        shares.append(adaptor_seconds[0] / t)
    generation.sample_tokens = original
    hf_t, our_t = sorted(hf_times)[len(hf_times) // 2], sorted(our_times)[len(our_times) // 2]
    share = sorted(shares)[len(shares) // 2]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"# {name or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"tradeoff {tradeoff.__version__} ({tradeoff.get_num_threads()} threads), {args.dtype}, "
        f"B={args.batch_size}, prompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens"
    )
    print("| generator | seconds | tokens/s | ratio | adaptor + draw share of step time |")
    print("|---|---|---|---|---|")
    print(f"| transformers generate(top_p=0.9) | {hf_t:.3f} | {n_tokens / hf_t:.0f} | 1.00 | – |")
    print(
        f"| tradeoff Generator (top_p=0.9) | {our_t:.3f} | {n_tokens / our_t:.0f} "
        f"| {hf_t / our_t:.2f} | {share:.1%} |"
    )


if __name__ == "__main__":
    main()
