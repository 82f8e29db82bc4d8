"""Compare runs side by side: parameters and metrics, with the differences marked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from petalops.config import Settings
from petalops.errors import InputError, NotFoundError
from petalops.registry import resolve
from petalops.registry.store import get_run

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
ALIASES = ("champion", "challenger", "previous")
# Tags worth seeing next to the params: where the data and the code came from.
LINEAGE_TAGS = {
    "petalops.data_sha256": "data.sha256",
    "petalops.data_snapshot": "data.snapshot",
    "petalops.git_commit": "code.git_commit",
    "petalops.gate": "gate",
    "petalops.lib.scikit-learn": "lib.scikit-learn",
}


@dataclass
class Comparison:
    labels: list[str]
    run_ids: list[str]
    params: dict[str, list[str | None]] = field(default_factory=dict)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)

    @staticmethod
    def _differs(values: list[Any]) -> bool:
        return len({repr(v) for v in values}) > 1

    @property
    def different(self) -> list[str]:
        keys = [k for k, v in self.params.items() if self._differs(v)]
        return keys + [k for k, m in self.metrics.items() if self._differs(m)]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": lab, "run_id": r}
                for lab, r in zip(self.labels, self.run_ids, strict=True)
            ],
            "params": self.params,
            "metrics": self.metrics,
            "different": self.different,
        }


def resolve_run(settings: Settings, token: str) -> tuple[str, str]:
    """A run id, a version (``3``, ``iris/3``, ``v3``) or an alias (``champion``, ``@challenger``,
    ``iris@champion``) → (label, run id)."""
    text = token.strip()
    if _RUN_ID.match(text):
        get_run(settings, text)  # a clear error for an unknown id
        return f"run {text[:8]}", text
    if re.fullmatch(r"v\d+", text):
        text = text[1:]
    if text in ALIASES:
        text = f"@{text}"
    if not (text.isdigit() or "@" in text or "/" in text):
        raise NotFoundError(
            f"{token!r} is not a run id (32 hex digits), a version (3, iris/3) or an alias "
            "(champion, @challenger); see `petalops registry list`"
        )
    try:
        info = resolve(settings, text)
    except NotFoundError as exc:
        raise NotFoundError(
            f"{token!r} is neither a run id nor a registered version/alias ({exc.message})"
        ) from None
    return f"v{info.version}", info.run_id


def compare_runs(settings: Settings, tokens: list[str]) -> Comparison:
    """Params (with data/code lineage) and metrics of each run, aligned by key."""
    if len(tokens) < 2:
        raise InputError("give at least two runs or versions, e.g. `petalops runs compare 1 2`")
    resolved = [resolve_run(settings, t) for t in tokens]
    records = [get_run(settings, run_id) for _, run_id in resolved]
    param_keys = sorted({k for r in records for k in r.params})
    metric_keys = sorted({k for r in records for k in r.metrics})
    params: dict[str, list[str | None]] = {
        k: [r.params.get(k) for r in records] for k in param_keys
    }
    for tag, name in LINEAGE_TAGS.items():
        if any(tag in r.tags for r in records):
            params[name] = [r.tags.get(tag) for r in records]
    return Comparison(
        labels=[label for label, _ in resolved],
        run_ids=[run_id for _, run_id in resolved],
        params=params,
        metrics={k: [r.metrics.get(k) for r in records] for k in metric_keys},
    )
