"""``raytag validate`` and ``raytag prepare``: config files and corpora."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from raytag.cli._util import EXIT_USER, AddressOption, SetOption, app, console, err_console, fail, job_session, quiet_ray
from raytag.errors import RaytagError


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Job, search, corpus or Serve config YAML files.")],
    overrides: SetOption = None,
) -> None:
    """Validate job, search, corpus and Serve config files (unknown keys are reported with their dotted path).

    A Serve config (top-level `applications:`) is checked against Ray Serve's schema and
    raytag's serving settings, as `raytag serve --config` does before deploying.
    """
    from raytag.jobfiles import load_any

    failed = False
    for file in files:
        try:
            loaded = load_any(file, overrides or [])
        except RaytagError as exc:
            failed = True
            err_console.print(f"[bold red]error:[/] {escape(' '.join(str(exc).split()))}", highlight=False,
                              soft_wrap=True)
        else:
            kind = " (Serve config)" if isinstance(loaded, dict) else ""
            console.print(f"[green]✓[/] {escape(str(file))}{kind}", highlight=False)
    if failed:
        raise typer.Exit(code=EXIT_USER)


@app.command()
def prepare(
    config: Annotated[Path, typer.Argument(help="Job YAML file.")],
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: from the config).")] = None,
    overrides: SetOption = None,
    address: AddressOption = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray Data progress logs.")] = False,
) -> None:
    """Read, validate, split and encode a corpus on Ray Data into Parquet shards + manifest."""
    from raytag.config import load_job
    from raytag.prepare import prepare as run_prepare

    quiet_ray(verbose)
    try:
        job = load_job(config, overrides or [])
        with job_session(job, address):
            result = run_prepare(job, out, overwrite=overwrite)
    except (RaytagError, FileExistsError, FileNotFoundError) as exc:
        fail(exc)
    console.print(f"prepared [bold]{job.name}[/] → {result.directory}")
    console.print(corpus_table(result.manifest))


def corpus_table(manifest: dict[str, Any]) -> Table:
    """A summary of a prepared corpus: sizes per split, vocabularies, errors."""
    table = Table(title=f"{manifest['name']} ({manifest['scheme']['source']} → {manifest['scheme']['stored']})")
    table.add_column("split")
    table.add_column("sentences", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("most frequent tags")
    for name, split in manifest["splits"].items():
        top = sorted(split["tags"].items(), key=lambda kv: -kv[1])[:5]
        table.add_row(name, f"{split['sentences']:,}", f"{split['tokens']:,}", ", ".join(f"{t} {c:,}" for t, c in top))
    totals = manifest["totals"]
    table.add_row("total", f"{totals['sentences']:,}", f"{totals['tokens']:,}", "", style="bold")
    vocab = manifest["vocab"]
    table.caption = (
        f"{vocab['labels']} labels · {vocab['words']:,} words · {vocab['chars']} chars · "
        f"{manifest['errors']['skipped_sentences']} sentences skipped"
    )
    return table
