"""`petalops audit`: the admin actions, who did them, before and after."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from petalops.cli.common import (
    ConfigOption,
    JsonOption,
    SetOption,
    print_json,
    reading,
    settings_from,
)


def audit(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest N events.")] = 50,
    action: Annotated[
        str | None,
        typer.Option(metavar="ACTION", help="Only this action (alias.set) or family (rollout)."),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Alias moves, rollout promote/abort/pause/resume and key changes, oldest first."""
    from petalops.security.audit import entries

    events = entries(reading(settings_from(config, overrides)), limit, action)
    if as_json:
        print_json(events)
        return
    if not events:
        typer.echo("no admin actions recorded yet")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="audit trail")
    for column in ("time (UTC)", "who", "action", "target", "before", "after"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            datetime.fromtimestamp(event["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event["actor"],
            event["action"],
            event["target"],
            _short(event["before"]),
            _short(event["after"]),
        )
    Console().print(table)


def _short(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        shown = {k: v for k, v in value.items() if v not in (None, "", 0.0)}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "—"
    return json.dumps(value)
