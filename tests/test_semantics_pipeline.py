"""The authors' semantics in generation and scoring, difference by difference, each against the
authors' own code (their functions copied here as the reference) and absent under `corrected`:
the hidden top-k, the length cap that counts the prompt, the prior on the text alone with BOS
and no clamp, pi and q on their scored text with the prompt tokenized alone and each NLL
clamped at 25, EOS scored nowhere, the reward's text with two spaces, the DPO figure's sign."""

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

from tradeoff.app import cli
from tradeoff.generation import GenerationSettings, Prompt
from tradeoff.generation.hf import Generator
from tradeoff.models import load_causal_lm
from tradeoff.rundir import RunDir
from tradeoff.stages.semantics import (
    AUTHORS,
    CORRECTED,
    authors_prompt,
    authors_text,
    generation_chain,
)
from tradeoff.testing.tiny import make_demo

sys.path.insert(0, str(Path(__file__).parent))  # reward_fns
TEMPLATE = "Human: {prompt} Assistant:"


# --- the authors' code (src/experiments/language_model_experiments/utils/prompt_text_processing.py,
# the Llama and Janus branches), as the reference ------------------------------------------------


def their_transform_prompt(prompt, janus):
    prompt = prompt.strip()
    if not janus:
        stripped = (prompt[len("Human: "):][: -len("Assistant:")]
                    if ("Human:" in prompt and "Assistant" in prompt) else prompt)  # fmt: skip
        return f"Human: {stripped} Assistant:"
    stripped = (
        prompt[len("[INST]") :][: -len("[/INST]")]
        if ("[INST]" in prompt and "[/INST]" in prompt)
        else prompt
    ).strip()
    stripped = (
        stripped[len("Human: ") :][: -len("Assistant:")]
        if ("Human:" in stripped and "Assistant" in stripped)
        else stripped
    ).strip()
    return f"[INST] Human: {stripped} Assistant:[/INST]"


def their_transform_prompt_and_text(prompt, text, janus):
    prompt, text = prompt.strip(), text.strip()
    if not janus:
        stripped = (prompt[len("Human: "):][: -len("Assistant:")]
                    if ("Human:" in prompt and "Assistant" in prompt) else prompt)  # fmt: skip
        stripped_text = text[len(prompt) :] if text.startswith(prompt) else text
        return f"Human: {stripped} Assistant: {stripped_text}"
    stripped = (prompt[len("[INST] Human: "):][: -len(" Assistant:[/INST]")]
                if prompt.startswith("[INST] Human: ") else prompt)  # fmt: skip
    stripped_text = text[len(prompt) :] if text.startswith(prompt) else text
    return f"[INST] Human: {stripped} Assistant:[/INST]{stripped_text}"


@pytest.mark.parametrize("question", ["What is 2+2?", "Tell me a joke.", "  spaced out  "])
@pytest.mark.parametrize("janus", [False, True])
def test_the_scored_texts_are_the_authors(question, janus):
    template = "[INST] Human: {prompt} Assistant:[/INST]" if janus else TEMPLATE
    context = template.replace("{prompt}", question.strip())
    for text in (" Sure, here it is. ", "ok", ""):
        assert authors_text(context, text) == their_transform_prompt_and_text(context, text, janus)
        assert authors_prompt(context) == their_transform_prompt(context, janus)
        assert authors_text(context, text).startswith(authors_prompt(context))


# --- generation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def aligned(tiny):
    return load_causal_lm(str(tiny["aligned"]))


PROMPTS = [Prompt("a", "How do I bake bread?"), Prompt("b", "Tell me a joke.")]


def draw(lm, config, semantics, *, max_new_tokens=12, samples=6):
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, seed=2, template=TEMPLATE, eos_token_ids=(2,),
        max_total_tokens=max_new_tokens if semantics.length_counts_prompt else None,
    )  # fmt: skip
    generator = Generator(lm.model, lm.tokenizer, PROMPTS, [generation_chain(config, semantics)],
                          settings, names=[config])  # fmt: skip
    from tradeoff.generation import work_items

    return generator, generator.run_batch(work_items(len(PROMPTS), samples, 1))


def worst_rank(lm, generator, records):
    """The largest rank (0 = most probable) of a drawn token under the model's own logits."""
    worst = 0
    for r in records:
        context = generator.context_ids(0 if r["prompt_id"] == "a" else 1)
        ids = torch.tensor([context + r["token_ids"]])
        with torch.no_grad():
            logits = lm.model(ids).logits[0, len(context) - 1 : -1]
        for row, token in zip(logits, r["token_ids"], strict=True):
            worst = max(worst, int((row > row[token]).sum()))
    return worst


def test_the_hidden_top_k_50_bounds_the_draws_only_under_the_authors(aligned):
    config = "temperature=3.0,top_p=0.999"  # hot and untruncated: draws far down the ranking
    generator, records = draw(aligned, config, CORRECTED)
    assert worst_rank(aligned, generator, records) >= 50
    generator, records = draw(aligned, config, AUTHORS)
    assert worst_rank(aligned, generator, records) < 50
    assert {r["config"] for r in records} == {config}  # the name is the configuration's


