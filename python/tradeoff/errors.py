"""The errors a user can cause, and the argument checks that raise them.

Every user error is a :class:`TradeoffError` (a ``ValueError``): the command line prints it as one
line on stderr and exits with status 2. Anything else that escapes is a bug and keeps its
traceback. Messages name the argument, file or key at fault and, where there is one, the remedy.

>>> check_int("batch_size", 0, minimum=1)
Traceback (most recent call last):
...
tradeoff.errors.ConfigError: `batch_size` must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "ConfigError",
    "InputFileError",
    "ModelError",
    "ModelNotFoundError",
    "RunDirError",
    "SettingsMismatchError",
    "TradeoffError",
    "TradeoffWarning",
    "check_choice",
    "check_int",
    "check_number",
    "check_seed",
]

SEED_LIMIT = 2**64


class TradeoffError(ValueError):
    """A user error: bad settings, a missing or malformed input, a run directory that does not
    fit the command. The CLI prints it as one line and exits 2."""


class TradeoffWarning(UserWarning):
    """Something the user should know that does not stop the work (a shard recomputed, a limit
    that strings may reach); the CLI prints it as one line on stderr."""


class ConfigError(TradeoffError):
    """Settings that cannot describe a run (a configuration key, a command-line option, a
    preset); the message names the key or option."""


class InputFileError(TradeoffError, FileNotFoundError):
    """An input file (prompts, configuration, template) that is missing, a directory, not
    readable, or not in the expected format; the message names the file."""


class RunDirError(TradeoffError):
    """A run directory that cannot serve the command: missing stage outputs, a corrupt manifest,
    not writable."""


class SettingsMismatchError(RunDirError):
    """A run directory was started with other settings (or other models) than the ones given
    now; the message names what differs."""


class ModelNotFoundError(TradeoffError, FileNotFoundError):
    """A model or tokenizer could not be found locally (and could not be downloaded)."""


class ModelError(TradeoffError):
    """A model that exists but cannot play the role it was given (a classifier as a causal LM,
    an invalid ``config.json``, missing weights)."""


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[TradeoffError] = ConfigError,
) -> int:
    """``value`` as an int in ``[minimum, maximum]``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"`{name}` must be an integer, got {value!r}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise error(f"`{name}` must be an integer in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise error(f"`{name}` must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise error(f"`{name}` must be an integer <= {maximum}, got {value}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer (Python or numpy) in [0, 2**64). A non-integer is a ``TypeError``, as
    everywhere in the Python API; an integer out of range a :class:`ConfigError`."""
    import numbers

    if (
        isinstance(value, bool)
        or type(value).__name__ == "bool_"
        or not isinstance(value, numbers.Integral)
    ):
        raise TypeError(f"`{name}` must be an integer in [0, 2**64), got {value!r}")
    if not 0 <= int(value) < SEED_LIMIT:
        raise ConfigError(f"`{name}` must be an integer in [0, 2**64), got {value}")
    return int(value)


def check_number(
    name: str, value: Any, *, positive: bool = False, non_negative: bool = False
) -> float:
    """``value`` as a finite float (optionally > 0 or >= 0); NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"`{name}` must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"`{name}` must be a finite number, got {value}")
    if positive and not value > 0:
        raise ConfigError(f"`{name}` must be > 0, got {value}")
    if non_negative and not value >= 0:
        raise ConfigError(f"`{name}` must be >= 0, got {value}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")
    return value
