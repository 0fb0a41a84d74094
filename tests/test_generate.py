"""Generation on tiny local models (GPT-2 and Llama architectures, random weights, a BPE tokenizer
trained here), loaded through the path users take: KV-cache log-probabilities against a full
forward pass, batch-size invariance, EOS and stop strings, the run directory, resume after a kill,
and torchrun with two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from processes import kill_after

import tradeoff
from tradeoff.generation import GenerationSettings, Prompt, load_prompts, make_batches, work_items
from tradeoff.generation.hf import Generator
from tradeoff.models import ModelNotFoundError, load_causal_lm
from tradeoff.testing.tiny import save_tiny_model

PROMPTS = [
    Prompt("p0", "How do I bake bread?"),
    Prompt("p1", "Tell me a joke about the quick brown fox and the lazy dog"),
    Prompt("p2", "Hi"),
]
CHAINS = ["ancestral", "temperature=0.7,top_k=20", "top_p=0.9", "typical=0.8,temperature=1.5"]
TEMPLATE = "Human: {prompt} Assistant:"
# torchrun runs each process with one torch thread; the reference run does too, so that the
# float sums inside the model are the same and the tables identical, not only close.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRADEOFF_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model_dir(request, tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_causal_lm(str(model_dir))


def generate_all(lm, batch_size, settings=None, chains=CHAINS, samples=2):
    settings = settings or GenerationSettings(max_new_tokens=10, seed=3, template=TEMPLATE)
    gen = Generator(lm.model, lm.tokenizer, PROMPTS, chains, settings)
    items = work_items(len(PROMPTS), samples, len(chains))
    return [r for batch in make_batches(items, batch_size) for r in gen.run_batch(batch)], gen


def test_kv_cache_log_probs_match_a_full_forward_pass(loaded):
    records, gen = generate_all(loaded, batch_size=5)
    for r in records:
        context = gen.context_ids(PROMPTS.index(next(p for p in PROMPTS if p.id == r["prompt_id"])))
        ids = torch.tensor([context + r["token_ids"]])
        with torch.no_grad():
            logits = loaded.model(ids).logits[0, len(context) - 1 : -1].float()
        expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(r["token_ids"])[:, None])
        np.testing.assert_allclose(r["token_logp_aligned"], expected[:, 0].numpy(), atol=2e-4)
        scored = tradeoff.score_tokens(logits, torch.tensor(r["token_ids"]), r["config"])
        np.testing.assert_allclose(r["token_logp_adapted"], scored.logp_adapted.numpy(), atol=2e-4)
        assert r["logp_aligned"] == pytest.approx(sum(r["token_logp_aligned"]))
        assert r["n_tokens"] == len(r["token_ids"]) == 10


def test_same_strings_whatever_the_batch_size(loaded):
    reference, _ = generate_all(loaded, batch_size=1)
    for batch_size in (3, 7, 24):
        records, _ = generate_all(loaded, batch_size=batch_size)
        for a, b in zip(reference, records, strict=True):
            assert a["token_ids"] == b["token_ids"]
            assert a["logp_aligned"] == pytest.approx(b["logp_aligned"], abs=1e-3)
    # Different seeds and different configurations give different strings.
    other, _ = generate_all(
        loaded, 4, GenerationSettings(max_new_tokens=10, seed=4, template=TEMPLATE)
    )
    assert [r["token_ids"] for r in other] != [r["token_ids"] for r in reference]


def test_ancestral_is_truly_ancestral(loaded):
    # No hidden truncation (transformers' generate() applies top_k=50 unless told otherwise):
    # log q equals log pi for every token, up to float rounding.
    records, _ = generate_all(loaded, 6, chains=["ancestral"])
    for r in records:
        np.testing.assert_allclose(r["token_logp_adapted"], r["token_logp_aligned"], atol=1e-6)


def test_eos_and_stop_strings_end_strings(loaded):
    # Many end ids, so that strings end early; a finished string ends with its EOS, counted.
    eos = tuple(range(3, 200))
    settings = GenerationSettings(max_new_tokens=30, seed=0, template=TEMPLATE, eos_token_ids=eos)
    records, _ = generate_all(loaded, 4, settings)
    finished = [r for r in records if r["finished"]]
    assert finished and len(finished) < len(records) + 1
    for r in finished:
        assert r["stop_reason"] == "eos" and r["token_ids"][-1] in eos
        assert all(t not in eos for t in r["token_ids"][:-1])
    settings = GenerationSettings(max_new_tokens=30, seed=0, template=TEMPLATE, stop_strings=("e",))
    records, _ = generate_all(loaded, 4, settings)
    stopped = [r for r in records if r["stop_reason"] == "stop_string"]
    assert stopped
    for r in stopped:
        assert "e" in loaded.tokenizer.decode(r["token_ids"])
        assert "e" not in loaded.tokenizer.decode(r["token_ids"][:-1])


def test_missing_model_offline_says_how_to_provide_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the Hugging Face cache.*download"):
        load_causal_lm("nobody/no-such-model-xyz")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_causal_lm(str(tmp_path / "missing"))


def test_hh_rlhf_selection(tmp_path):
    import gzip

    from tradeoff.generation import first_human_turn

    dialogue = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?\n\nAssistant: 6."
    assert first_human_turn(dialogue) == "What is 2+2?"
    rows = [{"chosen": f"\n\nHuman: question {i}\n\nAssistant: answer"} for i in range(50)]
    rows.append({"chosen": "\n\nHuman: " + "x" * 300 + "\n\nAssistant: too long"})
    path = tmp_path / "test.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    prompts = load_prompts(f"hh-rlhf:{path}", limit=10)
    order = np.random.default_rng(42).permutation(50)[:10]
    assert [p.text for p in prompts] == [f"question {i}" for i in order]
    assert [p.id for p in prompts] == [f"hh-{i}" for i in order]
    assert len(load_prompts(f"hh-rlhf:{path}")) == 50  # the long one is left out


def test_prompt_files(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a", "id": 7}\n\n{"prompt": "b"}\n')
    assert load_prompts(jsonl) == [Prompt("7", "a"), Prompt("1", "b")]
    text = tmp_path / "p.txt"
    text.write_text("first\nsecond\n")
    assert [p.text for p in load_prompts(text, limit=1)] == ["first"]
    import pyarrow as pa

    pq.write_table(pa.table({"prompt": ["x", "y"], "id": ["a", "b"]}), tmp_path / "p.parquet")
    assert load_prompts(tmp_path / "p.parquet")[1] == Prompt("b", "y")
    jsonl.write_text('{"prompt": "a", "id": 1}\n{"prompt": "b", "id": 1}\n')
    with pytest.raises(ValueError, match="id '1' twice"):
        load_prompts(jsonl)
    jsonl.write_text('{"text": "a"}\n')
    with pytest.raises(ValueError, match="string 'prompt' field"):
        load_prompts(jsonl)


# --- the command line, the run directory, resume, torchrun -----------------------------------


def cli_args(model_dir, prompts, out, extra=()):
    return [
        "generate",
        "--aligned", str(model_dir),
        "--prompts", str(prompts),
        "--adaptors", "ancestral", "temperature=1.5,top_p=0.9",
        "--samples-per-prompt", "3",
        "--max-new-tokens", "24",
        "--seed", "11",
        "--template", TEMPLATE,
        "--batch-size", "4",
        "--out", str(out),
        "--json",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    lines = [
        json.dumps({"id": f"q{i}", "prompt": f"Question {i}: how are you today?"}) for i in range(6)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def reference_run(model_dir, prompt_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    done = subprocess.run(
        [sys.executable, "-m", "tradeoff", *cli_args(model_dir, prompt_file, out)],
        capture_output=True, text=True, env=ENV, check=True,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    return out, summary


def test_cli_generate_writes_a_complete_run(reference_run, prompt_file):
    out, summary = reference_run
    assert summary["strings"] == 6 * 3 * 2
    table = pq.read_table(out / "samples.parquet")
    assert table.num_rows == 36
    for column in ("prompt_id", "prompt", "config", "sample_index", "text", "token_ids",
                   "n_tokens", "finished", "logp_aligned", "logp_adapted"):  # fmt: skip
        assert column in table.column_names
    assert sorted(set(table["config"].to_pylist())) == ["ancestral", "temperature=1.5,top_p=0.9"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["status"] == "complete"
    assert manifest["settings"]["generate"]["seed"] == 11
    assert manifest["models"]["aligned"]["config_sha256"]
    assert "torch" in manifest["versions"]


def test_resume_after_sigkill_gives_the_same_table(reference_run, model_dir, prompt_file, tmp_path):
    reference, _ = reference_run
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "tradeoff", *cli_args(model_dir, prompt_file, out)]
    kill_after(args, ENV, out / "shards" / "generate")
    assert not (out / "samples.parquet").exists(), "the run finished before it was killed"
    resumed = subprocess.run(args, capture_output=True, text=True, env=ENV, check=True)
    summary = json.loads(resumed.stdout)
    assert summary["batches_resumed"] >= 2
    assert pq.read_table(out / "samples.parquet").equals(
        pq.read_table(reference / "samples.parquet")
    )
    # Resuming with other settings is refused.
    changed = [a if a != "11" else "12" for a in args]
    refused = subprocess.run(changed, capture_output=True, text=True, env=ENV)
    assert refused.returncode == 2 and "other generate settings (different: seed)" in refused.stderr


def test_torchrun_two_processes_match_one(reference_run, model_dir, prompt_file, tmp_path):
    reference, _ = reference_run
    out = tmp_path / "torchrun"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29517", "-m", "tradeoff", *cli_args(model_dir, prompt_file, out)],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2
    assert pq.read_table(out / "samples.parquet").equals(
        pq.read_table(reference / "samples.parquet")
    )