def test_the_length_cap_counts_the_prompt_only_under_the_authors(aligned):
    generator, records = draw(aligned, "ancestral", CORRECTED, max_new_tokens=14)
    assert max(r["n_tokens"] for r in records) == 14
    generator, records = draw(aligned, "ancestral", AUTHORS, max_new_tokens=14)
    for r in records:
        context = generator.context_ids(0 if r["prompt_id"] == "a" else 1)
        assert len(context) + r["n_tokens"] <= 14


# --- scoring --------------------------------------------------------------------------------------


def run_cli(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([str(a) for a in args]) == 0
    return json.loads(out.getvalue()) if out.getvalue().strip() else None


@pytest.fixture(scope="module", params=["corrected", "authors"])
def scored(request, tiny, tmp_path_factory):
    """A generated and scored run under each semantics; EOS ids many, so that strings end."""
    run = tmp_path_factory.mktemp(request.param) / "run"
    run_cli("generate", "--aligned", tiny["aligned"], "--prompts", tiny["prompts"],
            "--max-prompts", "3", "--template", TEMPLATE, "--adaptors", "ancestral", "top_k=20",
            "--samples-per-prompt", "3", "--max-new-tokens", "16", "--seed", "4",
            "--eos-token-id", *range(3, 40), "--semantics", request.param, "--out", run,
            "--no-progress", "--json")  # fmt: skip
    run_cli("score", "--run-dir", run, "--prior", tiny["prior"], "--prior-context", "none",
            "--reward", "python:reward_fns:length", "--no-progress", "--json")  # fmt: skip
    return request.param, run, RunDir(run).analysis_table().to_pylist()


def direct_logp(lm, context_ids, ids, clamp=None):
    with torch.no_grad():
        logits = lm.model(torch.tensor([context_ids + ids])).logits[0].float()
    logp = torch.log_softmax(logits[len(context_ids) - 1 : -1], -1)
    values = logp.gather(1, torch.tensor(ids)[:, None])[:, 0].double().numpy()
    return float((-np.clip(-values, 0, clamp) if clamp else values).sum())


def test_the_prior_is_scored_on_the_text_alone_with_bos_under_the_authors(scored, tiny):
    semantics, run, rows = scored
    prior = load_causal_lm(str(tiny["prior"]))
    tok, bos = prior.tokenizer, prior.tokenizer.bos_token_id
    ended = [r for r in rows if r["stop_reason"] == "eos" and r["text"].strip()]
    assert ended
    for r in ended:
        theirs = tok(r["text"].strip(), add_special_tokens=False)["input_ids"]
        expected = direct_logp(prior, [bos], theirs) if theirs else 0.0
        if semantics == "authors":
            assert r["n_tokens_prior"] == len(theirs)  # no EOS
            assert r["logp_prior"] == pytest.approx(expected, abs=1e-4)
        else:  # the generated ids, EOS included
            assert r["n_tokens_prior"] == r["n_tokens"]


def test_pi_and_q_are_scored_again_their_way_under_the_authors(scored, tiny, aligned):
    semantics, run, rows = scored
    manifest = json.loads((run / "manifest.json").read_text())
    if semantics == "corrected":
        assert "aligned" not in manifest["settings"]["score"]  # generate's log pi stands
        samples = pq.read_table(run / "samples.parquet").to_pylist()
        assert [r["logp_aligned"] for r in rows] == [s["logp_aligned"] for s in samples]
        return
    assert manifest["settings"]["score"]["aligned"]["clamp_token_nll"] == 25.0
    tok, bos = aligned.tokenizer, aligned.tokenizer.bos_token_id
    for r in rows:
        full = tok(authors_text(r["context"], r["text"]), add_special_tokens=False)["input_ids"]
        n = len(tok(authors_prompt(r["context"]), add_special_tokens=False)["input_ids"])
        expected = direct_logp(aligned, [bos] + full[:n], full[n:], clamp=25.0) if full[n:] else 0
        assert r["logp_aligned"] == pytest.approx(expected, abs=1e-4)


def test_the_reward_model_reads_their_text_under_the_authors(scored):
    semantics, run, rows = scored
    for r in rows:  # reward_fns.length: the number of characters the reward saw
        seen = authors_text(r["context"], r["text"]) if semantics == "authors" else r["text"]
        assert r["reward"] == len(seen)
    if semantics == "authors":
        assert any("  Assistant: " in authors_text(r["context"], r["text"]) for r in rows)


def test_the_implicit_reward_has_the_dpo_figures_sign_under_the_authors(scored):
    semantics, run, _ = scored
    run_cli("score", "--run-dir", run, "--reward", "implicit:1", "--replace", "--json")
    for r in RunDir(run).analysis_table().to_pylist():
        implicit = r["logp_aligned"] - r["logp_prior"]
        assert r["reward"] == pytest.approx(-implicit if semantics == "authors" else implicit)
