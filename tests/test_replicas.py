"""The paper's six checkpoints as tiny replicas in a Hugging Face hub cache: hub ids resolve
offline, both reward formats are recognised from the files and give the rewards their original
code computes (safe-rlhf's end score; OpenRLHF's value head, with cumsum position ids and
optional normalisation), whatever the padding side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch

from tradeoff.models import load_causal_lm, load_reward, model_identity
from tradeoff.models.rewards import read_checkpoint
from tradeoff.rundir import RunDir
from tradeoff.testing.replicas import REPLICAS

PROMPTS = ["How do I bake bread?", "Tell me a joke about the quick brown fox and the lazy dog"]
TEXTS = [" Mix flour and water.", " Why did the chicken cross the road? To get across."]
TEMPLATE = "Human: {prompt} Assistant: {response}"


@pytest.fixture(scope="module")
def cache(replica_cache):
    return replica_cache


@pytest.fixture
def offline_cache(cache, monkeypatch):
    path, revisions = cache
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(path))
    monkeypatch.setenv("HF_HUB_CACHE", str(path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return path, revisions


def snapshot(cache, repo_id):
    path, revisions = cache
    return path / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revisions[repo_id]


def test_the_cache_has_the_hub_layout_and_the_real_file_names(cache):
    path, revisions = cache
    for repo_id, revision in revisions.items():
        repo = path / f"models--{repo_id.replace('/', '--')}"
        assert (repo / "refs" / "main").read_text() == revision
        for file in (repo / "snapshots" / revision).iterdir():
            assert file.is_symlink() and file.resolve().parent == (repo / "blobs").resolve()
    names = {r: sorted(p.name for p in snapshot(cache, r).iterdir()) for r in REPLICAS}
    assert "model.safetensors.index.json" in names["meta-llama/Llama-2-7b-hf"]
    assert "pytorch_model.bin.index.json" in names["meta-llama/Llama-2-7b-hf"]
    assert "pytorch_model.bin" in names["ethz-spylab/rlhf-7b-harmless"]
    assert "generation_config.json" not in names["ethz-spylab/rlhf-7b-harmless"]
    assert "generation_config.json" not in names["kaist-ai/janus-rm-7b"]
    assert "tokenizer.json" not in names["kaist-ai/janus-dpo-7b"]
    assert "model-00003-of-00003.safetensors" in names["kaist-ai/janus-rm-7b"]
    reward = read_checkpoint(str(snapshot(cache, "ethz-spylab/reward_model")))
    assert reward.keys_under("score_head.") == ["score_head.weight"]
    assert not reward.keys_under("lm_head.")
    janus = read_checkpoint(str(snapshot(cache, "kaist-ai/janus-rm-7b")))
    assert janus.keys_under("value_head.") == ["value_head.weight"]
    assert not janus.keys_under("lm_head.")
    assert janus.config["architectures"] == ["LLMForSequenceRegression"]


@pytest.mark.parametrize("repo_id", [r for r in REPLICAS if REPLICAS[r].kind == "causal_lm"])
def test_causal_lms_load_by_hub_id_offline(offline_cache, repo_id):
    lm = load_causal_lm(repo_id)
    assert lm.identity["revision"] == offline_cache[1][repo_id]
    architecture = REPLICAS[repo_id].config["architectures"][0]
    assert lm.identity == {**model_identity(repo_id), "dtype": "float32",
                           "architecture": architecture}  # fmt: skip
    tokenizer = lm.tokenizer
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<s>", "</s>")
    assert tokenizer("hello")["input_ids"][0] == 1  # BOS added
    expected_vocabulary = REPLICAS[repo_id].config["vocab_size"]
    assert len(tokenizer) == expected_vocabulary
    if repo_id == "ethz-spylab/rlhf-7b-harmless":
        assert tokenizer.pad_token == "<pad>" and tokenizer.pad_token_id == 32000
    if repo_id == "kaist-ai/janus-dpo-7b":
        assert tokenizer.pad_token == "</s>"


def _backbone(cache, repo_id):
    """The reward model's backbone built from its config, with the checkpoint's ``model.``
    weights read straight from its shards (no loader of ours)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    directory = snapshot(cache, repo_id)
    state = {}
    for file in sorted(directory.iterdir()):
        if file.name.endswith(".safetensors"):
            state.update(load_file(str(file)))
        elif file.name.endswith(".bin"):
            state.update(torch.load(file, weights_only=True))
    config = AutoConfig.from_pretrained(str(directory))
    model = AutoModel.from_config(config).float()
    backbone = {
        k.removeprefix("model."): v.float() for k, v in state.items() if k.startswith("model.")
    }
    model.load_state_dict(backbone, strict=False)
    head = next(v for k, v in state.items() if k.endswith("_head.weight")).float()
    return model.eval(), head, config


