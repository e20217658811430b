"""``raytag evaluate`` and ``predict``: a trained tagger on labelled data, texts or whole files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from raytag.cli._util import AddressOption, RegistryOption, VerboseOption, app, console, err_console, fail, quiet_ray
from raytag.errors import RaytagError

PERTURB_HELP = "Also score perturbed copies: comma-separated kinds of case, typos, keyboard, ocr, truncate-entities, or all."


def _is_prepared(paths: list[str]) -> bool:
    from raytag.artifact_files import MANIFEST

    return len(paths) == 1 and (Path(paths[0]) / MANIFEST).is_file()


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Registry reference (name\\[@version|@alias]) or artifact directory.")],
    data: Annotated[list[str], typer.Argument(
        help="A prepared corpus directory (it has manifest.json; scored on --split), "
             "or labelled files and globs (CoNLL, JSONL, GMB CSV) read as they are.")],
    split: Annotated[str, typer.Option(help="Split of a prepared corpus to evaluate.")] = "test",
    format: Annotated[str | None, typer.Option(
        "--format", help="Files: conll, jsonl or gmb_csv (default: by extension, anything unknown is CoNLL).")] = None,
    columns: Annotated[str | None, typer.Option(help="Files: CoNLL column names, e.g. word,pos,chunk,ner.")] = None,
    tag_column: Annotated[str | None, typer.Option(help="Files: tag column, an index (-1) or a name from --columns.")] = None,
    label_map: Annotated[str | None, typer.Option(
        help="Files: file label → model label, e.g. PERSON=PER,MISC=O, or a JSON object file.")] = None,
    perturb: Annotated[str | None, typer.Option(help=PERTURB_HELP)] = None,
    perturb_rate: Annotated[float, typer.Option(help="Share of words (0-1) each perturbation edits.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the perturbations.")] = 0,
    registry: RegistryOption = "runs/registry",
    out: Annotated[Path | None, typer.Option(help="Where to save report.json/.txt and confusion.png.")] = None,
) -> None:
    """Evaluate a tagger: entity P/R/F1 (seqeval) or token accuracy, on a prepared split or labelled files."""
    from raytag.evaluate import format_report
    from raytag.tagger import load_tagger

    default_out = Path("runs") / "evaluations" / model.replace("@", "_").replace("/", "_")
    try:
        if _is_prepared(data):
            if any(v is not None for v in (format, columns, tag_column, label_map, perturb)):
                raise RaytagError(f"{data[0]} is a prepared corpus: --format, --columns, --tag-column, --label-map "
                                  "and --perturb apply to labelled files only")
            from raytag.artifact import evaluate_tagger
            from raytag.corpus.prepared import PreparedCorpus

            corpus = PreparedCorpus(data[0])
            corpus.require_split(split)  # before the model loads
            out = out or default_out / split
            report = evaluate_tagger(load_tagger(model, registry), corpus, split, out)
        else:
            from raytag.evaluate_files import evaluate_files, reader_options

            reader = None
            if format is not None or columns is not None or tag_column is not None:
                from raytag.evaluate_files import infer_format

                reader = reader_options(format or infer_format(data[0]), columns=columns, tag_column=tag_column)
            out = out or default_out / "files"
            report = evaluate_files(model, data, out, registry_root=registry, reader=reader, label_map=label_map,
                                    perturb=perturb, perturb_rate=perturb_rate, seed=seed)
    except (RaytagError, FileNotFoundError, KeyError, ValueError) as exc:
        fail(exc)
    console.print(format_report(report), highlight=False)
    if report.get("robustness"):
        from raytag.robustness import format_robustness

        console.print(format_robustness(report["robustness"]), highlight=False)
    console.print(f"report written to {out.absolute() / 'report.txt'} (with report.json and confusion.png)",
                  highlight=False, soft_wrap=True)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Registry reference or artifact directory.")],
    inputs: Annotated[list[str], typer.Argument(
        help="Without --out: texts to tag, printed as JSON. With --out: input files, directories, globs "
             "or URIs (s3://…) to tag in batch on Ray.")],
    out: Annotated[str | None, typer.Option(
        help="Batch mode: directory (or URI) for the output shards and rejects.jsonl; must be empty or new.")] = None,
    registry: RegistryOption = "runs/registry",
    tokens: Annotated[bool, typer.Option(help="Add per-token tags (`tokens` when printing, `tags` in batch).")] = False,
    device: Annotated[str, typer.Option(help="auto (a visible GPU if any, else cpu), cpu, cuda or cuda:N.")] = "auto",
    format: Annotated[str | None, typer.Option(
        "--format", help="Batch: text, jsonl, conll or parquet (default: by extension; unknown is CoNLL).")] = None,
    column: Annotated[str | None, typer.Option(
        help="Batch: JSONL/Parquet field with the text or token list (default text, else tokens); "
             "CoNLL token column index (default 0).")] = None,
    output_format: Annotated[str, typer.Option(help="Batch: jsonl or parquet shards.")] = "jsonl",
    batch_size: Annotated[int, typer.Option(help="Batch: records per tagger call.")] = 256,
    concurrency: Annotated[int, typer.Option(help="Batch: tagger actors.")] = 1,
    num_cpus: Annotated[float | None, typer.Option(
        help="Batch: CPUs reserved per tagger actor (default 1, less where the pool would hold every CPU).")] = None,
    num_gpus: Annotated[float, typer.Option(help="Batch: GPUs per tagger actor.")] = 0.0,
    max_chars: Annotated[int, typer.Option(help="Batch: longer texts are rejected.")] = 100_000,
    address: AddressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Tag texts and print entity spans as JSON; with --out, tag files in batch on Ray Data.

    Batch mode writes part-*.jsonl (or .parquet) shards whose names sort in input order;
    each row keeps its input's other JSONL fields and adds source, line (1-based; null for
    Parquet), row (index in its file), text, entities (and tags with --tokens). Bad records
    go to <out>/rejects.jsonl with their file and line; the others are all written.
    """
    if out is not None:
        _predict_batch(model, inputs, out, registry=registry, tokens=tokens, device=device, format=format,
                       column=column, output_format=output_format, batch_size=batch_size, concurrency=concurrency,
                       num_cpus=num_cpus, num_gpus=num_gpus, max_chars=max_chars, address=address, verbose=verbose)
        return
    from raytag.tagger import load_tagger

    try:
        tagger = load_tagger(model, registry, device=device)
    except (RaytagError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    for sentence in tagger.predict(inputs):
        console.print_json(json.dumps(sentence.to_dict(with_tokens=tokens)))


def _predict_batch(model: str, inputs: list[str], out: str, *, registry: str, tokens: bool, device: str,
                   format: str | None, column: str | None, output_format: str, batch_size: int, concurrency: int,
                   num_cpus: float | None, num_gpus: float, max_chars: int, address: str | None, verbose: bool) -> None:
    from raytag.batch_inputs import InputOptions
    from raytag.batch_predict import BatchOptions, plan_batch, run_batch
    from raytag.cli.progress import BatchDisplay
    from raytag.session import ray_session

    quiet_ray(verbose)
    try:
        options = BatchOptions(
            inputs=InputOptions(format=format, column=column, max_chars=max_chars), output_format=output_format,
            with_tags=tokens, batch_size=batch_size, concurrency=concurrency, num_cpus=num_cpus, num_gpus=num_gpus,
            device=device,
        )
        plan = plan_batch(inputs, out, model, registry_root=registry, options=options)
        with BatchDisplay(console, len(plan.files)) as display, ray_session(address, log_to_driver=verbose):
            summary = run_batch(plan, display.update)
            display.finish(summary)
    except (RaytagError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    for where, reason in summary.examples:
        err_console.print(f"[yellow]rejected:[/] {escape(f'{where}: {reason}')}", highlight=False, soft_wrap=True)
    if summary.rejects > len(summary.examples):
        err_console.print(f"… and {summary.rejects - len(summary.examples)} more", highlight=False)
    console.print(f"{summary.rows:,} rows tagged, {summary.rejects:,} rejected, {summary.words:,} words in "
                  f"{summary.seconds:.1f} s ({summary.words_per_second:,.0f} words/s; "
                  f"{summary.tagging_words_per_second:,.0f} words/s once the taggers were loaded) → {out} "
                  f"({len(summary.shards)} shard{'s' * (len(summary.shards) != 1)})", highlight=False, soft_wrap=True)
    if summary.rejects_file:
        console.print(f"rejects: {summary.rejects_file}", highlight=False, soft_wrap=True)
