"""The Hugging Face decode engine: continuous batching (rows admitted into freed slots, their KV
entries merged into the running cache) gives the strings of batch size 1 and log-probabilities
equal to a full forward pass; the two alternating groups (the sampler beside the forward pass),
the token budget, the fallback for caches that cannot be merged, and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_harness import run_cli
from transformers import MistralConfig, MistralForCausalLM

import tradeoff
from tradeoff.errors import ConfigError, TradeoffWarning
from tradeoff.generation import GenerationSettings, Prompt, work_items
from tradeoff.generation.hf import Generator
from tradeoff.models import load_causal_lm
from tradeoff.testing.tiny import make_tokenizer, save_tiny_model

PROMPTS = [
    Prompt("p0", "How do I bake bread?"),
    Prompt("p1", "Tell me a joke about the quick brown fox and the lazy dog"),
    Prompt("p2", "Hi"),
    Prompt("p3", "Why is the sky blue on a clear day in the summer?"),
]
CHAINS = ["ancestral", "temperature=0.7,top_k=20", "top_p=0.9", "typical=0.8,temperature=1.5"]
TEMPLATE = "Human: {prompt} Assistant:"
# Many end-of-string ids: strings end at very different lengths, so slots free up all the time.
EOS = tuple(range(5, 60))


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def loaded(request, tmp_path_factory):
    return load_causal_lm(
        str(save_tiny_model(tmp_path_factory.mktemp(request.param), request.param))
    )


def generate(lm, batch_size, *, overlap=None, max_batch_tokens=None, samples=3, chains=CHAINS):
    settings = GenerationSettings(
        max_new_tokens=20,
        seed=3,
        template=TEMPLATE,
        eos_token_ids=EOS,
        batch_size=batch_size,
        overlap=overlap,
        max_batch_tokens=max_batch_tokens,
    )
    generator = Generator(lm.model, lm.tokenizer, PROMPTS, chains, settings)
    items = work_items(len(PROMPTS), samples, len(chains))
    return generator.run_batch(items), generator


@pytest.fixture(scope="module")
def reference(loaded):
    records, generator = generate(loaded, 1)
    lengths = [r["n_tokens"] for r in records]
    # The workload really varies: strings from one token to the cap.
    assert min(lengths) == 1 and max(lengths) == 20 and len(set(lengths)) > 8
    assert generator.stats.occupancy == 1.0
    return records


@pytest.mark.parametrize(
    "batch_size, overlap, max_batch_tokens",
    [(3, False, None), (7, False, None), (6, True, None), (48, False, None), (5, False, 90),
     (8, True, 120)],
)  # fmt: skip
def test_continuous_batching_gives_the_strings_of_batch_size_one(
    loaded, reference, batch_size, overlap, max_batch_tokens
):
    records, generator = generate(
        loaded, batch_size, overlap=overlap, max_batch_tokens=max_batch_tokens
    )
    for a, b in zip(reference, records, strict=True):
        assert (a["prompt_id"], a["config"], a["sample_index"]) == (
            b["prompt_id"],
            b["config"],
            b["sample_index"],
        )
        assert a["token_ids"] == b["token_ids"]
        assert a["stop_reason"] == b["stop_reason"]
        np.testing.assert_allclose(a["token_logp_aligned"], b["token_logp_aligned"], atol=1e-4)
        np.testing.assert_allclose(a["token_logp_adapted"], b["token_logp_adapted"], atol=1e-4)
    stats = generator.stats
    assert stats.row_steps == sum(r["n_tokens"] for r in records)
    if batch_size < len(records):
        assert stats.prefills > 1, "no row was admitted into a freed slot"
    if max_batch_tokens is not None:
        assert 0 < stats.peak_reserved_tokens <= max_batch_tokens
    assert stats.peak_rows <= batch_size


def test_merged_caches_give_the_log_probs_of_a_full_forward_pass(loaded):
    records, generator = generate(loaded, 4, overlap=True)
    assert generator.stats.prefills > 10
    for r in records:
        index = next(i for i, p in enumerate(PROMPTS) if p.id == r["prompt_id"])
        context = generator.context_ids(index)
        ids = torch.tensor([context + r["token_ids"]])
        with torch.no_grad():
            logits = loaded.model(ids).logits[0, len(context) - 1 : -1].float()
        expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(r["token_ids"])[:, None])
        np.testing.assert_allclose(r["token_logp_aligned"], expected[:, 0].numpy(), atol=2e-4)
        scored = tradeoff.score_tokens(logits, torch.tensor(r["token_ids"]), r["config"])
        np.testing.assert_allclose(r["token_logp_adapted"], scored.logp_adapted.numpy(), atol=2e-4)


def test_refilled_slots_keep_the_batch_fuller_than_a_static_batch(loaded):
    _, static = generate(loaded, None)
    _, refilled = generate(loaded, 12)
    # A static batch holds every row until the longest ends; refilled slots stay busy.
    assert static.stats.occupancy < 0.5
    assert refilled.stats.occupancy > 1.5 * static.stats.occupancy
    # The same tokens with fewer rows in flight per step: more, smaller steps.
    assert refilled.stats.row_steps == static.stats.row_steps
    assert refilled.stats.steps > static.stats.steps


def test_a_cache_that_cannot_be_merged_is_refilled_when_it_empties(tmp_path):
    # A sliding-window model's cache layers keep their own window: rows are not merged into
    # them, and the batch refills once its rows have all ended; the strings do not change.
    tokenizer = make_tokenizer(tmp_path, add_bos=True)
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        sliding_window=64, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = MistralForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    model.save_pretrained(tmp_path)
    lm = load_causal_lm(str(tmp_path))
    reference, _ = generate(lm, 1, samples=2, chains=CHAINS[:2])
    with pytest.warns(TradeoffWarning, match="cannot be merged"):
        records, generator = generate(lm, 5, samples=2, chains=CHAINS[:2])
    assert [r["token_ids"] for r in records] == [r["token_ids"] for r in reference]
    # Refilled only when empty: each prefill fills all five slots (the last takes the rest).
    assert generator.stats.prefills == -(-len(records) // 5)


def test_settings_are_checked():
    for key, value, match in [
        ("batch_size", 0, "batch_size"),
        ("max_batch_tokens", 0, "max_batch_tokens"),
        ("overlap", "yes", "overlap"),
    ]:
        with pytest.raises(ConfigError, match=match):
            GenerationSettings(max_new_tokens=4, seed=0, **{key: value})


def test_cli_refuses_a_token_budget_that_cannot_hold_one_string(tmp_path):
    model = save_tiny_model(tmp_path / "model", "llama")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "prompt": "How do I bake bread?"}) + "\n")
    base = ["generate", "--aligned", str(model), "--prompts", str(prompts), "--adaptors",
            "ancestral", "--max-new-tokens", "30", "--out", str(tmp_path / "run")]  # fmt: skip
    refused = run_cli(*base, "--max-batch-tokens", "20")
    assert refused.returncode == 2
    assert "max_batch_tokens" in refused.stderr and "lower max_new_tokens" in refused.stderr
    assert not (tmp_path / "run" / "manifest.json").exists()
    refused = run_cli(*base, "--overlap", "sometimes")
    assert refused.returncode == 2 and "--overlap" in refused.stderr
    done = run_cli(*base, "--max-batch-tokens", "200", "--batch-size", "3", "--shard-size", "5",
                   "--samples-per-prompt", "7", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["batches"] == 2 and summary["strings"] == 7
    assert summary["engine"]["peak_rows"] <= 3
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    settings = manifest["settings"]["generate"]
    assert (settings["batch_size"], settings["shard_size"], settings["max_batch_tokens"]) == (
        3,
        5,
        200,
    )
