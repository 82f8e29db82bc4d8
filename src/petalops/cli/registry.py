"""`petalops registry list | show | alias set | alias rm`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from petalops.cli.common import (
    ConfigOption,
    JsonOption,
    SetOption,
    example,
    group,
    print_json,
    settings_from,
    skip_teardown,
)

app = group("Browse model versions and move aliases.")
alias_app = group("Set or remove an alias (champion, challenger, …).")
app.add_typer(alias_app, name="alias")


@app.command("list", epilog=example("petalops registry list --json"))
def list_cmd(
    config: ConfigOption = None, overrides: SetOption = None, as_json: JsonOption = False
) -> None:
    """Every version of the model, newest first, with aliases and accuracy."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.registry import list_versions

    settings = settings_from(config, overrides)
    versions = list_versions(settings)
    rows: list[dict[str, Any]] = [
        {
            "version": v.version,
            "aliases": v.aliases,
            "accuracy": float(v.tags.get("petalops.accuracy", "nan")),
            "data_sha256": v.tags.get("petalops.data_sha256", "")[:12],
            "run_id": v.run_id,
            "sha256": v.sha256[:12],
            "signed_by": v.tags.get("petalops.signing_key", "")
            if v.tags.get("petalops.signature")
            else "",
        }
        for v in versions
    ]
    if as_json:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{settings.project}: registered versions")
    for column in ("version", "aliases", "accuracy", "data", "run", "bundle sha256", "signed by"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["version"],
            ", ".join(f"@{a}" for a in row["aliases"]),
            f"{row['accuracy']:.4f}",
            row["data_sha256"],
            row["run_id"][:12],
            row["sha256"],
            row["signed_by"] or "unsigned",
        )
    Console().print(table)


def version_details(settings: Any, version: str) -> dict[str, Any]:
    """Everything the registry and the run know about a version (its lineage)."""
    from petalops.experiments.lineage import lineage
    from petalops.registry import get_run, resolve
    from petalops.registry.resolve import signature_of
    from petalops.rollout.api import version_rollouts

    info = resolve(settings, version)
    run = get_run(settings, info.run_id)
    signature = signature_of(settings, info)
    return {
        "name": info.name,
        "version": info.version,
        "aliases": info.aliases,
        "bundle_sha256": info.sha256,
        "signature": {
            "signed": signature.signed,
            "key_id": signature.key_id,
            "verified": signature.verified,
            "detail": signature.detail,
        },
        "run_id": info.run_id,
        "data_sha256": run.tags.get("petalops.data_sha256", ""),
        "data_source": run.params.get("data.source", ""),
        "data_rows": run.params.get("data.rows", ""),
        "code_version": run.tags.get("petalops.git_commit")
        or run.tags.get("mlflow.source.git.commit", ""),
        "gate": run.tags.get("petalops.gate", ""),
        "params": {k: v for k, v in sorted(run.params.items()) if not k.startswith("data.")},
        "metrics": dict(sorted(run.metrics.items())),
        "libraries": {
            k.removeprefix("petalops.lib."): v
            for k, v in sorted(run.tags.items())
            if k.startswith("petalops.lib.")
        },
        "version_tags": {
            k: v
            for k, v in sorted(info.tags.items())
            if k not in ("petalops.sha256", "petalops.alias_history", "petalops.signature")
        },
        **lineage(settings, info.run_id, info.tags, run.tags),
        "rollouts": version_rollouts(settings, info.name, info.version),
    }


@app.command("show", epilog=example("petalops registry show champion"))
def show_cmd(
    version: Annotated[str, typer.Argument(help="Version number or alias (e.g. 3, champion).")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version's lineage: data, run, parameters, metrics, gate, code and libraries."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.registry import resolve

    settings = settings_from(config, overrides)
    number = version if version.isdigit() else resolve(settings, f"@{version.lstrip('@')}").version
    details = version_details(settings, number)
    if as_json:
        print_json(details)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{details['name']} v{details['version']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in details.items():
        if key == "signature":
            value = _signature_line(value)
        elif isinstance(value, dict):
            value = "\n".join(f"{k} = {v}" for k, v in value.items()) or "—"
        elif isinstance(value, list):
            value = ", ".join(f"@{a}" for a in value)
        table.add_row(key, str(value))
    Console().print(table)


def _signature_line(signature: dict[str, Any]) -> str:
    """``signed by key 1a2b…; verifies with trusted key 1a2b…`` / ``unsigned; not checked: …``."""
    who = f"signed by key {signature['key_id']}" if signature["signed"] else "unsigned"
    refused = "REFUSED: " if signature["verified"] is False else ""
    return f"{who}; {refused}{signature['detail']}"


@alias_app.command("set", epilog=example("petalops registry alias set champion 2"))
def alias_set(
    alias: Annotated[str, typer.Argument(help="Alias name, e.g. champion.")],
    version: Annotated[str, typer.Argument(help="Version number.")],
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Point an alias at a version (servers pick it up at their next reconcile)."""
    from petalops.registry.store import set_alias

    settings = settings_from(config, overrides)
    set_alias(settings, alias, version)
    typer.echo(f"{settings.project}@{alias} -> v{version}")


@alias_app.command("rm", epilog=example("petalops registry alias rm challenger"))
def alias_rm(
    alias: Annotated[str, typer.Argument(help="Alias name.")],
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Remove an alias."""
    from petalops.registry.store import delete_alias

    settings = settings_from(config, overrides)
    delete_alias(settings, alias)
    typer.echo(f"removed {settings.project}@{alias}")
