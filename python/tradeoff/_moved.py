"""The import paths of the first version, kept for one release: each old module re-exports its
names from their new place and warns once with a DeprecationWarning."""

from __future__ import annotations

import warnings


def moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old path goes away in the next release",
                  DeprecationWarning, stacklevel=3)  # fmt: skip
