"""Prompt files: JSONL (one object per line with a ``prompt`` field and an optional ``id``),
Parquet (the same columns), or plain text (one prompt per line). Ids default to the line number
(0-based) and must be unique: they key the random streams of generation.

``hh-rlhf:PATH`` selects prompts from a local copy of Anthropic's HH-RLHF test split as the paper
does (:func:`load_hh_rlhf`).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from .generate import Prompt

__all__ = ["first_human_turn", "load_hh_rlhf", "load_prompts"]


def first_human_turn(dialogue: str) -> str | None:
    """The first Human turn of an HH-RLHF dialogue (``"\\n\\nHuman: ... \\n\\nAssistant: ..."``)."""
    start = dialogue.find("Human:")
    if start < 0:
        return None
    start += len("Human:")
    end = dialogue.find("\n\nAssistant:", start)
    return dialogue[start : end if end >= 0 else None].strip()


def load_hh_rlhf(path: str | Path, *, limit: int | None = 1000, seed: int = 42) -> list[Prompt]:
    """The paper's prompts from a local copy of HH-RLHF's test split (JSONL, optionally gzipped,
    one object per line with a ``chosen`` dialogue, as the dataset's ``test.jsonl.gz`` files): the
    first Human turn of each ``chosen`` dialogue, kept if shorter than 256 characters, shuffled
    with seed 42 (``numpy.random.default_rng(42).permutation``, as ``datasets``' ``shuffle``), the
    first ``limit``. Ids are the dialogue's line number in the file, so they are stable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"`prompts` HH-RLHF file {str(path)!r} does not exist; download the dataset's test "
            "split (e.g. harmless-base/test.jsonl.gz) where there is a network and copy it here"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    kept: list[Prompt] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f):
            if not line.strip():
                continue
            turn = first_human_turn(json.loads(line).get("chosen", ""))
            if turn and len(turn) < 256:
                kept.append(Prompt(f"hh-{number}", turn))
    order = np.random.default_rng(seed).permutation(len(kept))
    prompts = [kept[i] for i in order]
    return prompts[:limit] if limit is not None else prompts


def load_prompts(path: str | Path, *, limit: int | None = None) -> list[Prompt]:
    """The prompts of a ``.jsonl``, ``.parquet`` or text file (first ``limit`` of them), or of
    ``hh-rlhf:PATH`` (see :func:`load_hh_rlhf`; 1,000 unless ``limit`` says otherwise)."""
    if str(path).startswith("hh-rlhf:"):
        return load_hh_rlhf(str(path)[len("hh-rlhf:") :], limit=limit or 1000)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`prompts` file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"`prompts` {path}:{number} is not valid JSON: {error}") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                raise ValueError(
                    f"`prompts` {path}:{number} must be an object with a string 'prompt' field"
                )
            rows.append(obj)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "prompt" not in table.column_names:
            raise ValueError(f"`prompts` {path} has no 'prompt' column ({table.column_names})")
        rows = table.to_pylist()
    else:
        rows = [{"prompt": line} for line in path.read_text(encoding="utf-8").splitlines() if line]
    prompts = [
        Prompt(str(row["id"]) if row.get("id") is not None else str(i), row["prompt"])
        for i, row in enumerate(rows)
    ]
    if limit is not None:
        prompts = prompts[:limit]
    if not prompts:
        raise ValueError(f"`prompts` file {path} holds no prompts")
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise ValueError(f"`prompts` file {path} has the id {p.id!r} twice; ids must be unique")
        seen.add(p.id)
    return prompts
