"""The vLLM backend without vLLM: its requests (contexts, budgets, streams and sampling params
equal to the Hugging Face backend's), the forced draw on fake batches of logits (the draws of
:func:`tradeoff.sample` for the same rows and ``(seed, stream, step)``, through vLLM's batch
updates: additions, removals, one-way moves and swaps, discarded partial-prefill draws), a run
through a miniature of vLLM's persistent batch driven by a tiny model, which gives the HF
backend's records, and the one-line error when vLLM is not installed."""

from __future__ import annotations

import enum
import importlib.util
import random
from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from cli_harness import run_cli

import tradeoff
from tradeoff.errors import ConfigError
from tradeoff.generation import GenerationSettings, Prompt, check_backend, work_items
from tradeoff.generation.forced import (
    EXTRA_KEY,
    ForcedDraws,
    check_sampling_params,
    read_sink,
    request_args,
)
from tradeoff.generation.hf import Generator
from tradeoff.generation.vllm_backend import EngineOutput, VllmGenerator
from tradeoff.models import load_causal_lm
from tradeoff.testing.tiny import save_tiny_model

HAS_VLLM = importlib.util.find_spec("vllm") is not None

PROMPTS = [
    Prompt("p0", "How do I bake bread?"),
    Prompt("p1", "Tell me a joke about the quick brown fox and the lazy dog"),
    Prompt("p2", "Hi"),
]
CHAINS = ["ancestral", "temperature=0.7,top_k=20", "top_p=0.9", "typical=0.8,temperature=1.5"]
TEMPLATE = "Human: {prompt} Assistant:"
EOS = tuple(range(5, 60))


class Direction(enum.Enum):
    """vLLM's MoveDirectionality, by name."""

    UNIDIRECTIONAL = enum.auto()
    SWAP = enum.auto()


def update(removed=(), added=(), moved=(), size=0):
    """A BatchUpdate as vLLM's V1 engine makes it (duck-typed)."""
    return SimpleNamespace(batch_size=size, removed=list(removed), added=list(added),
                           moved=list(moved))  # fmt: skip


# vLLM's SamplingParams defaults for what check_sampling_params looks at.
VLLM_DEFAULTS = dict(
    temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, repetition_penalty=1.0,
    presence_penalty=0.0, frequency_penalty=0.0, logit_bias=None, allowed_token_ids=None,
    bad_words=None,
)  # fmt: skip


def params(sampling):
    return SimpleNamespace(**{**VLLM_DEFAULTS, **sampling})


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_causal_lm(str(save_tiny_model(tmp_path_factory.mktemp("gpt2"), "gpt2")))


def settings(**kwargs):
    base = dict(max_new_tokens=20, seed=3, template=TEMPLATE, eos_token_ids=EOS, batch_size=4)
    return GenerationSettings(**{**base, **kwargs})


# --- requests ------------------------------------------------------------------------------


def test_requests_carry_the_hf_backends_contexts_budgets_and_streams(lm):
    s = settings(max_total_tokens=24)  # the authors' cap: budgets depend on the context
    hf = Generator(lm.model, lm.tokenizer, PROMPTS, CHAINS, s)
    ours = VllmGenerator(lm.tokenizer, PROMPTS, CHAINS, s, max_positions=256)
    items = work_items(len(PROMPTS), 2, len(CHAINS))
    requests = ours.requests(items, "sink")
    assert [r.key for r in requests] == list(range(len(items)))
    assert len({r.sampling["extra_args"][EXTRA_KEY]["stream"] for r in requests}) == len(items)
    for item, request in zip(items, requests, strict=True):
        row = hf._new_row(item)
        assert request.item == item
        assert request.prompt_token_ids == row.context_ids
        assert request.budget == row.budget == request.sampling["max_tokens"]
        extra = request.sampling["extra_args"][EXTRA_KEY]
        assert extra["stream"] == row.stream
        assert extra["seed"] == 3 and extra["sink"] == "sink"
        assert tradeoff.AdaptorChain.parse(extra["chain"]) == hf.chains[item.config_index]
        # vLLM stops at the HF backend's EOS ids, its own EOS rule off.
        assert request.sampling["stop_token_ids"] == list(EOS)
        assert request.sampling["ignore_eos"] is True
    assert len({r.budget for r in requests}) > 1  # the cap really differs between prompts
    # Configurations are named as the HF backend names them (hidden chains: the authors').
    named = VllmGenerator(lm.tokenizer, PROMPTS, CHAINS, s, names=["a", "b", "c", "d"])
    hf_named = Generator(lm.model, lm.tokenizer, PROMPTS, CHAINS, s, names=["a", "b", "c", "d"])
    for item, request in zip(items, named.requests(items, "x"), strict=True):
        assert request.sampling["extra_args"][EXTRA_KEY]["stream"] == hf_named._new_row(item).stream


