"""A content fingerprint of a dataset: hash of the values, row count and schema."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    rows: int
    schema: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "rows": self.rows, "schema": self.schema}


def fingerprint(frame: pd.DataFrame, features: list[str], target: str) -> Fingerprint:
    """Hash the validated values (not the file bytes): the same data in CSV or Parquet match."""
    columns = [*features, target]
    digest = hashlib.sha256()
    digest.update("\x1f".join(columns).encode())
    for column in columns:
        values = frame[column]
        if column == target:
            digest.update("\x1e".join(values.astype(str)).encode())
        else:
            digest.update(values.to_numpy(dtype="float64").tobytes())
    schema = {c: ("string" if c == target else "float64") for c in columns}
    return Fingerprint(sha256=digest.hexdigest(), rows=len(frame), schema=schema)
