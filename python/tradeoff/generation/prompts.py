"""Prompt sources: a JSONL file (one object per line with a ``prompt`` field and an optional
``id``), a Parquet file (the same columns), a plain text file (one prompt per line),
``hh-rlhf:PATH`` (the paper's selection from a local copy of Anthropic's HH-RLHF test split: one
``test.jsonl.gz`` file, or the dataset's directory with its four subsets) or
``hf-dataset:NAME`` (the same selection from ``datasets.load_dataset(NAME)``, e.g.
``hf-dataset:Anthropic/hh-rlhf``, offline from the datasets cache with ``HF_HUB_OFFLINE=1``; needs
the ``datasets`` package). Ids default to the line number (0-based) and must be unique: they key
the random streams of generation.

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
    "paper_prompt",
    "parse_prompt_source",
    "prompts_sha256",
    "select_hh_rlhf",
]

HH_RLHF = "hh-rlhf:"
HF_DATASET = "hf-dataset:"


@dataclass(frozen=True)
class PromptSource:
    """A parsed prompt spec: ``kind`` is ``file``, ``hh-rlhf`` (``path`` a file or the
    dataset's directory) or ``hf-dataset`` (``name`` a dataset for ``datasets.load_dataset``)."""

    spec: str
    kind: str
    path: Path | None
    name: str | None = None


def prompts_sha256(prompts: list[Prompt]) -> str:
    """A hash of the prompts a run uses (ids and texts), recorded in its manifest."""
    digest = hashlib.sha256()
    for p in prompts:
        digest.update(f"{p.id}\x1f{p.text}\x1e".encode())
    return digest.hexdigest()


def parse_prompt_source(spec: str | Path) -> PromptSource:
    """The one parser of prompt specs; checks that a file is there and is a file (a directory
    only for ``hh-rlhf:``)."""
    text = str(spec)
    if text.startswith(HF_DATASET):
        name = text[len(HF_DATASET) :]
        if not name:
            raise InputFileError("`prompts` hf-dataset:NAME needs a dataset name")
        return PromptSource(text, "hf-dataset", None, name)
    kind, path_text = (
        ("hh-rlhf", text[len(HH_RLHF) :]) if text.startswith(HH_RLHF) else ("file", text)
    )
    path = Path(path_text).expanduser()
    what = "HH-RLHF file" if kind == "hh-rlhf" else "file"
    if path.is_dir():
        if kind == "hh-rlhf":
            if not _subset_files(path):
                raise InputFileError(
                    f"`prompts` HH-RLHF directory {path_text!r} holds no */test.jsonl.gz "
                    "(harmless-base, helpful-base, helpful-online, helpful-rejection-sampled)"
                )
            return PromptSource(text, kind, path)
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


def _subset_files(directory: Path) -> list[Path]:
    """The test files of an HH-RLHF directory, in the order ``datasets`` reads them."""
    return sorted(p for p in directory.glob("*/test.jsonl*") if p.is_file())


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


def paper_prompt(chosen: str, semantics: str = "corrected") -> str | None:
    """The prompt the paper's code takes from a ``chosen`` dialogue: its first paragraph
    (``chosen.split("\n\n")[1]``) without the ``Human:`` label. Under ``authors`` semantics the
    label is removed with ``lstrip("Human:")`` as in their code, which strips a *set of
    characters*, so a prompt that follows ``Human:`` without a space and starts with one of
    ``H u m a n :`` loses those letters."""
    parts = chosen.split("\n\n")
    if len(parts) < 2:
        return None
    if semantics == "authors":
        return parts[1].lstrip("Human:").strip()
    return parts[1].strip().removeprefix("Human:").strip()


def _templated_length(template: str, prompt: str) -> int:
    """The length of the prompt as the model sees it (the chat template is not known here: the
    prompt itself)."""
    return len(template.replace("{prompt}", prompt)) if template != "chat" else len(prompt)


def select_hh_rlhf(
    rows: list[Any],
    *,
    where: str,
    limit: int | None = 1000,
    seed: int = 42,
    template: str = "{prompt}",
    semantics: str = "corrected",
) -> list[Prompt]:
    """The paper's selection from HH-RLHF's test rows (objects with a ``chosen`` dialogue, in
    the dataset's order): :func:`paper_prompt` of each, kept if the templated prompt is shorter
    than 256 characters, shuffled with seed 42 (``numpy.random.default_rng(42).permutation``, as
    ``datasets``' ``shuffle``), the first ``limit``. A prompt's id is ``hh-ROW``, its row in the
    split, so ids are stable across runs and sources."""
    kept: list[Prompt] = []
    for row_number, row in enumerate(rows):
        chosen = row.get("chosen") if isinstance(row, dict) else None
        prompt = paper_prompt(chosen, semantics) if isinstance(chosen, str) else None
        if prompt and _templated_length(template, prompt) < 256:
            kept.append(Prompt(f"hh-{row_number}", prompt))
    order = np.random.default_rng(seed).permutation(len(kept))
    prompts = [kept[i] for i in order]
    prompts = prompts[:limit] if limit is not None else prompts
    if not prompts:
        raise InputFileError(
            f"`prompts` {where} holds no usable dialogue (objects with a 'chosen' field)"
        )
    return prompts


def _hh_rows(source: PromptSource) -> list[Any]:
    assert source.path is not None
    files = _subset_files(source.path) if source.path.is_dir() else [source.path]
    rows: list[Any] = []
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        rows += [row for _, row in _json_lines(path, _lines(path, opener, newline_only=True))]
    return rows


def _dataset_rows(source: PromptSource) -> list[Any]:
    """The test split of ``datasets.load_dataset(NAME)`` (``NAME@SPLIT`` for another split),
    offline from its cache when ``HF_HUB_OFFLINE`` is set (datasets honours it)."""
    try:
        import datasets
    except ImportError:
        raise InputFileError(
            f"`prompts` {source.spec!r} needs the datasets package: pip install "
            "'tradeoff[datasets]' (or datasets)"
        ) from None
    name, _, split = str(source.name).partition("@")
    try:
        dataset = datasets.load_dataset(name, split=split or "test")
    except Exception as error:  # noqa: BLE001  (datasets raises many kinds; all mean "not here")
        raise InputFileError(
            f"`prompts` {source.spec!r}: datasets.load_dataset({name!r}) failed "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "download it where there is a network (it is then read from the datasets cache)"
        ) from None
    return list(dataset)


def load_hh_rlhf(
    path: str | Path,
    *,
    limit: int | None = 1000,
    seed: int = 42,
    template: str = "{prompt}",
    semantics: str = "corrected",
) -> list[Prompt]:
    """The paper's prompts from a local copy of HH-RLHF's test split: one JSONL file (optionally
    gzipped, one object per line with a ``chosen`` dialogue) or the dataset's directory, whose
    four subsets' ``test.jsonl.gz`` are read in the dataset's order (harmless-base,
    helpful-base, helpful-online, helpful-rejection-sampled); see :func:`select_hh_rlhf`."""
    source = parse_prompt_source(f"{HH_RLHF}{path}")
    return select_hh_rlhf(
        _hh_rows(source),
        where=f"HH-RLHF copy {str(source.path)!r}",
        limit=limit,
        seed=seed,
        template=template,
        semantics=semantics,
    )


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


def load_prompts(
    path: str | Path,
    *,
    limit: int | None = None,
    template: str = "{prompt}",
    semantics: str = "corrected",
) -> list[Prompt]:
    """The prompts of a ``.jsonl``, ``.parquet`` or text file (first ``limit`` of them), or of
    ``hh-rlhf:PATH`` or ``hf-dataset:NAME`` (the paper's selection, see :func:`select_hh_rlhf`:
    1,000 unless ``limit`` says otherwise, filtered on the length of the ``template``d
    prompt)."""
    source = parse_prompt_source(path)
    if source.kind in ("hh-rlhf", "hf-dataset"):
        rows = _hh_rows(source) if source.kind == "hh-rlhf" else _dataset_rows(source)
        return select_hh_rlhf(
            rows, where=source.spec, limit=limit or 1000, template=template, semantics=semantics
        )
    assert source.path is not None
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
