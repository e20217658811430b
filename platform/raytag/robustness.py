"""Robustness report: how much a tagger's score drops on perturbed copies of labelled text.

Each perturbation of :mod:`raytag.perturb` edits characters inside tokens but
keeps every sentence's token count, so the gold tags of the clean text score
the perturbed text too.  The score is the one :func:`raytag.evaluate.evaluation_report`
puts first: seqeval micro F1 for entity taggers, token accuracy for plain ones.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from raytag.evaluate import evaluation_report
from raytag.perturb import parse_kinds, perturb
from raytag.tagged import predict_in_documents

if TYPE_CHECKING:  # the tagger module pulls in model code; only its protocol is needed here
    from raytag.tagger import Tagger

__all__ = ["format_robustness", "robustness_report"]


def _scores(report: dict[str, Any]) -> dict[str, float]:
    out = {"score": float(report["score"]), "token_accuracy": float(report["token_accuracy"])}
    if report["kind"] == "entity":
        out.update(precision=report["micro"]["precision"], recall=report["micro"]["recall"], f1=report["micro"]["f1"])
    return out


def robustness_report(
    tagger: Tagger,
    sentences: Sequence[tuple[Sequence[str], Sequence[str]]],
    kinds: str | Sequence[str],
    rate: float = 0.1,
    seed: int = 0,
    *,
    unit: str = "word",
    batch_size: int = 256,
    clean_report: dict[str, Any] | None = None,
    documents: Sequence[Hashable] | None = None,
) -> dict[str, Any]:
    """Score ``tagger`` on clean ``(tokens, gold tags)`` sentences and on each perturbation of them.

    ``kinds`` is a list of :data:`raytag.perturb.KINDS` or a comma-separated
    string (``"case,ocr"`` or ``"all"``); ``rate``, ``seed`` and ``unit`` go to
    :func:`raytag.perturb.perturb`.  Gold tags are never perturbed.  Pass the
    ``clean_report`` already computed for the same sentences to skip tagging
    them a second time. ``documents`` (a document key per sentence) lets a tagger trained
    with document context read each sentence, clean or perturbed, with its neighbours, as
    the main evaluation does; without it every sentence is tagged on its own.

    Returns a JSON-ready dict: ``metric`` (``"f1"`` or ``"token_accuracy"``),
    ``clean`` (scores), and per kind under ``kinds`` its scores plus ``drop``
    (clean score minus perturbed score), ``relative_drop`` (drop / clean score,
    0 when the clean score is 0) and ``perturbed_tokens`` / ``perturbed_share``
    (tokens that actually changed, of all tokens).
    """
    kinds = parse_kinds(kinds)
    tokens = [list(t) for t, _ in sentences]
    gold = [list(g) for _, g in sentences]
    keys: Sequence[Hashable] = documents if documents is not None else range(len(tokens))
    if clean_report is None:
        clean_report = evaluation_report(gold, _predict(tagger, tokens, keys, batch_size), entity=tagger.entity)
    clean = _scores(clean_report)
    n_tokens = sum(len(t) for t in tokens)
    result: dict[str, Any] = {
        "metric": "f1" if clean_report["kind"] == "entity" else "token_accuracy",
        "rate": float(rate),
        "seed": int(seed),
        "unit": unit,
        "num_sentences": len(tokens),
        "num_tokens": n_tokens,
        "clean": clean,
        "kinds": {},
    }
    for kind in kinds:
        noisy = perturb(tokens, kind, rate=rate, seed=seed, tags=gold, unit=unit)
        report = evaluation_report(gold, _predict(tagger, noisy, keys, batch_size), entity=tagger.entity)
        scores = _scores(report)
        drop = clean["score"] - scores["score"]
        changed = sum(a != b for s, p in zip(tokens, noisy) for a, b in zip(s, p))
        result["kinds"][kind] = {
            **scores,
            "drop": drop,
            "relative_drop": drop / clean["score"] if clean["score"] else 0.0,
            "perturbed_tokens": changed,
            "perturbed_share": changed / n_tokens if n_tokens else 0.0,
        }
    return result


def _predict(tagger: Tagger, tokens: list[list[str]], documents: Sequence[Hashable],
             batch_size: int) -> list[list[str]]:
    # Perturbations keep every sentence in place, so the clean text's document keys still apply.
    return [s.tags for s in predict_in_documents(tagger, tokens, documents, batch_size=batch_size)]


def format_robustness(result: dict[str, Any]) -> str:
    """Render :func:`robustness_report` as a plain-text table, clean row first."""
    metric = result["metric"]
    rows = [("clean", result["clean"]["score"], None, None, 0.0)]
    for kind, r in result["kinds"].items():
        rows.append((kind, r["score"], r["drop"], r["relative_drop"], r["perturbed_share"]))
    width = max(len(name) for name, *_ in rows + [("perturbation", 0, 0, 0, 0)])
    header = f"{'perturbation':<{width}}  {metric:>14}  {'drop':>8}  {'rel. drop':>9}  {'tokens hit':>10}"
    lines = [
        f"robustness: rate {result['rate']:g} per {result['unit']}, seed {result['seed']}, "
        f"{result['num_sentences']} sentences, {result['num_tokens']} tokens",
        header,
        "-" * len(header),
    ]
    for name, score, drop, rel, share in rows:
        drop_s = f"{drop:>8.4f}" if drop is not None else f"{'':>8}"
        rel_s = f"{rel:>9.1%}" if rel is not None else f"{'':>9}"
        lines.append(f"{name:<{width}}  {score:>14.4f}  {drop_s}  {rel_s}  {share:>10.1%}")
    return "\n".join(lines) + "\n"
