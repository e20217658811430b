"""Batch prediction on Ray Data: every input format, order and ids kept, bad rows set aside, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raytag.batch_inputs import InputOptions, parse_records
from raytag.batch_predict import BatchOptions, batch_predict
from raytag.cli import app
from raytag.tagger import load_tagger
from tests.helpers import publish_bilstm, synthetic_conll

WORDS = "my name is wolfgang and i live in berkeley california .".split()


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("registry")
    publish_bilstm(root, "tiny", seed=3)
    return str(root)


def _texts(n: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS).capitalize() if rng.random() < 0.3 else rng.choice(WORDS)
                     for _ in range(rng.randint(1, 14))) for _ in range(n)]


def _inputs(tmp: Path) -> dict[str, Path]:
    """One file per format, each with good rows around bad ones."""
    texts = _texts(40, seed=1)
    txt = tmp / "a.txt"
    txt.write_bytes("\n".join(texts[:10]).encode() + b"\n\nbad \xff byte\n" + ("long " * 30).encode() + b"\n"
                    + "\n".join(texts[10:20]).encode() + b"\n")
    jsonl = tmp / "b.jsonl"
    lines = [json.dumps({"id": f"j{i}", "text": t, "meta": {"n": i}}) for i, t in enumerate(texts[20:30])]
    lines[3:3] = ["{broken", json.dumps({"id": "no-text"})]
    lines.append(json.dumps({"id": "tok", "tokens": texts[30].split()}))
    jsonl.write_text("\n".join(lines) + "\n")
    conll = tmp / "c.conll"
    conll.write_text(synthetic_conll(12, seed=4).replace("Ada", "wolfgang"))
    parquet = tmp / "d.parquet"
    pq.write_table(pa.table({"doc": list(range(9)), "text": [*texts[31:35], None, *texts[35:39]]}), parquet)
    return {"text": txt, "jsonl": jsonl, "conll": conll, "parquet": parquet}


def _expected(files: dict[str, Path], options: InputOptions) -> tuple[list, list]:
    good, bad = [], []
    for fmt, path in files.items():
        for r in parse_records(path.read_bytes(), str(path), fmt, options):
            (bad if r.reject else good).append(r)
    return good, bad


def _read_jsonl_shards(out: Path) -> list[dict]:
    shards = sorted(out.glob("part-*.jsonl"))
    return [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]


@pytest.mark.slow  # two actors each loading TensorFlow: about 20 s on 2 cores
@pytest.mark.timeout(300)
def test_every_format_keeps_order_ids_and_matches_in_process_predict(ray_local, registry, tmp_path):
    files = _inputs(tmp_path)
    out = tmp_path / "out"
    # Two actors and shards of 7 rows: order must survive both. One CPU per actor, as the CLI
    # asks: the pool holds both cores of this Ray, and reading and writing must still run.
    options = BatchOptions(inputs=InputOptions(max_chars=100), with_tags=True, batch_size=5, concurrency=2,
                           shard_rows=7)
    summary = batch_predict([str(p) for p in files.values()], out, "tiny", registry_root=registry, options=options)

    good, bad = _expected(files, options.inputs)
    rows = _read_jsonl_shards(out)
    assert [(r["source"], r["line"], r["row"]) for r in rows] == [(g.source, g.line, g.row) for g in good]
    assert summary.rows == len(rows) and summary.rejects == len(bad) == 5
    assert len(summary.shards) > 4

    tagger = load_tagger("tiny", registry, device="cpu")
    expected = tagger.predict([g.tokens if g.tokens is not None else g.text for g in good])
    for row, want in zip(rows, expected, strict=True):
        assert row["text"] == want.text
        assert row["tags"] == want.tags
        assert [{**e, "score": pytest.approx(e["score"], abs=1e-5)} for e in (x.to_dict() for x in want.entities)] \
            == row["entities"]
    assert summary.words == sum(len(e.tokens) for e in expected)
    by_id = {r["id"]: r for r in rows if "id" in r}
    assert by_id["j5"]["meta"] == {"n": 5} and by_id["j5"]["line"] == 8
    assert by_id["tok"]["tokens"] == _texts(40, seed=1)[30].split()
    assert [r["doc"] for r in rows if r["source"].endswith("d.parquet")] == [0, 1, 2, 3, 5, 6, 7, 8]

    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    a, b, d = (str(files[k]) for k in ("text", "jsonl", "parquet"))
    assert [(r["where"], r["reason"].split(":")[0].split(" (")[0]) for r in rejects] == [
        (f"{a}:12", "cannot decode byte 0xff"),
        (f"{a}:13", "text has 150 characters, over --max-chars 100"),
        (f"{b}:4", "not valid JSON"),
        (f"{b}:5", "line has no 'text' or 'tokens' field"),
        (f"{d} row 4", "column 'text' is null"),
    ]


def test_cli_batch_predict_to_parquet(ray_local, registry, tmp_path):
    files = _inputs(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "predict", "tiny", str(tmp_path / "*.jsonl"), str(files["parquet"]), "--out", str(out),
        "--output-format", "parquet", "--registry", registry, "--batch-size", "4",
    ])
    assert result.exit_code == 0, result.output
    table = pq.read_table(sorted(out.glob("part-*.parquet")))
    good, bad = _expected({"jsonl": files["jsonl"], "parquet": files["parquet"]}, InputOptions())
    assert table.column("row").to_pylist() == [g.row for g in good]
    assert "tags" not in table.column_names
    assert json.loads(table.column("fields").to_pylist()[0]) == {"id": "j0", "meta": {"n": 0}}
    assert f"{len(good)} rows tagged, {len(bad)} rejected" in result.output
    assert f"rejected: {files['jsonl']}:4: not valid JSON" in result.output
    assert f"rejects: {out}/rejects.jsonl" in result.output
    assert len((out / "rejects.jsonl").read_text().splitlines()) == len(bad)
