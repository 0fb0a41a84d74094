"""The run directory: what each stage reads and writes, and nothing else.

::

    manifest.json      settings, model identities, versions and status of every stage
    samples.parquet    written by generate only: one row per string (schemas.SAMPLES_SCHEMA)
    scores.parquet     written by score only: keyed by (prompt_id, config, sample_index), one
                       group of columns per scorer (schemas.SCORE_GROUPS)
    shards/STAGE/      one Parquet shard per batch of a stage's work (shards.ShardSet)
    summary.json       written by analyze (summary.Summary); corpora.parquet beside it
    report.html        written by report, with figures/*.png

Every file is written atomically (:mod:`.atomic`). :meth:`RunDir.analysis_table` is the one join
the analysis reads: samples with their scores, re-scored log pi / log q winning over generate's.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import RunDirError, SettingsMismatchError
from .atomic import atomic_path, atomic_write_bytes, atomic_write_json, remove_temporaries
from .manifest import differences, new_manifest, read_manifest, settings_hash
from .schemas import KEY_COLUMNS, SAMPLES_SCHEMA, SCORE_GROUPS, SCORER_NAMES, scores_schema
from .shards import ShardScan, ShardSet, read_stamp, stamp

__all__ = [
    "KEY_COLUMNS",
    "RunDir",
    "SAMPLES_SCHEMA",
    "SCORER_NAMES",
    "SCORE_GROUPS",
    "SettingsMismatchError",
    "ShardScan",
    "ShardSet",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "differences",
    "read_stamp",
    "scores_schema",
    "settings_hash",
    "stamp",
]


class RunDir:
    """A run directory (created by the first stage that writes to it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest_path = self.path / "manifest.json"
        self.samples_path = self.path / "samples.parquet"
        self.scores_path = self.path / "scores.parquet"
        self.summary_path = self.path / "summary.json"
        self.corpora_path = self.path / "corpora.parquet"
        self.report_path = self.path / "report.html"
        self.figures_dir = self.path / "figures"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def shards(self, stage: str) -> ShardSet:
        return ShardSet(self.path / "shards" / stage, stage)

    # --- checks before work -----------------------------------------------------------------

    def check_writable(self) -> None:
        """Creates the directory if needed and checks that files can be written in it, so that a
        stage fails before its work, not after."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"run directory {str(self.path)!r} exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-probe.{os.getpid()}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            reason = "read-only file system" if error.errno == errno.EROFS else error.strerror
            raise RunDirError(
                f"run directory {str(self.path)!r} is not writable ({reason}); give a directory "
                "you can write to"
            ) from None

    def require_samples(self) -> None:
        """A stage that reads the samples needs a generated run: say which part is missing."""
        has_samples = self.samples_path.is_file()
        has_manifest = self.manifest_path.is_file()
        if not self.path.is_dir():
            raise RunDirError(
                f"run directory {str(self.path)!r} does not exist; run "
                "`tradeoff-eval generate` first"
            )
        if has_samples and not has_manifest:
            raise RunDirError(
                f"run directory {str(self.path)!r} has samples.parquet but no manifest.json, so "
                "nothing says how its strings were made; run the generate command again with "
                "--out pointing here (it checks its shards against the settings and rewrites the "
                "manifest)"
            )
        if not has_samples:
            raise RunDirError(
                f"run directory {str(self.path)!r} has no samples.parquet; run "
                "`tradeoff-eval generate` first (or finish it: run the same command again)"
            )

    # --- manifest ----------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.manifest_path)

    def manifest(self) -> dict[str, Any]:
        """The manifest, or a new one."""
        return self.read_manifest() or new_manifest()

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.manifest_path, manifest)

    def check_settings(
        self,
        manifest: dict[str, Any],
        stage: str,
        settings: dict[str, Any],
        models: dict[str, Any],
        what: str | None = None,
    ) -> None:
        """Refuses to resume ``stage`` with other settings or other models than recorded."""
        what = what or stage
        previous = manifest["settings"].get(stage)
        if previous is not None:
            changed = differences(previous, settings)
            if changed:
                raise SettingsMismatchError(
                    f"run directory {str(self.path)!r} was started with other {what} settings "
                    f"(different: {', '.join(changed)}); pass the same settings to resume it, or "
                    "use a new `--out` directory"
                )
        for role, identity in models.items():
            recorded = manifest["models"].get(role)
            if recorded is None or previous is None:
                continue
            changed = differences(_fingerprint(recorded), _fingerprint(identity))
            if changed:
                raise SettingsMismatchError(
                    f"run directory {str(self.path)!r} was started with another {role} model: "
                    f"{identity.get('name')!r} now has a different {', '.join(changed)} than "
                    "when the run started (its files changed); restore that model, or use a new "
                    "`--out` directory"
                )

    def remove_temporaries(self) -> list[Path]:
        return remove_temporaries(self.path)

    # --- merged tables ------------------------------------------------------------------------

    def table_is_current(self, path: Path, settings_hash: str, n_rows: int) -> bool:
        """Whether a merged table exists, reads, has ``n_rows`` rows and carries the hash."""
        try:
            stamped, rows = read_stamp(path)
        except (OSError, pa.ArrowException):
            return False
        return stamped == settings_hash and rows == n_rows

    def write_table(self, path: Path, table: pa.Table, settings_hash: str) -> None:
        with atomic_path(path) as tmp:
            pq.write_table(stamp(table, settings_hash), tmp)

    def read_samples(self, columns: list[str] | None = None) -> pa.Table:
        self.require_samples()
        return _read(self.samples_path, columns)

    def read_scores(self) -> pa.Table | None:
        return _read(self.scores_path, None) if self.scores_path.is_file() else None

    def analysis_table(self) -> pa.Table:
        """Samples joined with their scores by (prompt_id, config, sample_index): the table the
        analysis reads. A column scored again (``logp_aligned``, ``logp_adapted`` and their
        per-token lists, by ``score --aligned``) replaces generate's."""
        samples = self.read_samples()
        scores = self.read_scores()
        if scores is None:
            return samples
        if scores.num_rows != samples.num_rows or any(
            not scores.column(k).equals(samples.column(k)) for k in KEY_COLUMNS
        ):
            raise RunDirError(
                f"{self.scores_path} does not score the strings of {self.samples_path} (other "
                "keys or order); run `tradeoff-eval score` again"
            )
        for name in scores.column_names:
            if name in KEY_COLUMNS:
                continue
            column = scores.column(name)
            if name in samples.column_names:
                samples = samples.set_column(samples.column_names.index(name), name, column)
            else:
                samples = samples.append_column(name, column)
        return samples


def _fingerprint(identity: dict[str, Any]) -> dict[str, Any]:
    """The parts of a model identity that say which weights these are."""
    return {
        k: identity.get(k) for k in ("config_sha256", "weights_sha256", "revision") if k in identity
    }


def _read(path: Path, columns: list[str] | None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns).replace_schema_metadata(None)
    except (OSError, pa.ArrowException) as error:
        raise RunDirError(
            f"{path} cannot be read ({str(error).splitlines()[0]}); run the stage that writes it "
            "again (it is rebuilt from its shards)"
        ) from None
