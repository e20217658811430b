"""``raytag export``: a registered tagger in another inference runtime, registered beside it."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from raytag.cli._util import RegistryOption, app, console


class ExportFormat(str, Enum):
    onnx = "onnx"


class Quantization(str, Enum):
    int8 = "int8"


@app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="name[@version|@alias] of a transformer tagger")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Runtime to export to.")] = ExportFormat.onnx,
    quantize: Annotated[Quantization | None, typer.Option(help="Dynamic quantization of the weights.")] = None,
    registry: RegistryOption = "runs/registry",
) -> None:
    """Export a transformer tagger to ONNX and register it as a new version with alias onnx[-int8]."""
    from raytag.onnx_export import register_onnx_variant, variant_alias
    from raytag.registry import Registry

    level = quantize.value if quantize is not None else None
    version = register_onnx_variant(Registry(registry), ref, level)
    source = version.manifest["config"]["source"]
    console.print(f"{source} → {version.ref} ({fmt.value}{'' if level is None else ' ' + level}), "
                  f"load it as {version.name}@{variant_alias(level)}")
