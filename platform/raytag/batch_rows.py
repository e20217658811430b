"""Rows of a batch prediction run: records in, tagged rows out, as the stages pass them on.

Arrow schemas for the rows between stages, and the plain functions (no Ray) that turn
records into rows, tag them, and shape them for the output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from raytag.batch_inputs import Record

if TYPE_CHECKING:
    from raytag.tagger import Tagger

__all__ = ["ENTITY", "RECORDS", "TAGGED", "TIMED", "output_rows", "record_rows", "reject_row", "tag_rows"]

ENTITY = pa.struct([("entity_group", pa.string()), ("score", pa.float64()), ("word", pa.string()),
                    ("start", pa.int64()), ("end", pa.int64())])
RECORDS = pa.schema([("file_index", pa.int32()), ("source", pa.string()), ("line", pa.int64()), ("row", pa.int64()),
                     ("text", pa.string()), ("tokens", pa.list_(pa.string())), ("fields", pa.string()),
                     ("reject", pa.string())])
TAGGED = RECORDS.append(pa.field("entities", pa.list_(ENTITY))).append(pa.field("tags", pa.list_(pa.string()))) \
    .append(pa.field("words", pa.int64()))
# When the actor call that tagged a row started and ended (epoch seconds): the summary's
# tagging span, which leaves out actor start-up and model loading.
TIMED = TAGGED.append(pa.field("tag_start", pa.float64())).append(pa.field("tag_end", pa.float64()))


def record_rows(records: Sequence[Record], file_index: int) -> list[dict[str, Any]]:
    """Records as rows of the :data:`RECORDS` schema (extra fields as one JSON string: Arrow needs one type)."""
    return [{"file_index": file_index, "source": r.source, "line": r.line, "row": r.row, "text": r.text,
             "tokens": r.tokens, "fields": json.dumps(r.fields, ensure_ascii=False, default=str) if r.fields else None,
             "reject": r.reject} for r in records]


def tag_rows(tagger: Tagger, rows: list[dict[str, Any]], batch_size: int = 256) -> list[dict[str, Any]]:
    """Add ``entities``, ``tags`` and ``words`` to record rows; rejects pass through untagged.

    If the tagger fails on the batch, each row is tagged alone, so one row it cannot
    handle becomes a reject instead of failing its neighbours.
    """
    out = [{**row, "entities": [], "tags": [], "words": 0} for row in rows]
    todo = [i for i, row in enumerate(rows) if row["reject"] is None]

    def apply(indices: list[int]) -> None:
        inputs = [rows[i]["tokens"] if rows[i]["tokens"] is not None else rows[i]["text"] for i in indices]
        for i, result in zip(indices, tagger.predict(inputs, batch_size=batch_size), strict=True):
            out[i].update(entities=[e.to_dict() for e in result.entities], tags=result.tags, words=len(result.tokens))

    try:
        apply(todo)
    except Exception:  # noqa: BLE001 - find the row(s) at fault, below
        for i in todo:
            try:
                apply([i])
            except Exception as exc:  # noqa: BLE001
                out[i].update(reject=f"tagger failed: {type(exc).__name__}: {exc}", entities=[], tags=[], words=0)
    return out


def output_rows(rows: Sequence[dict[str, Any]], with_tags: bool, output_format: str) -> list[dict[str, Any]]:
    """Tagged rows as written: JSONL rows keep the input's other fields at the top level
    (the columns added here win on a clash); Parquet rows keep them as one JSON string, ``fields``."""
    out = []
    for row in rows:
        ours: dict[str, Any] = {"source": row["source"], "line": row["line"], "row": row["row"], "text": row["text"]}
        if row["tokens"] is not None or output_format == "parquet":
            ours["tokens"] = row["tokens"]
        ours["entities"] = row["entities"]
        if with_tags:
            ours["tags"] = row["tags"]
        if output_format == "jsonl":
            out.append({**(json.loads(row["fields"]) if row["fields"] else {}), **ours})
        else:
            out.append({**ours, "fields": row["fields"]})
    return out


def reject_row(row: dict[str, Any]) -> dict[str, Any]:
    where = row["source"] if row["line"] is None else f"{row['source']}:{row['line']}"
    if row["line"] is None and row["row"] >= 0:
        where += f" row {row['row']}"
    return {"source": row["source"], "line": row["line"], "row": row["row"], "where": where, "reason": row["reject"]}
