"""A content fingerprint of a dataset: hash of the values, row count and schema."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from petalops.data.schema import Schema

# How each kind is named in the fingerprint's schema (numeric keeps its historical name).
_TYPES = {"numeric": "float64", "boolean": "bool", "categorical": "string"}


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    rows: int
    schema: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "rows": self.rows, "schema": self.schema}


def fingerprint(frame: pd.DataFrame, schema: Schema, target: str) -> Fingerprint:
    """Hash the validated values (not the file bytes): the same data in CSV or Parquet match.

    Numeric (and boolean) columns hash as their float64 bytes, text columns as their values
    joined; a missing category hashes as a byte no text holds."""
    features = schema.names
    columns = [*features, target]
    digest = hashlib.sha256()
    digest.update("\x1f".join(columns).encode())
    kinds = {c.name: c.kind for c in schema.columns}
    for column in columns:
        values = frame[column]
        if column == target:
            digest.update("\x1e".join(values.astype(str)).encode())
        elif kinds[column] == "categorical":
            digest.update(b"\x1dcategorical")
            digest.update("\x1e".join("\x00" if pd.isna(v) else str(v) for v in values).encode())
        else:
            if kinds[column] == "boolean":
                digest.update(b"\x1dboolean")
            digest.update(values.to_numpy(dtype="float64").tobytes())
    types = {c: ("string" if c == target else _TYPES[kinds[c]]) for c in columns}
    return Fingerprint(sha256=digest.hexdigest(), rows=len(frame), schema=types)
