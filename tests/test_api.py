"""The public Python API: spec parsing, adaptor objects, input types, and error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from strategies import chains

import tradeoff
from tradeoff import AdaptorChain


@given(chain=chains())
def test_str_round_trips_through_parse(chain):
    again = AdaptorChain.parse(str(chain))
    assert again == chain
    assert str(again) == str(chain)


def test_parse_and_objects_build_the_same_chain():
    parsed = AdaptorChain.parse("temperature=0.7,top_p=0.9")
    built = AdaptorChain([tradeoff.Temperature(0.7), tradeoff.TopP(0.9)])
    assert parsed == built
    assert str(parsed) == "temperature=0.7,top_p=0.9"
    assert str(AdaptorChain.parse("ancestral")) == "ancestral"
    assert len(AdaptorChain.parse("ancestral")) == 0
    assert (
        str(AdaptorChain.parse("top_k=50:min_tokens_to_keep=3")) == "top_k=50:min_tokens_to_keep=3"
    )
    assert AdaptorChain.parse(" top_k = 5 , min_p=0.1 ") == AdaptorChain.parse("top_k=5,min_p=0.1")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("top_q=0.9", "unknown adaptor 'top_q'"),
        ("top_p", "malformed adaptor 'top_p'"),
        ("top_p=0.9,", "empty adaptor"),
        ("top_k=2.5", "`top_k` must be an integer"),
        ("top_k=0", "`top_k` must be an integer >= 1, got 0"),
        ("top_p=nan", "`top_p` must be in (0, 1], got NaN"),
        ("top_p=0", "`top_p` must be in (0, 1], got 0"),
        ("top_p=1.5", "`top_p` must be in (0, 1], got 1.5"),
        ("temperature=0", "`temperature` must be a finite number > 0"),
        ("temperature=-1", "`temperature` must be a finite number > 0"),
        ("temperature=inf", "`temperature` must be a finite number > 0"),
        ("min_p=1.01", "`min_p` must be in [0, 1]"),
        ("typical=1", "`typical` must be in (0, 1), got 1"),
        ("epsilon=0", "`epsilon` must be in (0, 1), got 0"),
        ("eta=1", "`eta` must be in (0, 1), got 1"),
        ("top_a=-0.1", "`top_a` must be a finite number >= 0"),
        ("top_nsigma=0", "`top_nsigma` must be a finite number > 0"),
        ("top_p=0.9:min_tokens_to_keep=0", "`min_tokens_to_keep` must be an integer >= 1, got 0"),
        ("top_p=0.9:keep=2", "malformed option"),
        ("top_p=abc", "`top_p` must be a number, got 'abc'"),
    ],
)
def test_bad_specs_name_the_argument_and_range(spec, message):
    with pytest.raises(ValueError) as info:
        AdaptorChain.parse(spec)
    assert message in str(info.value)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="`top_k` must be an integer"):
        tradeoff.TopK(2.0)
    with pytest.raises(TypeError, match="`top_p` must be a real number"):
        tradeoff.TopP("0.9")
    with pytest.raises(TypeError, match="`min_tokens_to_keep`"):
        tradeoff.TopP(0.9, min_tokens_to_keep=1.5)
    with pytest.raises(ValueError, match="`min_tokens_to_keep` must be an integer >= 1, got 0"):
        tradeoff.TopP(0.9, min_tokens_to_keep=0)
    with pytest.raises(TypeError, match="spec"):
        AdaptorChain.parse(0.9)


X = np.random.default_rng(0).normal(0, 2, size=(3, 50)).astype(np.float32)
SPEC = "temperature=0.7,top_p=0.9"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_dtypes(dtype):
    chain = AdaptorChain.parse(SPEC)
    x = X.astype(dtype)
    out = chain.apply(x)
    assert isinstance(out, np.ndarray)
    assert out.dtype == (np.float64 if dtype == np.float64 else np.float32)
    want = chain.apply(x.astype(np.float32))
    np.testing.assert_array_equal(out.astype(np.float32), want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_torch_dtypes_give_torch_results(dtype):
    chain = AdaptorChain.parse(SPEC)
    x = torch.from_numpy(X).to(dtype)
    out = chain.apply(x)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    np.testing.assert_array_equal(out.float().numpy(), chain.apply(x.float().numpy()))
    res = tradeoff.sample(x, chain, seed=3, streams=[0, 1, 2])
    assert isinstance(res.tokens, torch.Tensor) and res.tokens.dtype == torch.int64


def test_non_contiguous_and_one_row_inputs():
    chain = AdaptorChain.parse(SPEC)
    wide = np.asfortranarray(X)
    np.testing.assert_array_equal(chain.apply(wide), chain.apply(X))
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(chain.apply(strided), chain.apply(X))
    np.testing.assert_array_equal(chain.apply(X[1]), chain.apply(X)[1])
    assert chain.apply(X[1]).shape == (50,)
    one = tradeoff.sample(X[1], chain, seed=0, streams=[5])
    assert one.tokens.shape == ()
    many = tradeoff.sample(X, chain, seed=0, streams=[9, 5, 9])
    assert int(one.tokens) == int(many.tokens[1])


def test_per_row_chains_equal_separate_calls():
    specs = ["top_k=3", "ancestral", "temperature=2.0,typical=0.5"]
    out = tradeoff.sample(X, specs, seed=11, streams=[1, 2, 3], steps=[4, 5, 6])
    for i, spec in enumerate(specs):
        one = tradeoff.sample(X[i], spec, seed=11, streams=[i + 1], steps=4 + i)
        assert int(one.tokens) == int(out.tokens[i])
        assert float(one.logp_adapted) == float(out.logp_adapted[i])
    assert out.support_size[0] == 3 and out.support_size[1] == 50


def _row(values):
    return np.array(values, dtype=np.float32)


@pytest.mark.parametrize(
    "logits, error, message",
    [
        (_row([0.0, np.nan, 1.0]), ValueError, "`logits` row 0 has NaN at column 1"),
        (_row([0.0, np.inf]), ValueError, "`logits` row 0 has +inf at column 1"),
        (_row([-np.inf, -np.inf]), ValueError, "`logits` row 0 is all -inf"),
        (np.zeros((2, 0), np.float32), ValueError, "`logits` is empty"),
        (np.zeros((0, 5), np.float32), ValueError, "`logits` is empty"),
        (np.zeros((2, 2, 2), np.float32), ValueError, "shape [V] or [B, V]"),
        (np.zeros(3, np.int64), TypeError, "must be floating point"),
        ([0.0, 1.0], TypeError, "numpy array or a torch tensor"),
    ],
)
def test_bad_logits(logits, error, message):
    chain = AdaptorChain.parse("top_p=0.9")
    for call in (
        lambda: chain.apply(logits),
        lambda: chain.log_probs(logits),
        lambda: tradeoff.sample(logits, chain, seed=0),
    ):
        with pytest.raises(error) as info:
            call()
        assert message in str(info.value)


def test_bad_row_is_reported_by_index():
    x = X.copy()
    x[2, 7] = np.nan
    with pytest.raises(ValueError, match="`logits` row 2 has NaN at column 7"):
        AdaptorChain.parse("top_k=5").apply(x)


def test_temperature_overflow_is_an_error_not_inf():
    x = _row([3e38, 0.0])
    with pytest.raises(ValueError, match="overflows float32 when divided by the temperature"):
        AdaptorChain.parse("temperature=0.5").apply(x)


def test_bad_sampling_arguments():
    chain = AdaptorChain.parse("top_p=0.9")
    with pytest.raises(ValueError, match="`chains` has 2 entries; give one chain, or one per row"):
        tradeoff.sample(X, [chain, chain], seed=0)
    with pytest.raises(ValueError, match="`streams` must have one per row"):
        tradeoff.sample(X, chain, seed=0, streams=[1, 2])
    with pytest.raises(ValueError, match="`steps` must have one, or one per row"):
        tradeoff.sample(X, chain, seed=0, streams=[1, 2, 3], steps=[1, 2])
    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[0, 2\*\*64\)"):
        tradeoff.sample(X, chain, seed=-1)
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        tradeoff.sample(X, chain, seed=1.5)
    with pytest.raises(ValueError, match="`streams` must hold integers"):
        tradeoff.sample(X, chain, seed=0, streams=[1, -2, 3])
    with pytest.raises(TypeError, match="`streams` must hold integers"):
        tradeoff.sample(X, chain, seed=0, streams=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="`chains`"):
        tradeoff.sample(X, 3, seed=0)


def test_bad_scoring_arguments():
    chain = AdaptorChain.parse("top_p=0.9")
    with pytest.raises(ValueError, match=r"`targets` \[1\] = 50 is outside \[0, 50\)"):
        tradeoff.score_tokens(X, [0, 50, 1], chain)
    with pytest.raises(ValueError, match=r"`targets` \[0\] = -1 is outside"):
        tradeoff.score_tokens(X, [-1, 0, 1], chain)
    with pytest.raises(ValueError, match="one entry per row"):
        tradeoff.score_tokens(X, [0, 1], chain)
    with pytest.raises(TypeError, match="`targets` must hold integer token ids"):
        tradeoff.score_tokens(X, [0.0, 1.0, 2.0], chain)


def test_threads_can_be_set_and_are_reported():
    before = tradeoff.get_num_threads()
    try:
        tradeoff.set_num_threads(1)
        assert tradeoff.get_num_threads() == 1
        with pytest.raises(ValueError, match="`threads` must be an integer >= 1"):
            tradeoff.set_num_threads(0)
    finally:
        tradeoff.set_num_threads(before)


def test_cli_help_runs():
    from tradeoff.app.cli import main

    assert main([]) == 0
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
