from __future__ import annotations

import math

import pytest

from raytag.models.lr_schedule import WarmupDecay, learning_rate


def rates(schedule: WarmupDecay, steps: range) -> list[float]:
    return [float(schedule(step)) for step in steps]


def test_constant_without_warmup_is_a_plain_number() -> None:
    assert learning_rate(0.01, None, 100) == 0.01
    assert learning_rate(0.01, "constant", 100, 0.0) == 0.01


def test_warmup_then_cosine_and_linear_decay() -> None:
    cosine = learning_rate(1.0, "cosine", 110, warmup_ratio=10 / 110)
    assert isinstance(cosine, WarmupDecay) and cosine.warmup_steps == 10
    values = rates(cosine, range(0, 130))
    assert values[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert values[10] == pytest.approx(1.0)
    assert values[60] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert values[110:] == pytest.approx([0.0] * 20)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))

    linear = learning_rate(2.0, "linear_decay", 100)
    assert rates(linear, range(0, 101, 25)) == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0])
    constant = learning_rate(2.0, "constant", 100, warmup_ratio=0.5)
    assert rates(constant, [0, 49, 50, 99, 500]) == pytest.approx([2.0 / 50, 2.0, 2.0, 2.0, 2.0])


def test_a_resumed_schedule_continues_where_it_stopped() -> None:
    full = learning_rate(1.0, "cosine", 100, 0.1)
    resumed = learning_rate(1.0, "cosine", 100, 0.1, done_steps=40)
    assert rates(resumed, range(0, 60)) == pytest.approx(rates(full, range(40, 100)))


def test_schedule_round_trips_through_its_config() -> None:
    schedule = WarmupDecay(0.5, 50, 5, "linear_decay", offset=3)
    again = WarmupDecay.from_config(schedule.get_config())
    assert rates(again, range(60)) == rates(schedule, range(60))
    with pytest.raises(ValueError, match="unknown decay"):
        WarmupDecay(0.5, 50, 5, "step")
