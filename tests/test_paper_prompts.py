"""The paper's prompt selection from HH-RLHF's test split — one file, the dataset's directory of
four subsets, or `datasets.load_dataset` — against the authors' own pipeline run with the real
`datasets` library on a synthetic copy, under both semantics."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tradeoff.generation import load_prompts
from tradeoff.generation.prompts import paper_prompt

SUBSETS = ["harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled"]
TEMPLATE = "Human: {prompt} Assistant:"


def dialogues(subset: str) -> list[str]:
    """Rows with known answers: plain prompts, a multi-paragraph turn (the first paragraph is
    the prompt), a turn without a space after the label (the authors' lstrip eats "H"), one that
    fits in 256 characters only without the template, and one too long either way."""
    rows = [f"\n\nHuman: {subset} question {i}?\n\nAssistant: an answer" for i in range(9)]
    rows.append(f"\n\nHuman: first paragraph of {subset}\n\nsecond paragraph\n\nAssistant: ok")
    rows.append(f"\n\nHuman:Hello from {subset}\n\nAssistant: hi")
    rows.append("\n\nHuman: " + "w" * 240 + "\n\nAssistant: fits raw, not templated")
    rows.append("\n\nHuman: " + "x" * 300 + "\n\nAssistant: too long")
    return rows


@pytest.fixture(scope="module")
def hh_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("hh-rlhf")
    for subset in SUBSETS:
        (root / subset).mkdir()
        for split in ("test", "train"):
            with gzip.open(root / subset / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
                for chosen in dialogues(subset) if split == "test" else ["\n\nHuman: t\n\nA: t"]:
                    f.write(json.dumps({"chosen": chosen, "rejected": chosen}) + "\n")
    return root


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    return datasets


def authors_pipeline(datasets, root, limit, template=TEMPLATE):
    """sample_from_model.py's selection, as written (with its template for the Llama models)."""
    dataset = datasets.load_dataset(str(root))["test"].map(
        lambda pair: {"prompt": pair["chosen"].split("\n\n")[1].lstrip("Human:").strip()}
    )
    return (
        dataset.map(lambda row: {"prompt": template.replace("{prompt}", row["prompt"].strip())})
        .filter(lambda row: len(row["prompt"]) < 256)
        .shuffle(seed=42)
        .select(range(limit))
        .to_pandas()["prompt"]
        .tolist()
    )


def test_the_authors_extraction_and_the_corrected_one():
    assert paper_prompt("\n\nHuman: a b\n\nc\n\nAssistant: d") == "a b"
    assert paper_prompt("\n\nHuman:Hello\n\nAssistant: d", "authors") == "ello"
    assert paper_prompt("\n\nHuman:Hello\n\nAssistant: d") == "Hello"
    assert paper_prompt("no dialogue") is None


def test_the_directory_matches_the_authors_pipeline(hh_copy, datasets_cache):
    ours = load_prompts(f"hh-rlhf:{hh_copy}", limit=30, template=TEMPLATE, semantics="authors")
    expected = authors_pipeline(datasets_cache, hh_copy, 30)
    assert [TEMPLATE.replace("{prompt}", p.text) for p in ours] == expected
    assert any(p.text.startswith("ello from") for p in ours)  # the quirk, reproduced
    # Their rows, numbered over the four subsets in the dataset's order, are the ids.
    rows = [c for s in SUBSETS for c in dialogues(s)]
    kept = [(f"hh-{i}", c.split("\n\n")[1].lstrip("Human:").strip()) for i, c in enumerate(rows)]
    kept = [(i, p) for i, p in kept if len(TEMPLATE.replace("{prompt}", p)) < 256]
    order = np.random.default_rng(42).permutation(len(kept))
    assert [(p.id, p.text) for p in ours] == [kept[i] for i in order][:30]


def test_the_corrected_selection_has_known_ids(hh_copy):
    rows = [c for s in SUBSETS for c in dialogues(s)]
    # The reference, written out: row numbers over the four subsets in the dataset's order.
    kept = []
    for number, chosen in enumerate(rows):
        prompt = chosen.split("\n\n")[1].removeprefix("Human:").strip()
        if len(f"Human: {prompt} Assistant:") < 256:
            kept.append((f"hh-{number}", prompt))
    order = np.random.default_rng(42).permutation(len(kept))
    expected = [kept[i] for i in order][:25]
    ours = load_prompts(f"hh-rlhf:{hh_copy}", limit=25, template=TEMPLATE)
    assert [(p.id, p.text) for p in ours] == expected
    assert not any(p.text.startswith("w" * 240) for p in ours)  # too long once templated
    assert any(p.text.startswith("Hello from") for p in ours)  # no lstrip quirk
    # Without the template, the 240-character prompt is kept.
    assert any(len(p.text) == 240 for p in load_prompts(f"hh-rlhf:{hh_copy}", limit=100))
    # One subset's file alone: ids are its own rows.
    one = load_prompts(f"hh-rlhf:{hh_copy / SUBSETS[1] / 'test.jsonl.gz'}", limit=100)
    assert {p.id for p in one} <= {f"hh-{i}" for i in range(len(dialogues(SUBSETS[1])))}


@pytest.mark.parametrize("semantics", ["corrected", "authors"])
def test_the_datasets_source_gives_the_same_prompts(hh_copy, datasets_cache, semantics):
    from_directory = load_prompts(f"hh-rlhf:{hh_copy}", limit=40, template=TEMPLATE,
                                  semantics=semantics)  # fmt: skip
    from_datasets = load_prompts(f"hf-dataset:{hh_copy}", limit=40, template=TEMPLATE,
                                 semantics=semantics)  # fmt: skip
    assert from_datasets == from_directory and len(from_directory) == 40


def test_a_directory_without_subsets_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no \\*/test.jsonl.gz"):
        load_prompts(f"hh-rlhf:{tmp_path}")
