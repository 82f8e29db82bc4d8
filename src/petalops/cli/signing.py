"""`petalops keys signing init`: the Ed25519 key pair that signs model bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from petalops.cli.common import (
    ConfigOption,
    JsonOption,
    SetOption,
    example,
    group,
    print_json,
    settings_from,
)

app = group("Sign model bundles at training time; serve only what a trusted key signed.")


@app.command("init", epilog=example("petalops keys signing init --dir /secure/petalops-keys"))
def init(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Where to write NAME.key and NAME.pub (default: <home>/keys).",
        ),
    ] = None,
    name: Annotated[
        str,
        typer.Option("--name", metavar="NAME", help="File name of the pair, without suffix."),
    ] = "signing",
    force: Annotated[
        bool, typer.Option("--force", help="Replace a pair that exists already.")
    ] = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an Ed25519 key pair: the private key (mode 0600) for `train`, the public key
    for the servers that should trust what it signs. Prints the key id (the fingerprint
    of the public key) that versions signed with it carry."""
    from petalops.runtime.signing import generate

    if not name or "/" in name or name.startswith("."):
        raise typer.BadParameter(f"{name!r} is not a file name; example: --name trainer-ci")
    settings = settings_from(config, overrides)
    pair = generate(directory or settings.home_dir / "keys", name=name, force=force)
    if as_json:
        print_json(
            {
                "key_id": pair.key_id,
                "private_key": str(pair.private),
                "public_key": str(pair.public),
            }
        )
        return
    typer.echo(f"key id       {pair.key_id}")
    typer.echo(f"private key  {pair.private}  (mode 0600: only for the trainer; never commit it)")
    typer.echo(f"public key   {pair.public}  (give it to every server that should trust it)")
    typer.echo("")
    typer.echo("sign what `train` registers:")
    typer.echo(f"  export PETALOPS_SIGNING__KEY_FILE={pair.private}")
    typer.echo("serve and predict only what this key signed:")
    typer.echo(f"  export PETALOPS_SIGNING__TRUSTED_KEYS={pair.public}")
