"""Prompt files: JSONL (one object per line with a ``prompt`` field and an optional ``id``),
Parquet (the same columns), or plain text (one prompt per line). Ids default to the line number
(0-based) and must be unique: they key the random streams of generation."""

from __future__ import annotations

import json
from pathlib import Path

from .generate import Prompt

__all__ = ["load_prompts"]


def load_prompts(path: str | Path, *, limit: int | None = None) -> list[Prompt]:
    """The prompts of a ``.jsonl``, ``.parquet`` or text file (first ``limit`` of them)."""
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
