"""Scoring and rewards on tiny local models: re-scoring reproduces generation's log pi and log q,
the device gather agrees with the Rust scorer, batching changes nothing, the tokenization boundary
is split right when tokens merge across it, EOS is counted, and reward sources (a)-(d) work."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, trainers
from transformers import AutoModelForSequenceClassification, LlamaModel, PreTrainedTokenizerFast

from tradeoff.app import cli
from tradeoff.models import load_causal_lm
from tradeoff.models.rewards import implicit_reward, load_reward
from tradeoff.models.scoring import (
    Continuation,
    continuation_ids,
    score_continuations,
    token_batches,
)
from tradeoff.rundir import RunDir
from tradeoff.stages.generate import generate
from tradeoff.stages.settings import GenerateSection, ModelsSection, PromptsSection
from tradeoff.testing.tiny import (
    save_score_head_reward,
    save_sequence_classification_reward,
    save_tiny_model,
)

sys.path.insert(0, str(Path(__file__).parent))  # reward_fns, for python:module:function

TEMPLATE = "Human: {prompt} Assistant:"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "aligned": save_tiny_model(root / "aligned", "llama", seed=0),
        "prior": save_tiny_model(root / "prior", "llama", seed=5),
        # Another vocabulary: scoring must tokenize the text itself and split at the boundary.
        "other_vocab": save_tiny_model(root / "other", "gpt2", seed=6, vocab_size=330),
        "classifier": save_sequence_classification_reward(root / "classifier"),
        "score_head": save_score_head_reward(root / "score_head"),
    }


@pytest.fixture(scope="module")
def run_dir(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    prompts = root / "prompts.txt"
    prompts.write_text("How do I bake bread?\nTell me a joke.\nWhat is the capital of France?\n")
    generate(
        root / "run",
        models=ModelsSection.from_values({"aligned": str(models_dir["aligned"])}),
        prompts=PromptsSection.from_values({"source": str(prompts), "template": TEMPLATE}),
        generate=GenerateSection.from_values(
            {
                "adaptors": ["ancestral", "top_k=5", "temperature=0.6,top_p=0.8"],
                "samples_per_prompt": 2,
                "max_new_tokens": 12,
                "batch_size": 5,
                "eos_token_ids": list(range(3, 60)),  # many end ids: some strings end with EOS
            }
        ),  # fmt: skip
        seed=1,
        progress=False,
    )
    return root / "run"


def joined(run_dir):
    """The rows the analysis reads: samples with their scores."""
    return RunDir(run_dir).analysis_table().to_pylist()


def run_cli(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(args))
    assert code == 0
    return json.loads(out.getvalue())


def test_rescoring_with_the_aligned_model_reproduces_generation(run_dir, models_dir, tmp_path):
    before = pq.read_table(run_dir / "samples.parquet").to_pylist()
    assert any(r["stop_reason"] == "eos" for r in before)
    summary = run_cli("score", "--run", str(run_dir), "--aligned", str(models_dir["aligned"]),
                      "--batch-size", "4", "--json")  # fmt: skip
    assert summary["strings"] == len(before)
    # score writes its own table; generate's is untouched.
    assert pq.read_table(run_dir / "samples.parquet").to_pylist() == before
    after = pq.read_table(run_dir / "scores.parquet").to_pylist()
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(b["token_logp_aligned"], a["token_logp_aligned"], atol=1e-4)
        np.testing.assert_allclose(b["token_logp_adapted"], a["token_logp_adapted"], atol=1e-4)
        assert b["n_outside_support"] == 0  # generated tokens are inside their own support


def test_device_gather_agrees_with_the_rust_scorer_and_batching_changes_nothing(models_dir):
    lm = load_causal_lm(str(models_dir["prior"]))
    texts = [" The capital of France is Paris.", " Mix flour", " hello there, friend", ""]
    items = [continuation_ids(lm.tokenizer, "Human: Hi Assistant:", t) for t in texts]
    on_device = score_continuations(lm.model, items, batch_size=8)
    in_rust = score_continuations(lm.model, items, chains=["ancestral"] * 4, batch_size=8)
    one_by_one = score_continuations(lm.model, items, batch_size=1)
    for a, b, c in zip(on_device, in_rust, one_by_one, strict=True):
        np.testing.assert_allclose(a.token_logp, b.token_logp, atol=1e-5)
        np.testing.assert_allclose(a.token_logp, c.token_logp, atol=1e-5)
    assert on_device[-1].token_logp == []
    # Against a plain forward pass of one sequence.
    item = items[0]
    with torch.no_grad():
        logits = lm.model(torch.tensor([item.context_ids + item.ids])).logits[0]
    expected = torch.log_softmax(logits[len(item.context_ids) - 1 : -1], -1)
    expected = expected.gather(1, torch.tensor(item.ids)[:, None])[:, 0]
    np.testing.assert_allclose(on_device[0].token_logp, expected.numpy(), atol=1e-5)


def merging_tokenizer() -> PreTrainedTokenizerFast:
    """BPE without pre-tokenization: merges run across spaces and word boundaries."""
    tok = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<pad>", "<bos>", "<eos>"])
    tok.train_from_iterator(["the cat sat on the mat. " * 50], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def test_boundary_split_when_a_token_merges_across_it():
    tok = merging_tokenizer()
    context, text = "the ca", "t sat on the mat."
    alone = tok(context)["input_ids"]
    joint = tok(context + text)["input_ids"]
    assert joint[: len(alone)] != alone, "the test needs a merge across the boundary"
    split = continuation_ids(tok, context, text, ended_with_eos=True)
    decoded_context = tok.decode(split.context_ids, skip_special_tokens=True)
    decoded_continuation = tok.decode(split.ids[:-1])
    # Nothing lost or doubled: the parts rebuild the whole, the continuation covers the text.
    assert decoded_context + decoded_continuation == context + text
    assert decoded_continuation.endswith(text)
    assert context.startswith(decoded_context)
    assert split.ids[-1] == tok.eos_token_id
    # Without the EOS flag, no EOS; with the generator's ids, those ids as they are.
    assert continuation_ids(tok, context, text).ids == split.ids[:-1]
    assert continuation_ids(tok, context, text, token_ids=[7, 8]).ids == [7, 8]
    # Context "none": BOS only.
    assert continuation_ids(tok, None, text).context_ids == [tok.bos_token_id]


def test_prior_with_another_vocabulary_and_contexts(run_dir, models_dir):
    for context in ("formatted", "raw", "none"):
        prior = str(models_dir["other_vocab"])
        options = ["--prior-context", context, "--clamp-token-nll", "25", "--replace", "--json"]
        summary = run_cli("score", "--run", str(run_dir), "--prior", prior, *options)
        assert "logp_prior" in summary["columns"]
        rows = joined(run_dir)
        for r in rows:
            assert np.isfinite(r["logp_prior"]) and r["logp_prior"] <= 0
            assert r["logp_prior"] >= -25 * r["n_tokens_prior"]
            assert r["n_tokens_prior"] >= 1 or r["text"] == ""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["settings"]["score"]["prior"]["prior_context"] == "none"
    assert manifest["stages"]["score"]["status"] == "complete"


def test_reward_sources(run_dir, models_dir):
    prompts, texts = ["How are you?", "Hi"], [" I am well.", " Hello there, friend."]
    template = "Human: {prompt} Assistant:{response}"
    # (a) sequence classification with a scalar head.
    fn = load_reward(str(models_dir["classifier"]), template=template)
    model = AutoModelForSequenceClassification.from_pretrained(str(models_dir["classifier"]))
    tok = PreTrainedTokenizerFast.from_pretrained(str(models_dir["classifier"]))
    for p, t, value in zip(prompts, texts, fn(prompts, texts), strict=True):
        ids = tok(template.format(prompt=p, response=t), return_tensors="pt")
        with torch.no_grad():
            assert value == pytest.approx(model(**ids).logits[0, 0].item(), abs=1e-5)
    assert fn.identity["reward_kind"] == "sequence_classification"
    # (b) safe-rlhf score head: the score at the last non-padding token.
    fn = load_reward(str(models_dir["score_head"]), template=template)
    assert fn.identity["reward_kind"] == "score_head"
    from safetensors.torch import load_file

    state = load_file(str(models_dir["score_head"] / "model.safetensors"))
    backbone = LlamaModel.from_pretrained(str(models_dir["score_head"]))
    values = fn(prompts, texts)
    for p, t, value in zip(prompts, texts, values, strict=True):
        ids = tok(template.format(prompt=p, response=t), return_tensors="pt")
        with torch.no_grad():
            last = backbone(**ids).last_hidden_state[0, -1]
        expected = last @ state["score_head.weight"][0] + state["score_head.bias"][0]
        assert value == pytest.approx(expected.item(), abs=1e-4)
    assert values[0] != values[1]
    # (c) implicit DPO reward.
    np.testing.assert_allclose(
        implicit_reward("implicit:0.1", [-5.0, -7.0], [-6.0, -6.0]), [0.1, -0.1]
    )
    with pytest.raises(ValueError, match="BETA > 0"):
        implicit_reward("implicit:-1", [0.0], [0.0])
    # (d) a Python function.
    fn = load_reward("python:reward_fns:length")
    np.testing.assert_array_equal(fn(prompts, texts), [11.0, 21.0])
    with pytest.raises(ValueError, match="one float per text"):
        load_reward("python:reward_fns:wrong_shape")(prompts, texts)
    with pytest.raises(ValueError, match="cannot import"):
        load_reward("python:no_such_module:f")
    # Through the command line, into the run.
    run_cli("score", "--run", str(run_dir), "--prior", str(models_dir["prior"]),
            "--reward", "implicit:0.5", "--replace", "--json")  # fmt: skip
    rows = joined(run_dir)
    for r in rows:
        assert r["reward"] == pytest.approx(0.5 * (r["logp_aligned"] - r["logp_prior"]))
    run_cli("score", "--run", str(run_dir), "--reward", "python:reward_fns:length",
            "--reward-template", template, "--replace", "--json")  # fmt: skip
    rows = joined(run_dir)
    assert [r["reward"] for r in rows] == [float(len(r["text"])) for r in rows]
    run_cli("score", "--run", str(run_dir), "--reward", str(models_dir["score_head"]),
            "--reward-template", template, "--replace", "--json")  # fmt: skip
    assert np.isfinite([r["reward"] for r in joined(run_dir)]).all()


def test_score_needs_a_generated_run(tmp_path, capsys):
    assert cli.main(["score", "--run", str(tmp_path), "--reward", "implicit:1"]) == 2
    assert "run `tradeoff-eval generate` first" in capsys.readouterr().err


def test_continuation_dataclass_is_plain():
    assert Continuation([1], [2, 3]).ids == [2, 3]


def test_a_clamp_applies_to_every_log_likelihood_the_analysis_reads(run_dir, models_dir, tmp_path):
    import shutil

    run = tmp_path / "clamped"
    shutil.copytree(run_dir, run)
    for name in ("scores.parquet", "shards"):  # a fresh scoring of the generated strings
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["settings"].pop("score", None)
    manifest["stages"].pop("score", None)
    (run / "manifest.json").write_text(json.dumps(manifest))
    samples = pq.read_table(run / "samples.parquet").to_pylist()
    run_cli("score", "--run", str(run), "--prior", str(models_dir["prior"]),
            "--clamp-token-nll", "1.0", "--json")  # fmt: skip
    rows = joined(run)
    clipped = 0
    for s, r in zip(samples, rows, strict=True):
        for column in ("aligned", "adapted"):
            tokens = np.asarray(s[f"token_logp_{column}"])
            assert r[f"logp_{column}"] == pytest.approx(-np.clip(-tokens, 0, 1.0).sum())
            clipped += int((tokens < -1.0).sum())
        assert r["logp_prior"] >= -1.0 * r["n_tokens_prior"] - 1e-9
    assert clipped > 0  # the clamp was exercised
    assert pq.read_table(run / "samples.parquet").to_pylist() == samples  # generate's, untouched
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["settings"]["score"]["aligned"] == {
        "from": "generation",
        "clamp_token_nll": 1.0,
    }


@given(
    lengths=st.lists(st.integers(1, 300), min_size=0, max_size=60),
    batch_size=st.integers(1, 16),
    budget=st.one_of(st.none(), st.integers(1, 2000)),
)
@settings(max_examples=200, deadline=None)
def test_token_batches_respect_both_limits(lengths, batch_size, budget):
    batches = token_batches(lengths, batch_size, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        widest = max(lengths[i] for i in batch)
        assert budget is None or len(batch) * widest <= budget or len(batch) == 1
    # Greedy: a batch closes only when the next string would break a limit.
    for a, b in zip(batches, batches[1:], strict=False):
        joined = len(a) + 1
        assert joined > batch_size or (budget is not None and joined * lengths[b[0]] > budget)


def test_only_the_continuations_positions_reach_the_output_layer(models_dir):
    lm = load_causal_lm(str(models_dir["prior"]))
    context = "Human: Tell me about the quick brown fox and the lazy dog Assistant:"
    texts = [" Mix flour", " The capital of France is Paris.", " hi"]
    items = [continuation_ids(lm.tokenizer, context, t) for t in texts]
    seen = []
    head = lm.model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    try:
        batched = score_continuations(lm.model, items, batch_size=8, max_batch_tokens=10_000)
        in_rust = score_continuations(lm.model, items, chains=["top_p=0.9"] * 3, batch_size=2)
        seen_batched = list(seen)
        seen.clear()
        # A budget smaller than two strings: one string per forward pass.
        small = score_continuations(lm.model, items, batch_size=8, max_batch_tokens=1)
        seen_small = list(seen)
    finally:
        hook.remove()
    longest = max(len(i.ids) for i in items)
    width = max(len(i.context_ids) for i in items) + longest
    # One batch of three: the output layer saw the continuation's positions (and one more),
    # not the context's.
    assert seen_batched[0][:2] == (3, longest + 1) and longest + 1 < width
    one_by_one = score_continuations(lm.model, items, batch_size=1)
    for a, b, c in zip(batched, one_by_one, in_rust, strict=True):
        np.testing.assert_allclose(a.token_logp, b.token_logp, atol=1e-5)
        np.testing.assert_allclose(a.token_logp, c.token_logp, atol=1e-5)
        assert len(a.token_logp) == len(c.token_logp_adapted)
    assert [shape[0] for shape in seen_small] == [1, 1, 1]
    for a, b in zip(small, one_by_one, strict=True):
        np.testing.assert_allclose(a.token_logp, b.token_logp, atol=1e-5)
