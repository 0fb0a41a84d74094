"""``manifest.json``: what made a run directory — each stage's settings, the identities of the
models, the versions of the software — and each stage's status.

A stage's settings and the identities of its models are hashed together (:func:`settings_hash`);
the hash is stored in the manifest and in every shard the stage writes, so a shard is bound to
the settings that made it even when the manifest is lost.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

from ..errors import RunDirError

__all__ = [
    "MANIFEST_VERSION",
    "differences",
    "new_manifest",
    "read_manifest",
    "settings_hash",
    "versions",
]

MANIFEST_VERSION = 1
_SECTIONS = ("settings", "models", "stages")


def versions() -> dict[str, str]:
    """The versions of tradeoff, Python and the libraries that shape the results."""
    from .._core import __version__

    found = {"tradeoff": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "numpy", "pyarrow"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            pass
    return found


def new_manifest() -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        "settings": {},
        "models": {},
        "stages": {},
    }


def canonical(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def settings_hash(settings: dict[str, Any], models: dict[str, Any] | None = None) -> str:
    """A short hash of a stage's settings and the identities of the models it used."""
    data = json.dumps(canonical({"settings": settings, "models": models or {}}), sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def differences(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two settings records."""
    previous, current = canonical(previous), canonical(current)
    return sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path`` (None when there is none), checked: a JSON object with the
    sections ``settings``, ``models`` and ``stages``."""
    path = Path(path)
    if not path.exists():
        return None
    remedy = (
        "restore it, or delete it to let the stages start again (their shards are kept and "
        "checked against the settings)"
    )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} is not valid JSON ({error}); {remedy}") from None
    except OSError as error:
        raise RunDirError(f"{path} cannot be read ({error.strerror}); {remedy}") from None
    if not isinstance(manifest, dict):
        raise RunDirError(
            f"{path} must hold a JSON object, got {type(manifest).__name__}; {remedy}"
        )
    missing = [k for k in _SECTIONS if not isinstance(manifest.get(k), dict)]
    if missing:
        raise RunDirError(f"{path} lacks the section(s) {', '.join(missing)} (objects); {remedy}")
    return manifest