def test_the_requests_sampling_leaves_the_adaptors_alone_and_others_are_refused(lm):
    request = VllmGenerator(lm.tokenizer, PROMPTS, CHAINS, settings()).requests(
        work_items(1, 1, 1), "sink"
    )[0]
    check_sampling_params(params(request.sampling))  # accepted
    for name, value in [("temperature", 0.7), ("top_p", 0.9), ("top_k", 50), ("min_p", 0.1),
                        ("repetition_penalty", 1.2), ("logit_bias", {3: 1.0})]:  # fmt: skip
        with pytest.raises(ValueError, match=f"engine's {name}"):
            check_sampling_params(params({**request.sampling, name: value}))
    # A request without tradeoff's settings is not ours: anything goes.
    check_sampling_params(params({"temperature": 0.3}))
    broken = {"extra_args": {EXTRA_KEY: {"key": 0}}}
    with pytest.raises(ValueError, match="lacks chain, seed, sink, stream"):
        check_sampling_params(params(broken))


# --- the forced draw on fake batches -------------------------------------------------------


def ours(key, chain, stream, sink, seed=11):
    return params({"extra_args": request_args(key=key, chain=chain, seed=seed, stream=stream,
                                              sink=sink)})  # fmt: skip


def expected(logits, chain, stream, step, seed=11):
    return tradeoff.sample(logits, chain, seed=seed, streams=[stream], steps=step)


def check_forced(before, after, rows, draws_of):
    """Our rows forced to their draws (0 at the token, -inf elsewhere), the others untouched."""
    for i in range(before.shape[0]):
        if i not in rows:
            torch.testing.assert_close(after[i], before[i], rtol=0, atol=0)
            continue
        token = int(draws_of[i].tokens[0])
        assert after[i, token] == 0.0
        assert torch.isinf(after[i]).sum() == after.shape[1] - 1


