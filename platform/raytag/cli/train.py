"""``raytag train`` and ``demo``: taggers from a job to a registered model."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from raytag.cli._util import (
    AddressOption,
    SetOption,
    VerboseOption,
    announce_prepare,
    app,
    console,
    fail,
    job_session,
    quiet_ray,
)
from raytag.errors import RaytagError


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Job YAML file.")],
    overrides: SetOption = None,
    address: AddressOption = None,
    prepared: Annotated[Path | None, typer.Option(help="Prepared corpus (default: prepare it first, or reuse it).")] = None,
    fresh: Annotated[bool, typer.Option(
        help="Delete this config's run (same job name and config hash) and train it again; "
             "runs of other configs are never touched.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Train the job's model on Ray Train, evaluate it on the test split and register it.

    A run is the job name plus a hash of its model and train settings and data: the
    same config resumes its unfinished run or reports it finished, a changed one starts
    a new run beside the others. Epochs are printed as they end; the run is tracked in
    MLflow and TensorBoard (the job's tracking section).
    """
    from raytag.artifact import train_and_register
    from raytag.cli.progress import EpochDisplay
    from raytag.config import load_job
    from raytag.prepare import ensure_prepared
    from raytag.train.run import RunFinished

    quiet_ray(verbose)
    try:
        job = load_job(config, overrides or [])
        with job_session(job, address, log_to_driver=verbose):
            directory = prepared or ensure_prepared(job, announce=announce_prepare(job))
            with EpochDisplay(console) as display:
                version = train_and_register(job, directory, fresh=fresh, listeners=[display])
    except RunFinished as done:
        if not done.record.get("registered"):
            fail(done)
        console.print(f"run {done.key} already finished and registered as [bold]{done.record['registered']}[/] "
                      "(pass --fresh to train this config again)", highlight=False, soft_wrap=True)
        return
    except (RaytagError, FileExistsError, FileNotFoundError, KeyError) as exc:
        fail(exc)
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
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its outputs.")] = Path("runs/demo"),
    steps: Annotated[int, typer.Option(help="Training steps per epoch (a short budget).")] = 600,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 4,
    port: Annotated[int, typer.Option(help="Port of the demo HTTP endpoint (on 127.0.0.1).")] = 8000,
    verbose: VerboseOption = False,
) -> None:
    """Run the main job on embedded defaults: local Ray, the bundled GMB corpus, a local registry.

    Prepares GMB on Ray Data, trains the BiLSTM on Ray Train for a short budget,
    evaluates it on the test split, registers it, tags an example sentence, then
    serves it on Ray Serve and sends the same sentence over HTTP.
    """
    import json

    from raytag.artifact import train_and_register
    from raytag.cli.progress import EpochDisplay
    from raytag.config import demo_job
    from raytag.cli.corpus import corpus_table
    from raytag.prepare import prepare as run_prepare
    from raytag.session import ray_session
    from raytag.tagger import load_tagger

    quiet_ray(verbose)
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
            with EpochDisplay(console) as display:
                version = train_and_register(job, result.directory, fresh=True, listeners=[display])
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
        fail(exc)


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
