"""tradeoff.LogitsProcessor inside transformers' generate(), on a tiny random-weight model."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LogitsProcessorList

import tradeoff


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    m = GPT2LMHeadModel(config).eval()
    m.generation_config.pad_token_id = 0
    return m


PROMPT = torch.tensor([[5, 17, 33, 2], [8, 8, 1, 90]])


def _generate(model, seed, **kwargs):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.generate(PROMPT, max_new_tokens=12, min_new_tokens=12, **kwargs)


def test_top_k_1_through_the_processor_is_greedy_decoding(model):
    greedy = _generate(model, 0, do_sample=False)
    ours = _generate(
        model,
        0,
        do_sample=True,
        top_k=0,
        logits_processor=LogitsProcessorList([tradeoff.LogitsProcessor("top_k=1")]),
    )
    torch.testing.assert_close(ours, greedy)


@pytest.mark.parametrize(
    "spec, native",
    [
        ("top_p=0.9", {"top_p": 0.9}),
        ("temperature=0.7,top_k=20", {"temperature": 0.7, "top_k": 20}),
        ("typical=0.8", {"typical_p": 0.8}),
    ],
)
def test_processor_samples_what_the_native_warpers_sample(model, spec, native):
    # same torch seed, same adapted distribution -> same multinomial draws
    theirs = _generate(model, 123, do_sample=True, **{"top_k": 0, **native})
    ours = _generate(
        model,
        123,
        do_sample=True,
        top_k=0,
        logits_processor=LogitsProcessorList([tradeoff.LogitsProcessor(spec)]),
    )
    torch.testing.assert_close(ours, theirs)


def test_processor_keeps_dtype_and_device():
    proc = tradeoff.LogitsProcessor(tradeoff.AdaptorChain.parse("top_p=0.5"))
    scores = torch.randn(3, 50, dtype=torch.bfloat16)
    out = proc(torch.zeros(3, 1, dtype=torch.long), scores)
    assert out.dtype == torch.bfloat16 and out.device == scores.device and out.shape == scores.shape
    assert repr(proc) == "LogitsProcessor('top_p=0.5')"