def test_the_forced_draw_follows_the_batch_through_adds_moves_swaps_and_removals(tmp_path):
    sink = str(tmp_path / "draws.bin")
    gen = torch.Generator().manual_seed(0)
    vocab = 50
    draws = ForcedDraws()
    outputs = {k: [] for k in range(4)}  # the engine's running lists, by our key
    chains = {0: "top_p=0.9", 1: "temperature=0.7,top_k=5", 2: "ancestral", 3: "typical=0.8"}
    streams = {0: 101, 1: 202, 2: 303, 3: 404}
    # Row 1 is someone else's request (no tradeoff settings).
    draws.update(update(added=[(0, ours(0, chains[0], streams[0], sink), [1, 2], outputs[0]),
                               (1, params({}), [3], []),
                               (2, ours(1, chains[1], streams[1], sink), [4], outputs[1])],
                        size=3))  # fmt: skip
    layout = {0: 0, 2: 1}  # batch row -> our key
    expected_log = []

    def step(n_rows):
        logits = torch.randn(n_rows, vocab, generator=gen)
        before = logits.clone()
        refs = {i: expected(before[i], chains[k], streams[k], len(outputs[k]))
                for i, k in layout.items()}  # fmt: skip
        after = draws.apply(logits)
        assert after is logits  # in place, as vLLM allows
        check_forced(before, after, set(layout), refs)
        for i, k in layout.items():
            token = int(refs[i].tokens[0])
            expected_log.append((k, len(outputs[k]), token, float(refs[i].logp_base[0]),
                                 float(refs[i].logp_adapted[0])))  # fmt: skip
            outputs[k].append(token)  # the engine appends the token it sampled

    step(3)
    step(3)
    # A swap of rows 0 and 2, and a new request of ours at row 3.
    draws.update(update(added=[(3, ours(2, chains[2], streams[2], sink), [5], outputs[2])],
                        moved=[(0, 2, Direction.SWAP)], size=4))  # fmt: skip
    layout = {2: 0, 0: 1, 3: 2}
    step(4)
    # Row 1 (not ours) and row 2 finish; key 3 takes row 1; row 3 moves down to row 2.
    draws.update(update(removed=[1, 2],
                        added=[(1, ours(3, chains[3], streams[3], sink), [6], outputs[3])],
                        moved=[(3, 2, Direction.UNIDIRECTIONAL)], size=3))  # fmt: skip
    layout = {0: 1, 1: 3, 2: 2}
    step(3)
    step(3)
    # Key 0 (preempted earlier, say) comes back at row 3 with its tokens so far.
    draws.update(update(added=[(3, ours(0, chains[0], streams[0], sink), [1, 2], outputs[0])],
                        size=4))  # fmt: skip
    layout = {0: 1, 1: 3, 2: 2, 3: 0}
    step(4)
    # Someone else's request replaces key 3's row: that row is no longer ours.
    draws.update(update(added=[(1, params({}), [7], [])], size=4))
    layout = {0: 1, 2: 2, 3: 0}
    step(4)
    draws.close()
    data = np.fromfile(sink, dtype=tradeoff.generation.forced.RECORD)
    got = [(int(r["key"]), int(r["step"]), int(r["token"]), float(r["logp_aligned"]),
            float(r["logp_adapted"])) for r in data]  # fmt: skip
    assert sorted(got) == sorted(expected_log)
    # Every key's steps are its tokens, in order.
    recorded = read_sink(sink, range(4))
    for k, tokens in outputs.items():
        assert [int(recorded[k][t]["token"]) for t in range(len(tokens))] == tokens


def test_a_discarded_draw_is_overwritten_by_the_draw_at_the_same_step(tmp_path):
    sink = str(tmp_path / "draws.bin")
    draws = ForcedDraws()
    output: list[int] = []
    draws.update(update(added=[(0, ours(7, "top_k=3", 99, sink), [1], output)], size=1))
    gen = torch.Generator().manual_seed(1)
    garbage, real = torch.randn(1, 30, generator=gen), torch.randn(1, 30, generator=gen)
    draws.apply(garbage.clone())  # a partial prefill: the engine discards its token
    draws.apply(real.clone())  # the same step, for real
    ref = expected(real[0], "top_k=3", 99, 0)
    record = read_sink(sink, [7])[7][0]
    assert int(record["token"]) == int(ref.tokens[0])
    assert float(record["logp_adapted"]) == float(ref.logp_adapted[0])


def test_one_seed_per_request_and_rows_beyond_the_logits_are_refused(tmp_path):
    sink = str(tmp_path / "s.bin")
    draws = ForcedDraws(record=False)
    draws.update(update(added=[(0, ours(0, "ancestral", 5, sink, seed=1), [1], []),
                               (1, ours(1, "ancestral", 5, sink, seed=2), [1], [])]))  # fmt: skip
    logits = torch.randn(2, 40, generator=torch.Generator().manual_seed(2))
    after = draws.apply(logits.clone())
    for i, seed in enumerate((1, 2)):
        token = int(expected(logits[i], "ancestral", 5, 0, seed=seed).tokens[0])
        assert after[i, token] == 0.0
    assert not (tmp_path / "s.bin").exists()  # record=False: another rank writes the sink
    with pytest.raises(RuntimeError, match="beyond the 1 rows"):
        draws.apply(logits[:1].clone())


