from __future__ import annotations

import json

import numpy as np
import pytest

from raytag.evaluate import (
    confusion_matrix,
    entity_report,
    evaluation_report,
    format_report,
    plot_confusion_matrix,
    plot_curves,
    save_report,
    token_report,
)

# Sentence 0: PER exact match, LOC boundary error, ORG predicted as LOC.
# Sentence 1: MISC missed, PER exact match.
GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG"],
    ["B-MISC", "O", "B-PER"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "B-LOC"],
    ["O", "O", "B-PER"],
]

POS_GOLD = [["DET", "NOUN", "VERB"], ["NOUN", "VERB", "ADJ", "NOUN"]]
POS_PRED = [["DET", "VERB", "VERB"], ["NOUN", "NOUN", "ADJ", "NOUN"]]


def test_entity_report_hand_computed():
    r = entity_report(GOLD, PRED)
    # 5 gold entities, 4 predicted, 2 correct (both PER).
    assert r["kind"] == "entity"
    assert r["micro"]["precision"] == pytest.approx(2 / 4)
    assert r["micro"]["recall"] == pytest.approx(2 / 5)
    assert r["micro"]["f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert r["micro"]["support"] == 5
    assert r["score"] == pytest.approx(r["micro"]["f1"])

    per = r["per_type"]
    assert set(per) == {"PER", "LOC", "ORG", "MISC"}
    assert per["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    # LOC: 2 predicted (wrong boundary, wrong type), 1 gold, none correct.
    assert per["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per["ORG"]["recall"] == 0.0 and per["ORG"]["support"] == 1
    assert per["MISC"]["recall"] == 0.0 and per["MISC"]["support"] == 1

    assert r["macro"]["precision"] == pytest.approx(0.25)
    assert r["macro"]["recall"] == pytest.approx(0.25)
    assert r["macro"]["f1"] == pytest.approx(0.25)
    assert r["token_accuracy"] == pytest.approx(7 / 10)
    assert r["num_sentences"] == 2 and r["num_tokens"] == 10
    json.dumps(r)  # JSON-serialisable: no numpy scalars


def test_entity_report_partial_credit_per_type():
    gold = [["B-PER", "O", "B-LOC", "B-LOC"], ["B-PER", "I-PER"]]
    pred = [["B-PER", "O", "B-LOC", "O"], ["B-PER", "O"]]
    r = entity_report(gold, pred)
    # PER: 1 of 2 right (second has a boundary error), precision 1/2 too.
    assert r["per_type"]["PER"]["precision"] == pytest.approx(0.5)
    assert r["per_type"]["PER"]["recall"] == pytest.approx(0.5)
    # LOC: 1 predicted and correct, 2 gold.
    assert r["per_type"]["LOC"]["precision"] == pytest.approx(1.0)
    assert r["per_type"]["LOC"]["recall"] == pytest.approx(0.5)
    assert r["per_type"]["LOC"]["f1"] == pytest.approx(2 / 3)
    assert r["micro"]["precision"] == pytest.approx(2 / 3)
    assert r["micro"]["recall"] == pytest.approx(2 / 4)


def test_entity_report_is_conlleval_lenient():
    # A stray I-PER is read as an entity, as conlleval does.
    r = entity_report([["O", "B-PER", "O"]], [["O", "I-PER", "O"]])
    assert r["micro"]["f1"] == pytest.approx(1.0)
    assert r["token_accuracy"] == pytest.approx(2 / 3)


def test_entity_report_without_entities_is_finite():
    r = entity_report([["O", "O"]], [["O", "O"]])
    assert r["score"] == 0.0 and r["per_type"] == {}
    assert r["macro"]["f1"] == 0.0
    json.dumps(r, allow_nan=False)


def test_reports_reject_misaligned_input():
    with pytest.raises(ValueError, match="sentence 1"):
        entity_report(GOLD, [PRED[0], PRED[1][:2]])
    with pytest.raises(ValueError, match="sentences"):
        entity_report(GOLD, PRED[:1])
    with pytest.raises(ValueError, match="sentence 0"):
        token_report(POS_GOLD, [POS_PRED[0][:1], POS_PRED[1]])
    with pytest.raises(ValueError):
        token_report([], [])


def test_token_report_hand_computed():
    r = token_report(POS_GOLD, POS_PRED)
    assert r["kind"] == "plain"
    assert r["token_accuracy"] == pytest.approx(5 / 7)
    assert r["score"] == pytest.approx(5 / 7)
    assert r["per_tag"] == {
        "ADJ": {"accuracy": 1.0, "support": 1},
        "DET": {"accuracy": 1.0, "support": 1},
        "NOUN": {"accuracy": pytest.approx(2 / 3), "support": 3},
        "VERB": {"accuracy": 0.5, "support": 2},
    }
    assert r["num_tokens"] == 7


def test_evaluation_report_dispatch_and_format():
    ent = evaluation_report(GOLD, PRED, entity=True)
    plain = evaluation_report(POS_GOLD, POS_PRED, entity=False)
    assert ent["kind"] == "entity" and plain["kind"] == "plain"
    assert ent == entity_report(GOLD, PRED)

    text = format_report(ent)
    assert "0.4444" in text  # micro F1
    for name in ("PER", "LOC", "ORG", "MISC", "micro avg", "macro avg"):
        assert name in text
    text = format_report(plain)
    assert "NOUN" in text and "0.6667" in text and "0.7143" in text
    with pytest.raises(ValueError):
        format_report({"kind": "other", "score": 0, "token_accuracy": 0,
                       "num_sentences": 0, "num_tokens": 0})


def test_save_report(tmp_path):
    report = evaluation_report(GOLD, PRED, entity=True)
    paths = save_report(report, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == report
    assert paths["txt"].read_text() == format_report(report)


def test_confusion_matrix_counts():
    labels = ["DET", "NOUN", "VERB", "ADJ"]
    m = confusion_matrix(POS_GOLD, POS_PRED, labels)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = 1  # DET->DET
    expected[1, 1] = 2  # NOUN->NOUN
    expected[1, 2] = 1  # NOUN->VERB
    expected[2, 2] = 1  # VERB->VERB
    expected[2, 1] = 1  # VERB->NOUN
    expected[3, 3] = 1  # ADJ->ADJ
    np.testing.assert_array_equal(m, expected)
    assert m.sum() == 7
    with pytest.raises(ValueError, match="'ADJ'"):
        confusion_matrix(POS_GOLD, POS_PRED, labels[:3])


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_confusion_matrix_17_labels(tmp_path):
    rng = np.random.default_rng(0)
    labels = [f"TAG{i}" for i in range(17)]
    # Diagonal-heavy like a real tagger, with a few 4-5 digit confusions.
    matrix = np.diag(rng.integers(1000, 20000, size=17))
    matrix[rng.integers(0, 17, 30), rng.integers(0, 17, 30)] += rng.integers(1, 3000, 30)
    matrix[3] = 0  # a gold tag never seen must not divide by zero
    out = plot_confusion_matrix(matrix, labels, tmp_path / "plots" / "cm.png")
    assert out.exists() and _is_png(out)
    with pytest.raises(ValueError):
        plot_confusion_matrix(matrix[:3, :3], labels, tmp_path / "bad.png")


def test_plot_curves(tmp_path):
    history = [
        {"epoch": 1, "loss": 1.2, "val_loss": 1.0, "dev_f1": 0.5, "dev_accuracy": 0.8},
        {"epoch": 2, "loss": 0.7, "val_loss": 0.8, "dev_f1": 0.7, "dev_accuracy": 0.9},
        {"epoch": 3, "loss": 0.5, "dev_f1": 0.75},
    ]
    out = plot_curves(history, tmp_path / "curves.png")
    assert out.exists() and _is_png(out)
    only_loss = plot_curves([{"epoch": 1, "loss": 1.0}], tmp_path / "loss.png")
    assert _is_png(only_loss)
    with pytest.raises(ValueError):
        plot_curves([], tmp_path / "empty.png")
