"""The ``raytag`` command line: thin verbs over the library's stages."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from raytag.cli_errors import EXIT_USER, CommandGroup, err_console
from raytag.cli_errors import fail as _fail
from raytag.errors import RaytagError

app = typer.Typer(
    name="raytag",
    cls=CommandGroup,
    help="Prepare corpora, train, tune and serve sequence taggers on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Dotted override, e.g. --set split.seed=7 (repeatable)."),
]
AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a new local Ray)."),
]


def _quiet_ray(verbose: bool) -> None:
    # Ray Data logs every execution at INFO; a CLI run wants the result, not the plan.
    if verbose:
        return
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _job_session(job: Any, address: str | None, log_to_driver: bool = True) -> Any:
    """The Ray a job runs on: --address, else the job's ray.address, else a new local Ray."""
    from raytag.session import ray_session

    return ray_session(
        address or job.ray.address, num_cpus=job.ray.num_cpus, object_store_memory=job.ray.object_store_memory,
        log_to_driver=log_to_driver,
    )


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Job or corpus YAML files.")],
    overrides: SetOption = None,
) -> None:
    """Validate job and corpus config files (unknown keys are reported with their dotted path)."""
    from raytag.config import load_any

    failed = False
    for file in files:
        try:
            load_any(file, overrides or [])
        except RaytagError as exc:
            failed = True
            err_console.print(f"[bold red]error:[/] {escape(' '.join(str(exc).split()))}", highlight=False,
                              soft_wrap=True)
        else:
            console.print(f"[green]✓[/] {file}", highlight=False)
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

    _quiet_ray(verbose)
    try:
        job = load_job(config, overrides or [])
        with _job_session(job, address):
            result = run_prepare(job, out, overwrite=overwrite)
    except (RaytagError, FileExistsError, FileNotFoundError) as exc:
        _fail(exc)
        return
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


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Job YAML file.")],
    overrides: SetOption = None,
    address: AddressOption = None,
    prepared: Annotated[Path | None, typer.Option(help="Prepared corpus (default: prepare it first, or reuse it).")] = None,
    fresh: Annotated[bool, typer.Option(help="Start over even if a run of this job exists.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray progress logs.")] = False,
) -> None:
    """Train the job's model on Ray Train, evaluate it on the test split and register it."""
    from raytag.artifact import train_and_register
    from raytag.config import load_job
    from raytag.prepare import prepare as run_prepare

    _quiet_ray(verbose)
    try:
        job = load_job(config, overrides or [])
        with _job_session(job, address, log_to_driver=verbose):
            directory = prepared or Path(job.prepared_dir())
            if prepared is None and not (directory / "manifest.json").is_file():
                console.print(f"preparing {job.name} → {directory}")
                run_prepare(job, directory)
            version = train_and_register(job, directory, fresh=fresh)
    except (RaytagError, FileExistsError, FileNotFoundError, KeyError) as exc:
        _fail(exc)
        return
    console.print(f"registered [bold]{version.name}@v{version.version}[/] in {job.registry.root}")
    console.print(metrics_table(version.metrics))


def metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Registry reference (name[@version|@alias]) or artifact directory.")],
    prepared: Annotated[Path, typer.Argument(help="Prepared corpus directory.")],
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "test",
    registry: Annotated[str, typer.Option(help="Registry root.")] = "runs/registry",
    out: Annotated[Path | None, typer.Option(help="Where to save report.json/.txt and confusion.png.")] = None,
) -> None:
    """Evaluate a tagger on a prepared split: entity P/R/F1 (seqeval) or token accuracy."""
    from raytag.artifact import evaluate_tagger
    from raytag.corpus.prepared import PreparedCorpus
    from raytag.evaluate import format_report
    from raytag.tagger import load_tagger

    try:
        tagger = load_tagger(model, registry)
        corpus = PreparedCorpus(prepared)
        report = evaluate_tagger(tagger, corpus, split, out or Path("runs") / "evaluations" / model.replace("@", "_") / split)
    except (RaytagError, FileNotFoundError, KeyError, ValueError) as exc:
        _fail(exc)
        return
    console.print(format_report(report), highlight=False)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Registry reference or artifact directory.")],
    texts: Annotated[list[str], typer.Argument(help="Texts to tag.")],
    registry: Annotated[str, typer.Option(help="Registry root.")] = "runs/registry",
    tokens: Annotated[bool, typer.Option(help="Print per-token tags too.")] = False,
    device: Annotated[str, typer.Option(help="auto (a visible GPU if any, else cpu), cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Tag raw texts and print entity spans (and tags) as JSON."""
    import json

    from raytag.tagger import load_tagger

    try:
        tagger = load_tagger(model, registry, device=device)
    except (RaytagError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
        return
    for sentence in tagger.predict(texts):
        console.print_json(json.dumps(sentence.to_dict(with_tokens=tokens)))


models_app = typer.Typer(help="List, show and alias registered models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(registry: Annotated[str, typer.Option(help="Registry root.")] = "runs/registry") -> None:
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
            table.add_row(name, f"v{version.version}", version.kind, tags,
                          "" if score is None else f"{score:.4f}", str(version.manifest.get("created_at", "")))
    console.print(table)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="name[@version|@alias]")],
    registry: Annotated[str, typer.Option(help="Registry root.")] = "runs/registry",
) -> None:
    """A model version's manifest: labels, metrics, data fingerprint, files."""
    import json

    from raytag.registry import Registry, RegistryError

    try:
        version = Registry(registry).resolve(ref)
    except RegistryError as exc:
        _fail(exc)
        return
    console.print_json(json.dumps(version.manifest))


@models_app.command("alias")
def models_alias(
    ref: Annotated[str, typer.Argument(help="name@version to point the alias at")],
    alias: Annotated[str, typer.Argument(help="Alias name, e.g. prod")],
    registry: Annotated[str, typer.Option(help="Registry root.")] = "runs/registry",
) -> None:
    """Point an alias (such as ``prod``) at a version."""
    from raytag.registry import Registry, RegistryError

    try:
        reg = Registry(registry)
        version = reg.resolve(ref)
        reg.set_alias(version.name, alias, version.version)
    except RegistryError as exc:
        _fail(exc)
        return
    console.print(f"{version.name}@{alias} → v{version.version}")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its outputs.")] = Path("runs/demo"),
    steps: Annotated[int, typer.Option(help="Training steps per epoch (a short budget).")] = 400,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 3,
    port: Annotated[int, typer.Option(help="Port of the demo HTTP endpoint (on 127.0.0.1).")] = 8000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray progress logs.")] = False,
) -> None:
    """Run the main job on embedded defaults: local Ray, the bundled GMB corpus, a local registry.

    Prepares GMB on Ray Data, trains the BiLSTM on Ray Train for a short budget,
    evaluates it on the test split, registers it, tags an example sentence, then
    serves it on Ray Serve and sends the same sentence over HTTP.
    """
    import json

    from raytag.artifact import train_and_register
    from raytag.config import demo_job
    from raytag.prepare import prepare as run_prepare
    from raytag.session import ray_session
    from raytag.tagger import load_tagger

    _quiet_ray(verbose)
    job = demo_job(str(workdir), steps_per_epoch=steps, epochs=epochs)
    # A throwaway key for the demo endpoint, set before Ray starts so replicas inherit it.
    api_key = os.environ.setdefault("RAYTAG_API_KEYS", secrets.token_urlsafe(24)).split(",")[0]
    example = "My name is Wolfgang and I live in Berkeley, California."
    try:
        with ray_session(num_cpus=job.ray.num_cpus, log_to_driver=verbose):
            console.rule("1/5 prepare the bundled GMB corpus on Ray Data")
            result = run_prepare(job, overwrite=True)
            console.print(corpus_table(result.manifest))
            workers = job.train.num_workers
            console.rule(f"2/5 train the BiLSTM on Ray Train ({workers} worker{'s' * (workers != 1)}, {epochs}×{steps} steps)")
            version = train_and_register(job, result.directory, fresh=True)
            ref = f"{version.name}@v{version.version}"
            console.rule("3/5 evaluate on the test split and register")
            console.print(f"registered [bold]{ref}[/] in {job.registry.root}")
            console.print(metrics_table({k: v for k, v in version.metrics.items() if k.startswith(("test_", "dev_f1"))}))
            console.rule("4/5 tag an example sentence in process (Tagger API)")
            tagger = load_tagger(ref, job.registry.root)
            console.print_json(json.dumps(tagger.predict([example])[0].to_dict(with_tokens=False)))
            console.rule(f"5/5 serve {ref} on Ray Serve and call it over HTTP")
            _demo_request(ref, job.registry.root, api_key, example, port)
    except (RaytagError, RuntimeError, TimeoutError) as exc:
        _fail(exc)


def _demo_request(ref: str, registry: str, api_key: str, text: str, port: int) -> None:
    import json

    import httpx
    from ray import serve

    from raytag.serving.deploy import app_config, deploy

    name = "gmb-ner"
    # Two replicas (the default) at half a CPU each, so they fit beside whatever Ray still holds.
    deploy(app_config({"registry_root": registry, "models": [{"name": name, "ref": ref, "num_cpus": 0.5}]},
                      port=port))
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{name}/tag"
        response = httpx.post(url, json={"text": text}, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
        console.print(f"POST {url}  →  {response.status_code}")
        console.print_json(json.dumps(response.json()))
        response.raise_for_status()
    finally:
        serve.shutdown()


@app.command()
def version() -> None:
    """Print the raytag version."""
    import raytag

    console.print(raytag.__version__)


# The cluster-side verbs (tune, submit, jobs, serve) live in their own module.
from raytag import cli_cluster  # noqa: E402,F401  (registers its commands on ``app``)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
