"""The ``raytag`` verbs that drive a cluster: tune, submit, jobs, serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from raytag.cli._util import (
    AddressOption,
    RegistryOption,
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
def tune(
    config: Annotated[Path, typer.Argument(help="Search YAML file (jobs/tune_*.yaml).")],
    overrides: SetOption = None,
    address: AddressOption = None,
    fresh: Annotated[bool, typer.Option(help="Start a new search even if one can be resumed.")] = False,
    promote: Annotated[bool, typer.Option(
        help="Also point the model's latest (and best, if it scores higher) at the tuned version "
             "(the search file's promote: true). Without it only the search's alias (tuned) moves.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Search hyperparameters with Ray Tune (ASHA on dev score); register the best trial as <model>@tuned.

    Every trial's epochs are printed as they end; each trial is an MLflow run and writes
    TensorBoard events (the base job's tracking section).
    """
    from raytag.cli._tune_table import results_view
    from raytag.cli.progress import TrialDisplay
    from raytag.prepare import ensure_prepared
    from raytag.tune import load_search, run_search

    quiet_ray(verbose)
    try:
        search, base = load_search(config, [*(overrides or []), *(["promote=true"] if promote else [])])
        with job_session(base, address, log_to_driver=verbose):
            directory = ensure_prepared(base, announce=announce_prepare(base))
            with TrialDisplay(console) as display:
                outcome = run_search(search, base, directory, fresh=fresh, listener=display)
    except (RaytagError, FileExistsError, FileNotFoundError, RuntimeError) as exc:
        fail(exc)
    metric = search.search.metric
    title = f"{search.name}{' (resumed)' if outcome.restored else ''}: {metric} ({search.search.mode}) per trial"
    console.print(results_view(outcome.table, metric, title, list(search.search.space), width=console.width))
    console.print(f"best: trial {outcome.best_trial}, {metric} "
                  f"{outcome.best_metrics.get(metric, float('nan')):.4f}", highlight=False)
    for key, value in outcome.best_params.items():
        console.print(f"  {key} = {value}", highlight=False)
    console.print(f"best job written to {outcome.best_job_file} (train it with: raytag train {outcome.best_job_file})",
                  highlight=False, soft_wrap=True)
    if outcome.registered is not None:
        ref = f"{outcome.registered.name}@v{outcome.registered.version}"
        moved = ", ".join(f"@{a}" for a in outcome.aliases)
        kept = ("" if search.promote else
                f"; {outcome.registered.name}@latest and @best unchanged (promote with --promote, or "
                f"raytag models alias {ref} latest)")
        console.print(f"registered [bold]{ref}[/] as {moved}{kept}", highlight=False, soft_wrap=True)


@app.command()
def submit(
    config: Annotated[Path, typer.Argument(help="Job or search YAML, relative to the working directory.")],
    address: Annotated[str, typer.Option(help="Ray dashboard / Jobs API address.")] = "http://127.0.0.1:8265",
    command: Annotated[str, typer.Option(help="What to run on the cluster: train, prepare or tune.")] = "train",
    overrides: SetOption = None,
    working_dir: Annotated[Path, typer.Option(help="Uploaded as the job's working_dir.")] = Path("."),
    wait_for: Annotated[bool, typer.Option("--wait/--no-wait", help="Stream the job's logs until it ends.")] = False,
) -> None:
    """Submit a job to a running Ray cluster through the Ray Jobs API (token auth: RAY_AUTH_MODE=token)."""
    from raytag import jobs
    from raytag.jobfiles import load_any

    try:
        if command == "tune":
            from raytag.tune import load_search

            load_search(config, overrides or [])
        elif isinstance(load_any(config, overrides or []), dict):
            raise RaytagError(f"{config} is a Serve config: deploy it with `serve deploy {config} --address "
                              f"{address}` (or `raytag serve --config {config}`), not as a job")
        submission_id = jobs.submit(address, command, str(config), overrides or [], working_dir=working_dir)
    except (RaytagError, ValueError, RuntimeError, ConnectionError) as exc:
        fail(exc)
    console.print(f"submitted [bold]{submission_id}[/] to {address}")
    if wait_for:
        status = jobs.follow(address, submission_id, lambda text: console.out(text, end="", highlight=False))
        console.print(f"{submission_id}: {status}")
        if status != "SUCCEEDED":
            raise typer.Exit(code=1)


