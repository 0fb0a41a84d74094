"""Prompt sources: a JSONL file (one object per line with a ``prompt`` field and an optional
``id``), a Parquet file (the same columns), a plain text file (one prompt per line), or
``hh-rlhf:PATH``, the paper's selection from a local copy of Anthropic's HH-RLHF test split
(:func:`load_hh_rlhf`). Ids default to the line number (0-based) and must be unique: they key the
random streams of generation.

Every problem with a prompt source is an :class:`~tradeoff.errors.InputFileError` that names the
file (and the line, where there is one).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError
from .work import Prompt

__all__ = [
    "PromptSource",
    "first_human_turn",
    "load_hh_rlhf",
    "load_prompts",
    "parse_prompt_source",
]

HH_RLHF = "hh-rlhf:"


@dataclass(frozen=True)
class PromptSource:
    """A parsed prompt spec: ``kind`` is ``file`` or ``hh-rlhf``; ``path`` the file."""

    spec: str
    kind: str
    path: Path

    def sha256(self) -> str:
        """A hash of the file's bytes (recorded in the manifest: the prompts are an input)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def parse_prompt_source(spec: str | Path) -> PromptSource:
    """The one parser of prompt specs; checks that the file is there and is a file."""
    text = str(spec)
    kind, path_text = (
        ("hh-rlhf", text[len(HH_RLHF) :]) if text.startswith(HH_RLHF) else ("file", text)
    )
    path = Path(path_text).expanduser()
    what = "HH-RLHF file" if kind == "hh-rlhf" else "file"
    if path.is_dir():
        raise InputFileError(f"`prompts` {what} {path_text!r} is a directory; give a prompt file")
    if not path.is_file():
        hint = (
            "; download the dataset's test split (e.g. harmless-base/test.jsonl.gz) where there "
            "is a network and copy it here"
            if kind == "hh-rlhf"
            else ""
        )
        raise InputFileError(f"`prompts` {what} {path_text!r} does not exist{hint}")
    return PromptSource(text, kind, path)


def first_human_turn(dialogue: str) -> str | None:
    """The first Human turn of an HH-RLHF dialogue (``"\\n\\nHuman: ... \\n\\nAssistant: ..."``)."""
    start = dialogue.find("Human:")
    if start < 0:
        return None
    start += len("Human:")
    end = dialogue.find("\n\nAssistant:", start)
    return dialogue[start : end if end >= 0 else None].strip()


def _lines(path: Path, opener: Any = open, *, newline_only: bool = False) -> list[str]:
    """The file's lines (split at "\n" alone when ``newline_only``, as iterating a file does)."""
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
            return text.split("\n") if newline_only else text.splitlines()
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"`prompts` file {str(path)!r} is not UTF-8 text (byte {error.start}: "
            f"{error.reason}); convert it to UTF-8"
        ) from None
    except (OSError, EOFError) as error:
        raise InputFileError(f"`prompts` file {str(path)!r} cannot be read ({error})") from None


def _json_lines(path: Path, lines: list[str]) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed value) of each non-blank line of a JSONL file."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise InputFileError(f"`prompts` {path}:{number} is not valid JSON: {error}") from None


def load_hh_rlhf(path: str | Path, *, limit: int | None = 1000, seed: int = 42) -> list[Prompt]:
    """The paper's prompts from a local copy of HH-RLHF's test split (JSONL, optionally gzipped,
    one object per line with a ``chosen`` dialogue, as the dataset's ``test.jsonl.gz`` files): the
    first Human turn of each ``chosen`` dialogue, kept if shorter than 256 characters, shuffled
    with seed 42 (``numpy.random.default_rng(42).permutation``, as ``datasets``' ``shuffle``), the
    first ``limit``. Ids are the dialogue's line number in the file, so they are stable."""
    source = parse_prompt_source(f"{HH_RLHF}{path}")
    opener = gzip.open if source.path.suffix == ".gz" else open
    kept: list[Prompt] = []
    for number, row in _json_lines(source.path, _lines(source.path, opener, newline_only=True)):
        chosen = row.get("chosen", "") if isinstance(row, dict) else ""
        turn = first_human_turn(chosen) if isinstance(chosen, str) else None
        if turn and len(turn) < 256:
            kept.append(Prompt(f"hh-{number - 1}", turn))
    order = np.random.default_rng(seed).permutation(len(kept))
    prompts = [kept[i] for i in order]
    prompts = prompts[:limit] if limit is not None else prompts
    if not prompts:
        raise InputFileError(
            f"`prompts` HH-RLHF file {str(source.path)!r} holds no usable "
            "dialogue (objects with a 'chosen' field)"
        )
    return prompts


def _rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        rows = []
        for number, obj in _json_lines(path, _lines(path)):
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
                raise InputFileError(
                    f"`prompts` {path}:{number} must be an object with a string 'prompt' field"
                )
            rows.append(obj)
        return rows
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            raise InputFileError(
                f"`prompts` file {str(path)!r} is not a readable Parquet file "
                f"({str(error).splitlines()[0]})"
            ) from None
        if "prompt" not in table.column_names:
            raise InputFileError(
                f"`prompts` {path} has no 'prompt' column ({', '.join(table.column_names)})"
            )
        rows = table.to_pylist()
        for number, row in enumerate(rows):
            if not isinstance(row["prompt"], str):
                raise InputFileError(
                    f"`prompts` {path} row {number}: 'prompt' must be a string, got "
                    f"{row['prompt']!r}"
                )
        return rows
    return [{"prompt": line} for line in _lines(path) if line]


def load_prompts(path: str | Path, *, limit: int | None = None) -> list[Prompt]:
    """The prompts of a ``.jsonl``, ``.parquet`` or text file (first ``limit`` of them), or of
    ``hh-rlhf:PATH`` (see :func:`load_hh_rlhf`; 1,000 unless ``limit`` says otherwise)."""
    source = parse_prompt_source(path)
    if source.kind == "hh-rlhf":
        return load_hh_rlhf(source.path, limit=limit or 1000)
    rows = _rows(source.path)
    prompts = [
        Prompt(str(row["id"]) if row.get("id") is not None else str(i), row["prompt"])
        for i, row in enumerate(rows)
    ]
    if limit is not None:
        prompts = prompts[:limit]
    if not prompts:
        raise InputFileError(f"`prompts` file {source.path} holds no prompts")
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise InputFileError(
                f"`prompts` file {source.path} has the id {p.id!r} twice; ids must be unique"
            )
        seen.add(p.id)
    return prompts