@pytest.mark.parametrize("model_dtype", [torch.bfloat16, torch.float16])
def test_rows_travel_in_the_models_dtype_only_when_that_loses_nothing(tmp_path, model_dtype):
    sink = str(tmp_path / "s.bin")
    gen = torch.Generator().manual_seed(3)
    # The engine widened the model's 16-bit logits to float32: narrowing them back is exact.
    widened = (torch.randn(3, 64, generator=gen) * 4).to(model_dtype).float()
    draws = ForcedDraws(transfer_dtype=model_dtype)
    draws.update(update(added=[(i, ours(i, "top_p=0.9", 10 + i, sink), [1], [])
                               for i in range(3)]))  # fmt: skip
    assert draws._to_host(widened).dtype == model_dtype
    draws.apply(widened.clone())
    assert draws._lossless is True
    # Float32 logits of the engine's own (not representable in 16 bits): they travel as they are.
    other = ForcedDraws(transfer_dtype=model_dtype)
    exact = torch.randn(3, 64, generator=gen)
    assert other._to_host(exact).dtype == torch.float32 and other._lossless is False
    draws.close()
    data = read_sink(sink, range(3))
    for i in range(3):
        ref = expected(widened[i].to(model_dtype), "top_p=0.9", 10 + i, 0)
        assert int(data[i][0]["token"]) == int(ref.tokens[0])
        assert float(data[i][0]["logp_adapted"]) == float(ref.logp_adapted[0])


# --- a run through a miniature of vLLM's persistent batch ----------------------------------


class MiniEngine:
    """vLLM V1's persistent batch in miniature, driving the real :class:`ForcedDraws` with a
    tiny model's logits (a full forward pass per row and step): at most ``slots`` requests; a
    new request first gets a partial-prefill step whose token is discarded; finished requests'
    rows are refilled by new ones, then the batch is condensed by one-way moves; rows are
    swapped at random; the sampler samples the processed logits at temperature 1; requests stop
    at their stop ids, max_tokens or a stop string in their whole text."""

    def __init__(self, model, tokenizer, slots, seed=0):
        self.model, self.tokenizer, self.slots = model, tokenizer, slots
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.steps = 0

    def _logits(self, ids):
        with torch.no_grad():
            return self.model(torch.tensor([ids])).logits[0, -1].float()

    def __call__(self, requests):
        draws = ForcedDraws()
        ps = [params(r.sampling) for r in requests]
        for p in ps:
            check_sampling_params(p)
        outputs = [[] for _ in requests]
        finish = [None] * len(requests)
        waiting = deque(range(len(requests)))
        batch: list[int] = []  # batch row -> request
        fresh: set[int] = set()
        removed: list[int] = []
        while waiting or batch:
            holes = sorted(removed)
            added, moved = [], []
            while waiting and len(batch) - len(holes) + len(added) < self.slots:
                i = waiting.popleft()
                if holes:
                    row = holes.pop(0)
                    batch[row] = i
                else:
                    row = len(batch)
                    batch.append(i)
                added.append((row, ps[i], requests[i].prompt_token_ids, outputs[i]))
                fresh.add(i)
            for h in holes:
                batch[h] = -1
            while -1 in batch:  # condense: the last rows move into the holes
                if batch[-1] == -1:
                    batch.pop()
                    continue
                hole, last = batch.index(-1), len(batch) - 1
                batch[hole] = batch.pop()
                moved.append((last, hole, Direction.UNIDIRECTIONAL))
            if len(batch) >= 2 and self.rng.random() < 0.4:
                a, b = self.rng.sample(range(len(batch)), 2)
                batch[a], batch[b] = batch[b], batch[a]
                moved.append((a, b, Direction.SWAP))
            draws.update(update(removed, added, moved, len(batch)))
            removed = []
            logits = torch.stack([
                self._logits(requests[i].prompt_token_ids[:1] if i in fresh
                             else requests[i].prompt_token_ids + outputs[i])
                for i in batch
            ])  # fmt: skip
            probs = torch.softmax(draws.apply(logits), dim=-1)
            sampled = torch.multinomial(probs, 1, generator=self.gen)[:, 0].tolist()
            self.steps += 1
            for row, i in enumerate(batch):
                if i in fresh:  # a partial prefill's token is discarded
                    fresh.discard(i)
                    continue
                outputs[i].append(sampled[row])
                s = requests[i].sampling
                text = self.tokenizer.decode(outputs[i])
                if sampled[row] in s["stop_token_ids"] or any(t in text for t in s["stop"] or ()):
                    finish[i] = "stop"
                elif len(outputs[i]) >= s["max_tokens"]:
                    finish[i] = "length"
                if finish[i] is not None:
                    removed.append(row)
            for row in removed:
                batch[row] = -1
            batch_rows = [i for i in batch if i != -1]
            if not batch_rows and not waiting:
                break
        draws.close()
        return [EngineOutput(o, f) for o, f in zip(outputs, finish, strict=True)]


