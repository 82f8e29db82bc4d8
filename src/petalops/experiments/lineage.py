"""A version's lineage beyond params and metrics: data snapshot, gate checks and promotions.

The rollouts a version went through come from the rollout block
(`petalops.rollout.api.version_rollouts`); `petalops registry show` puts the two together."""

from __future__ import annotations

import json
from typing import Any

from petalops.config import Settings
from petalops.data.schema import Schema
from petalops.errors import PetalopsError
from petalops.registry.resolve import SNAPSHOT_TAG, read_run_json


def gate_checks(settings: Settings, run_id: str) -> dict[str, str]:
    """``{check: "pass — detail"}`` from the run's gate.json (empty if it has none)."""
    try:
        gate = read_run_json(settings, run_id, "gate.json")
    except (PetalopsError, OSError, ValueError):
        return {}
    return {
        c["name"]: f"{'pass' if c['passed'] else 'FAIL'} — {c['detail']}"
        for c in gate.get("checks", [])
    }


def input_schema(settings: Settings, run_id: str) -> dict[str, str]:
    """``{feature: "kind: categories or range, missing"}`` from the bundle's manifest."""
    try:
        manifest = read_run_json(settings, run_id, "petalops/manifest.json")
        columns = manifest.get("schema") or [
            {"name": name, "kind": "numeric"} for name in manifest.get("features", [])
        ]
        return Schema.from_json(columns).summary()
    except (PetalopsError, OSError, ValueError, KeyError):
        return {}


def lineage(
    settings: Settings,
    run_id: str,
    version_tags: dict[str, str],
    run_tags: dict[str, str],
) -> dict[str, Any]:
    """The extra lineage fields `petalops registry show` prints."""
    try:
        history = json.loads(version_tags.get("petalops.alias_history", "[]"))
    except ValueError:
        history = []
    return {
        "data_snapshot": run_tags.get(SNAPSHOT_TAG, "(none recorded)"),
        "schema": input_schema(settings, run_id),
        "gate_checks": gate_checks(settings, run_id),
        "promoted_by": version_tags.get("petalops.promoted_by", ""),
        "promoted_at": version_tags.get("petalops.promoted_at", ""),
        "alias_history": {
            f"{i + 1}. {e.get('at', '?')}": f"@{e.get('alias', '?')} by {e.get('by', '?')}"
            for i, e in enumerate(history)
        },
    }
