"""The schema of a model's input: each feature's kind, whether it may be missing, and what
training saw of it (categories with their frequencies, numeric ranges, missing counts).

It is inferred when the training data is validated (`petalops.data.validate`), stored with
every model version (the bundle's ``manifest.json`` and ``profile.json``) and read back by
the server, batch scoring and drift detection. Plain Python, no pandas: the server loads it.

Values have one canonical form per kind, the same in training and at every edge:

* numeric: a float (missing: NaN in arrays, ``None`` in a request row);
* boolean: 1.0 or 0.0 (true/false, 1/0 and their strings are accepted);
* categorical: a string; a number declared categorical becomes its text (``3.0`` -> ``"3"``)
  and an empty string counts as missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Kind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean")
TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})
# At most this many categories are listed with their counts; the rest are summed up.
MAX_LISTED_CATEGORIES = 1000


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA/NaT and the empty string are missing."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, str):
        return value == ""
    # pandas.NA / NaT compare unlike anything; ``bool(value != value)`` raises for NA.
    try:
        return bool(value != value)
    except TypeError:
        return True


def category_text(value: Any) -> str:
    """The canonical text of a category: numbers without a trailing ``.0``, booleans as
    ``true``/``false``, strings as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):  # numpy scalars
        return category_text(value.item())
    return str(value)


def boolean_value(value: Any) -> float | None:
    """1.0 / 0.0 for a boolean written any usual way, ``None`` if it is not one."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value in (0, 1) else None
    if hasattr(value, "item"):
        return boolean_value(value.item())
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXT:
            return 1.0
        if text in FALSE_TEXT:
            return 0.0
    return None


@dataclass(frozen=True)
class ColumnSchema:
    """One feature: its kind, whether it may be missing, and what training saw of it."""

    name: str
    kind: Kind
    allow_missing: bool = True
    missing: int = 0  # rows of the training data where it was missing
    minimum: float | None = None  # numeric and boolean
    maximum: float | None = None
    mean: float | None = None
    # categorical: category -> rows in the training data, most frequent first
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.categories)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "allow_missing": self.allow_missing,
            "missing": self.missing,
        }
        if self.kind == "categorical":
            out["categories"] = dict(self.categories)
        else:
            out.update(min=self.minimum, max=self.maximum, mean=self.mean)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSchema:
        kind = data.get("kind", "numeric")
        if kind not in KINDS:
            raise ValueError(f"column {data.get('name')!r} has an unknown kind {kind!r}")
        return cls(
            name=str(data["name"]),
            kind=kind,
            allow_missing=bool(data.get("allow_missing", False)),
            missing=int(data.get("missing", 0)),
            minimum=_number(data.get("min")),
            maximum=_number(data.get("max")),
            mean=_number(data.get("mean")),
            # most frequent first (a manifest written with sorted keys lists them by name)
            categories=dict(
                sorted(
                    ((str(k), int(v)) for k, v in (data.get("categories") or {}).items()),
                    key=lambda kv: (-kv[1], kv[0]),
                )
            ),
        )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Schema:
    """Every feature of a model, in order."""

    columns: tuple[ColumnSchema, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    # Cached (the schema is frozen): the server asks these of every request, and a scan of
    # the columns each time was ~15 % of a /predict's instructions (bench/dispatch_cost.py).
    @cached_property
    def numeric_only(self) -> bool:
        """Only numeric features: the model takes one float matrix."""
        return all(c.kind == "numeric" for c in self.columns)

    @cached_property
    def strict_numeric(self) -> bool:
        """Only numeric features, none of them ever missing: a row is a list of numbers."""
        return self.numeric_only and not any(c.allow_missing for c in self.columns)

    @property
    def categorical(self) -> list[ColumnSchema]:
        return [c for c in self.columns if c.kind == "categorical"]

    def column(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.columns]

    @classmethod
    def from_json(cls, data: Iterable[dict[str, Any]]) -> Schema:
        return cls(tuple(ColumnSchema.from_json(c) for c in data))

    @classmethod
    def numeric(cls, names: Sequence[str], allow_missing: bool = False) -> Schema:
        """All-numeric features (the schema of bundles written before kinds were stored)."""
        return cls(tuple(ColumnSchema(n, "numeric", allow_missing) for n in names))

    def summary(self) -> dict[str, str]:
        """One line per feature, as `petalops registry show` prints it."""
        out: dict[str, str] = {}
        for c in self.columns:
            missing = f", {c.missing} missing" if c.missing else ""
            nullable = "" if c.allow_missing else ", never missing"
            if c.kind == "categorical":
                shown = list(c.categories.items())[:8]
                more = len(c.categories) - len(shown)
                cats = ", ".join(f"{k} ({v})" for k, v in shown) + (
                    f", +{more} more" if more else ""
                )
                out[c.name] = f"categorical: {cats}{missing}{nullable}"
            else:
                span = (
                    f"{_short(c.minimum)} .. {_short(c.maximum)}"
                    if c.minimum is not None and c.maximum is not None
                    else "no values"
                )
                out[c.name] = f"{c.kind}: {span}{missing}{nullable}"
        return out


def _short(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "?"
    return f"{value:.6g}"