jobs_app = typer.Typer(help="Status, logs and stopping of submitted jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
JobAddress = Annotated[str, typer.Option("--address", help="Ray dashboard / Jobs API address.")]


@jobs_app.command("status")
def jobs_status(submission_id: str, address: JobAddress = "http://127.0.0.1:8265") -> None:
    """A submitted job's status."""
    from raytag import jobs

    console.print(str(jobs.client(address).get_job_status(submission_id).value))


@jobs_app.command("logs")
def jobs_logs(
    submission_id: str,
    address: JobAddress = "http://127.0.0.1:8265",
    follow: Annotated[bool, typer.Option(help="Stream until the job ends.")] = False,
) -> None:
    """A submitted job's logs."""
    import asyncio

    from raytag import jobs

    client = jobs.client(address)
    if not follow:
        console.print(client.get_job_logs(submission_id), highlight=False, markup=False)
        return

    async def tail() -> None:
        async for lines in client.tail_job_logs(submission_id):
            console.print(lines, end="", highlight=False, markup=False)

    asyncio.run(tail())


@jobs_app.command("stop")
def jobs_stop(submission_id: str, address: JobAddress = "http://127.0.0.1:8265") -> None:
    """Stop a running job."""
    from raytag import jobs

    stopped = jobs.client(address).stop_job(submission_id)
    console.print(f"{submission_id}: {'stopping' if stopped else 'not running'}")


@jobs_app.command("list")
def jobs_list(address: JobAddress = "http://127.0.0.1:8265") -> None:
    """Every job the cluster knows."""
    from raytag import jobs

    table = Table()
    for column in ("submission id", "status", "entrypoint"):
        table.add_column(column)
    for job in jobs.client(address).list_jobs():
        table.add_row(str(job.submission_id), str(job.status.value), job.entrypoint)
    console.print(table)


@app.command("serve")
def serve_models(
    refs: Annotated[list[str] | None, typer.Argument(help="Registry references to serve (name[@version|@alias]).")] = None,
    config: Annotated[Path | None, typer.Option(help="A Serve config file (serve/*.yaml) instead of refs.")] = None,
    registry: RegistryOption = "runs/registry",
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless behind a proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    address: AddressOption = None,
    replicas: Annotated[int, typer.Option(min=1, help="Replicas per model: 2 by default, so a lost replica "
                                          "never leaves a model unserved; above 2, autoscaled from 2.")] = 2,
) -> None:
    """Serve registered taggers over HTTP on Ray Serve until interrupted.

    Each model is served at POST /v1/models/<name>/tag, where <name> is the reference's
    model name. Clients need an API key from RAYTAG_API_KEYS (or the config's api_keys_file).
    """
    import os
    import time

    from raytag.registry import parse_ref
    from raytag.serving.deploy import app_config, deploy, load_config, preflight
    from raytag.session import ray_session

    quiet_ray(False)
    if bool(refs) == bool(config):
        fail(RaytagError("give model references or --config, not both (and not neither)"))
    try:
        if config is not None:
            serve_config = load_config(config)
        else:
            models = [{"name": parse_ref(ref).name, "ref": ref,
                       "autoscaling": {"min_replicas": min(2, replicas), "max_replicas": replicas}}
                      for ref in refs or []]
            serve_config = app_config({"registry_root": registry, "models": models}, host=host, port=port)
        http = serve_config.get("http_options", {})
        if (address or os.environ.get("RAY_ADDRESS") or "local") == "local":
            # A Ray started here hands its environment and registry to the replicas: a missing
            # API key or model fails now, not after Serve has retried the replicas.
            preflight(serve_config)
        with ray_session(address, log_to_driver=True):
            from ray import serve

            deploy(serve_config)
            console.print(f"serving on http://{http.get('host', host)}:{http.get('port', port)} "
                          "(OpenAPI at /docs); Ctrl-C stops")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                serve.shutdown()
    except (RaytagError, RuntimeError, TimeoutError, ValueError) as exc:
        fail(exc)