@pytest.mark.parametrize("stop", [(), ("the", "ke")])
def test_a_run_through_the_persistent_batch_gives_the_hf_backends_records(lm, tmp_path, stop):
    s = settings(stop_strings=stop)
    items = work_items(len(PROMPTS), 2, len(CHAINS))
    reference = Generator(lm.model, lm.tokenizer, PROMPTS, CHAINS, s).run_batch(items)
    engine = MiniEngine(lm.model, lm.tokenizer, slots=5)
    generator = VllmGenerator(lm.tokenizer, PROMPTS, CHAINS, s, engine=engine, sink_dir=tmp_path)
    records = generator.run_batch(items)
    assert list(tmp_path.iterdir()) == []  # the shard's sink is removed
    reasons = {r["stop_reason"] for r in reference}
    assert {"eos", "length"} <= reasons and (not stop or "stop_string" in reasons)
    for a, b in zip(reference, records, strict=True):
        assert a.keys() == b.keys()
        for key in ("prompt_id", "prompt", "context", "config", "sample_index", "token_ids",
                    "text", "n_tokens", "finished", "stop_reason"):  # fmt: skip
            assert a[key] == b[key], key
        for key in ("token_logp_aligned", "token_logp_adapted"):
            np.testing.assert_allclose(a[key], b[key], atol=1e-4)
        np.testing.assert_allclose(a["logp_adapted"], b["logp_adapted"], atol=1e-3)


def test_a_token_the_processor_did_not_draw_is_an_error(lm, tmp_path):
    s = settings()

    def engine(requests):  # an engine whose sampler ignored the processor
        return [EngineOutput([7, 8], "length") for _ in requests]

    generator = VllmGenerator(lm.tokenizer, PROMPTS, CHAINS, s, engine=engine, sink_dir=tmp_path)
    with pytest.raises(RuntimeError, match="is not the token tradeoff drew"):
        generator.run_batch(work_items(1, 1, 1))


# --- without vLLM --------------------------------------------------------------------------


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed")
def test_without_vllm_the_backend_is_a_one_line_error_naming_the_extra(tmp_path):
    with pytest.raises(ConfigError, match=r'pip install "tradeoff\[vllm\]"'):
        check_backend("vllm")
    done = run_cli("generate", "--aligned", tmp_path / "m", "--prompts", tmp_path / "p.txt",
                   "--adaptors", "ancestral", "--out", tmp_path / "out",
                   "--backend", "vllm")  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "tradeoff[vllm]"' in lines[0], done.stderr
    assert not (tmp_path / "out").exists()
    # The module imports without vLLM; only the processor class needs it.
    from tradeoff.generation import vllm_backend

    with pytest.raises(ConfigError, match="needs vLLM"):
        vllm_backend.TradeoffLogitsProcessor  # noqa: B018


def test_tensor_parallel_needs_the_vllm_backend(tmp_path):
    done = run_cli("generate", "--aligned", tmp_path / "m", "--prompts", tmp_path / "p.txt",
                   "--adaptors", "ancestral", "--out", tmp_path / "out",
                   "--tensor-parallel-size", "2")  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tensor-parallel-size 2 needs the vllm backend" in lines[0]
