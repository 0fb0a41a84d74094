"""The columns of the run directory's tables.

``samples.parquet`` (written by generate only): one row per string. ``scores.parquet`` (written
by score only): the key columns, then one group of columns per scorer — ``prior``, ``aligned``
(re-scored log pi and log q; they win over generate's in the join) and ``reward``.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["KEY_COLUMNS", "SAMPLES_SCHEMA", "SCORE_GROUPS", "SCORER_NAMES", "scores_schema"]

KEY_COLUMNS = ("prompt_id", "config", "sample_index")

SAMPLES_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("prompt", pa.string()),
        ("context", pa.string()),
        ("config", pa.string()),
        ("sample_index", pa.int64()),
        ("text", pa.string()),
        ("token_ids", pa.list_(pa.int64())),
        ("n_tokens", pa.int64()),
        ("finished", pa.bool_()),
        ("stop_reason", pa.string()),
        ("logp_aligned", pa.float64()),
        ("logp_adapted", pa.float64()),
        ("token_logp_aligned", pa.list_(pa.float64())),
        ("token_logp_adapted", pa.list_(pa.float64())),
    ]
)

# One group of columns per scorer, in the order they appear in scores.parquet.
SCORE_GROUPS: dict[str, pa.Schema] = {
    "prior": pa.schema(
        [
            ("logp_prior", pa.float64()),
            ("n_tokens_prior", pa.int64()),
            ("token_logp_prior", pa.list_(pa.float64())),
        ]
    ),
    "aligned": pa.schema(
        [
            ("logp_aligned", pa.float64()),
            ("logp_adapted", pa.float64()),
            ("token_logp_aligned", pa.list_(pa.float64())),
            ("token_logp_adapted", pa.list_(pa.float64())),
            ("n_outside_support", pa.int64()),
        ]
    ),
    "reward": pa.schema([("reward", pa.float64())]),
}
SCORER_NAMES = tuple(SCORE_GROUPS)

_KEY_SCHEMA = pa.schema([SAMPLES_SCHEMA.field(name) for name in KEY_COLUMNS])


def scores_schema(groups: list[str] | tuple[str, ...]) -> pa.Schema:
    """The schema of scores.parquet holding these scorers' groups (in the canonical order)."""
    fields = list(_KEY_SCHEMA)
    for name in SCORER_NAMES:
        if name in groups:
            fields.extend(SCORE_GROUPS[name])
    return pa.schema(fields)
