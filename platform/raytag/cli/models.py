"""``raytag models``: list, show, alias registered models and print their cards."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from raytag.cli._util import RegistryOption, app, console, fail

models_app = typer.Typer(help="List, show and alias registered models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _kind(version: Any) -> str:
    """The kind, and the runtime of an exported variant (``transformer (onnx int8)``)."""
    made = version.manifest.get("config") or {}
    if not made.get("runtime"):
        return version.kind
    return f"{version.kind} ({made['runtime']}{' ' + made['quantize'] if made.get('quantize') else ''})"


@models_app.command("list")
def models_list(registry: RegistryOption = "runs/registry") -> None:
    """Every registered model with its versions, aliases and headline metric."""
    from raytag.registry import Registry

    reg = Registry(registry)
    table = Table()
    for column in ("model", "version", "kind", "aliases", "score", "created"):
        table.add_column(column)
    for name in reg.list_models():
        aliases = reg.aliases(name)
        for version in reg.list_versions(name):
            tags = ", ".join(sorted(a for a, v in aliases.items() if v == version.version))
            score = version.metrics.get("test_score", version.metrics.get("dev_score"))
            table.add_row(name, f"v{version.version}", _kind(version), tags,
                          "" if score is None else f"{score:.4f}", str(version.manifest.get("created_at", "")))
    console.print(table)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="name[@version|@alias]")],
    registry: RegistryOption = "runs/registry",
) -> None:
    """A model version's manifest: labels, metrics, data fingerprint, files."""
    import json

    from raytag.registry import Registry, RegistryError

    try:
        version = Registry(registry).resolve(ref)
    except RegistryError as exc:
        fail(exc)
    console.print_json(json.dumps(version.manifest))


@models_app.command("alias")
def models_alias(
    ref: Annotated[str, typer.Argument(help="name@version to point the alias at")],
    alias: Annotated[str, typer.Argument(help="Alias name, e.g. prod")],
    registry: RegistryOption = "runs/registry",
) -> None:
    """Point an alias (such as ``prod``) at a version."""
    from raytag.registry import Registry, RegistryError

    try:
        reg = Registry(registry)
        version = reg.resolve(ref)
        reg.set_alias(version.name, alias, version.version)
    except RegistryError as exc:
        fail(exc)
    console.print(f"{version.name}@{alias} → v{version.version}")


@models_app.command("card")
def models_card(
    ref: Annotated[str, typer.Argument(help="name[@version|@alias]")],
    registry: RegistryOption = "runs/registry",
) -> None:
    """Print a version's model card (Markdown): data, metrics, labels, config, how to load, limitations."""
    from raytag.registry import Registry, RegistryError

    try:
        text = Registry(registry).card(ref)
    except RegistryError as exc:
        fail(exc)
    typer.echo(text, nl=False)
