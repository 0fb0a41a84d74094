"""The paper's presets, run as a researcher would on a GPU node where the six checkpoints sit in
the Hugging Face cache — here their tiny replicas, offline, on the CPU, with the sizes scaled
down by --set: every stage runs to the report, loading every model by hub id."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

SCALED = [
    "models.dtype=float32", "models.device=cpu", "prompts.max_prompts=4",
    "generate.samples_per_prompt=3", "generate.max_new_tokens=40", "generate.batch_size=8",
    "generate.temperatures=[1.0, 1.5]", "score.batch_size=4", "analysis.n_steps=400",
    "analysis.n_corpora=20", "analysis.corpus_size=40", "analysis.n_resamples=40",
]  # fmt: skip
FAMILIES = {"paper-rlhf": '["ancestral", "top_k=50"]', "paper-dpo": '["ancestral", "top_p=0.9"]'}
MODELS = {
    "paper-rlhf": {"aligned": "ethz-spylab/rlhf-7b-harmless", "prior": "meta-llama/Llama-2-7b-hf",
                   "reward": "ethz-spylab/reward_model"},
    "paper-dpo": {"aligned": "kaist-ai/janus-dpo-7b", "prior": "mistral-community/Mistral-7B-v0.2",
                  "reward": "kaist-ai/janus-rm-7b"},
}  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with the dataset's four subsets where the presets look for them."""
    root = tmp_path_factory.mktemp("node")
    for subset in ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled"):
        (root / "data" / "hh-rlhf" / subset).mkdir(parents=True)
        with gzip.open(root / "data" / "hh-rlhf" / subset / "test.jsonl.gz", "wt") as f:
            for i in range(3):
                chosen = f"\n\nHuman: {subset} question {i}?\n\nAssistant: an answer"
                f.write(json.dumps({"chosen": chosen, "rejected": chosen}) + "\n")
    return root


# paper-rlhf under both semantics is run by tests/test_readme.py (the README's offline block),
# which checks it with check_preset_run below.
@pytest.mark.parametrize("semantics", ["corrected", "authors"])
@pytest.mark.parametrize("preset", ["paper-dpo"])
def test_a_preset_runs_every_stage_on_the_replicas(preset, semantics, workdir, replica_cache):
    cache, revisions = replica_cache
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_CACHE"}
    env.update(HF_HOME=str(cache.parent), HF_HUB_OFFLINE="1")  # as on a GPU node
    out = workdir / preset
    sets = [f"out={out}", f"generate.families={FAMILIES[preset]}", *SCALED]
    args = ["run", "--preset", preset, "--semantics", semantics,
            *(a for s in sets for a in ("--set", s))]  # fmt: skip
    plan = subprocess.run([sys.executable, "-m", "tradeoff", *args, "--dry-run", "--json"],
                          capture_output=True, text=True, env=env, cwd=workdir)  # fmt: skip
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = json.loads(plan.stdout)
    assert planned["prompts"] == {"count": 4, "status": "found"}
    computed = semantics == "authors" and preset == "paper-dpo"  # log p - log pi, no model
    assert set(planned["models"].values()) == {"in the Hugging Face cache"} | (
        {"computed"} if computed else set()
    )
    done = subprocess.run([sys.executable, "-m", "tradeoff", *args, "--json"],
                          capture_output=True, text=True, env=env, cwd=workdir)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert len(summary["configs"]) == 4
    check_preset_run(out, preset, semantics, revisions)


def check_preset_run(out, preset, semantics, revisions):
    """A preset's run directory: complete, its models loaded by hub id at their cached
    revisions, its reward in the right format, the report beside the published figures."""
    run = out / ("run-authors" if semantics == "authors" else "run")
    summary = json.loads((run / "summary.json").read_text())
    assert sum(c["n_strings"] for c in summary["configs"]) > 0
    assert summary["semantics"] == semantics
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["semantics"] == semantics
    roles = dict(MODELS[preset])
    if semantics == "authors":
        roles["aligned_scorer"] = roles["aligned"]  # pi and q scored again, their way
        if preset == "paper-dpo":
            del roles["reward"]  # their figure's reward: log p - log pi
            assert manifest["settings"]["score"]["reward"]["source"] == "implicit:1"
    for role, repo_id in roles.items():
        assert manifest["models"][role]["name"] == repo_id
        assert manifest["models"][role]["revision"] == revisions[repo_id]
    if "reward" in roles:
        kind = "score_head" if preset == "paper-rlhf" else "value_head"
        assert manifest["models"]["reward"]["reward_kind"] == kind
    assert all(manifest["stages"][s]["status"] == "complete" for s in ("generate", "score"))
    page = (run / "report.html").read_text()
    setting = "RLHF" if preset == "paper-rlhf" else "DPO"
    assert f"The paper&#x27;s {setting} figures" in page or f"The paper's {setting} figures" in page
    if semantics == "authors":  # the corrected run came first: both sit side by side now
        assert "moves the pooled corpus-level Spearman correlation" in page
