"""A version's lineage beyond params and metrics: data snapshot, gate checks, promotions and
the rollouts it went through (from the rollout history in the monitoring store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.pipeline.snapshot import SNAPSHOT_TAG
from petalops.registry.store import read_run_json
from petalops.rollout.store import RolloutStore


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


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rollouts(settings: Settings, name: str, version: str) -> dict[str, str]:
    """``{rollout_id: summary}`` of every rollout where ``version`` was champion or challenger."""
    url = settings.monitor_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return {}  # never create a monitoring database just to read it
    try:
        store = RolloutStore(url)
        try:
            events = store.history(name, limit=10_000)
        finally:
            store.close()
    except Exception as exc:  # the monitoring store is optional for lineage
        return {"(unavailable)": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if version in (str(event.get("challenger_version")), str(event.get("champion_version"))):
            by_id.setdefault(str(event["rollout_id"]), []).append(event)
    out = {}
    for rollout_id, rows in by_id.items():
        first, last = rows[0], rows[-1]
        role = "challenger" if str(first.get("challenger_version")) == version else "champion"
        verdict = f", verdict {last['verdict']}" if last.get("verdict") else ""
        out[rollout_id] = (
            f"{first['strategy']} as {role}, {_when(first['ts'])} → {_when(last['ts'])}, "
            f"last: {last['phase']}/{last['action']}{verdict}"
        )
    return out


def lineage(
    settings: Settings,
    name: str,
    version: str,
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
        "gate_checks": gate_checks(settings, run_id),
        "promoted_by": version_tags.get("petalops.promoted_by", ""),
        "promoted_at": version_tags.get("petalops.promoted_at", ""),
        "alias_history": {
            f"{i + 1}. {e.get('at', '?')}": f"@{e.get('alias', '?')} by {e.get('by', '?')}"
            for i, e in enumerate(history)
        },
        "rollouts": rollouts(settings, name, version),
    }
