"""`petalops keys create | list | revoke`: scoped API keys for the server's routes.

A sub-group is one line: ``app.add_typer(other.app, name="...")`` at the end of this file.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from petalops.cli import signing as signing_cmd
from petalops.cli.common import (
    ConfigOption,
    JsonOption,
    SetOption,
    example,
    group,
    print_json,
    settings_from,
)

app = group(
    "Create, list and revoke the API keys that guard the server's routes; `keys signing`: "
    "the signing keys of model bundles."
)


def _audited(public: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a key: enough to tell keys and their states apart."""
    return {k: public[k] for k in ("key_id", "scope", "rate", "status")}


def _when(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@app.command(
    "create",
    epilog=example("petalops keys create --scope predict --name shop-frontend --rate 100/s"),
)
def create(
    scope: Annotated[
        str,
        typer.Option(
            metavar="predict|feedback|admin",
            help="What the key may call: predictions, feedback labels, or everything "
            "(admin routes, control-room actions, and the other two).",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Shown in logs, /metrics and the audit trail."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(metavar="N/s", help="Rate limit per worker: 100/s, 600/m or 1000/h."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Stop working after 90d, 12h, 30m …"),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Make a key and print it once (stdout); only its salted hash is stored.

    Once a key of a scope exists, that scope's routes need a key; servers pick it up
    within one reconcile interval.
    """
    from petalops.security import audit
    from petalops.security.keys import new_key, open_store, parse_duration

    settings = settings_from(config, overrides)
    expires_in = parse_duration(expires) if expires else None
    key, record = new_key(name or f"{scope}-{int(time.time())}", scope, rate, expires_in)
    open_store(settings).add(record)
    audit.record(settings, "key.create", record.name, before=None, after=_audited(record.public()))
    sys.stderr.write(
        f"created API key {record.name!r} (scope {record.scope}, id {record.key_id}"
        f"{', rate ' + record.rate + ' per worker' if record.rate else ''}"
        f"{', expires ' + _when(record.expires) if record.expires else ''}); "
        "it is shown once, store it now:\n"
    )
    typer.echo(key)


@app.command("list", epilog=example("petalops keys list --json"))
def list_cmd(
    config: ConfigOption = None, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """Every key: name, id, scope, rate, status (never the key or its hash)."""
    from petalops.security.keys import has_no_store, open_store

    settings = settings_from(config, overrides)
    keys = [] if has_no_store(settings) else open_store(settings).all()
    rows: list[dict[str, Any]] = [key.public() for key in keys]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no API keys: every route is open (create one with `petalops keys create`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="API keys")
    for column in ("name", "id", "scope", "rate", "created", "expires", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["key_id"],
            row["scope"],
            row["rate"] or "—",
            _when(row["created"]),
            _when(row["expires"]),
            row["status"],
        )
    Console().print(table)


@app.command("revoke", epilog=example("petalops keys revoke shop-frontend"))
def revoke(
    name: Annotated[str, typer.Argument(help="The key's name or id (`petalops keys list`).")],
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Revoke a key: every server refuses it (401) within one reconcile interval."""
    from petalops.security import audit
    from petalops.security.keys import open_store

    settings = settings_from(config, overrides)
    store = open_store(settings)
    before = next((k.public() for k in store.all() if name in (k.name, k.key_id)), None)
    key = store.revoke(name, time.time())
    if before is not None and before["revoked"] is None:
        audit.record(
            settings,
            "key.revoke",
            key.name,
            before=_audited(before),
            after=_audited(key.public()),
        )
        typer.echo(f"revoked API key {key.name!r} (id {key.key_id})")
    else:
        typer.echo(f"API key {key.name!r} was already revoked at {_when(key.revoked)}")


app.add_typer(signing_cmd.app, name="signing")  # the signing keys of model bundles