def _direct(cache, repo_id, texts, *, normalize=False):
    """The original code's formula on one unpadded sequence at a time."""
    from transformers import AutoTokenizer

    model, head, config = _backbone(cache, repo_id)
    tokenizer = AutoTokenizer.from_pretrained(str(snapshot(cache, repo_id)))
    values = []
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            hidden = model(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None])
        value = float(hidden.last_hidden_state[0, -1] @ head[0])
        if normalize:
            value = (value - config.mean) / config.std
        values.append(value)
    return np.array(values)


@pytest.mark.parametrize("repo_id, kind", [("ethz-spylab/reward_model", "score_head"),
                                           ("kaist-ai/janus-rm-7b", "value_head")])  # fmt: skip
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_rewards_by_hub_id_equal_the_original_formulas(offline_cache, repo_id, kind, padding_side,
                                                      monkeypatch):  # fmt: skip
    from transformers import PreTrainedTokenizerBase

    original = PreTrainedTokenizerBase.__call__

    def padded(self, *args, **kwargs):  # the padding side a user's tokenizer may have
        if kwargs.get("padding") and kind == "value_head":
            self.padding_side = padding_side
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", padded)
    reward = load_reward(repo_id, template=TEMPLATE, batch_size=2)
    assert reward.identity["reward_kind"] == kind
    assert reward.identity["revision"] == offline_cache[1][repo_id]
    inputs = [TEMPLATE.format(prompt=p, response=t) for p, t in zip(PROMPTS, TEXTS, strict=True)]
    np.testing.assert_allclose(reward(PROMPTS, TEXTS), _direct(offline_cache, repo_id, inputs),
                               atol=1e-5)  # fmt: skip


def test_value_head_normalisation_only_when_asked(offline_cache):
    repo_id = "kaist-ai/janus-rm-7b"
    inputs = [TEMPLATE.format(prompt=p, response=t) for p, t in zip(PROMPTS, TEXTS, strict=True)]
    reward = load_reward(repo_id, template=TEMPLATE, normalize=True)
    expected = _direct(offline_cache, repo_id, inputs, normalize=True)
    np.testing.assert_allclose(reward(PROMPTS, TEXTS), expected, atol=1e-5)
    with pytest.raises(ValueError, match="applies to value-head"):
        load_reward("ethz-spylab/reward_model", template=TEMPLATE, normalize=True)


def test_score_by_hub_id_from_the_command_line(offline_cache, tmp_path):
    path, _ = offline_cache
    env = {**os.environ, "HF_HUB_CACHE": str(path), "HF_HUB_OFFLINE": "1"}
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("How do I bake bread?\nTell me a joke.\n")

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "tradeoff", *map(str, args)],
                              capture_output=True, text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    run = tmp_path / "run"
    cli("generate", "--aligned", "kaist-ai/janus-dpo-7b", "--prompts", prompts,
        "--template", "[INST] Human: {prompt} Assistant:[/INST]", "--adaptors", "ancestral",
        "--samples-per-prompt", "2", "--max-new-tokens", "6", "--out", run)  # fmt: skip
    for repo_id, kind in (("kaist-ai/janus-rm-7b", "value_head"),
                          ("ethz-spylab/reward_model", "score_head")):  # fmt: skip
        cli("score", "--run-dir", run, "--reward", repo_id, "--reward-template", TEMPLATE,
            "--replace")  # fmt: skip
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["models"]["reward"]["reward_kind"] == kind
        assert manifest["models"]["reward"]["revision"] == offline_cache[1][repo_id]
        rows = RunDir(run).analysis_table().to_pylist()
        inputs = [TEMPLATE.format(prompt=r["prompt"], response=r["text"]) for r in rows]
        np.testing.assert_allclose([r["reward"] for r in rows],
                                   _direct(offline_cache, repo_id, inputs), atol=1e-5)  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["models"]["aligned"]["revision"] == offline_cache[1]["kaist-ai/janus-dpo-7b"]
    assert Path(run / "scores.parquet").exists()
