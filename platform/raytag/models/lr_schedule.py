"""Learning-rate schedules of the Keras tagger: linear warm-up, then constant, cosine or linear decay.

A Keras ``LearningRateSchedule`` of the optimizer's step counter, so it is saved and
restored with the optimizer and every replica computes the same rate at the same step.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["SCHEDULES", "WarmupDecay", "learning_rate"]

SCHEDULES = ("constant", "cosine", "linear_decay")


@keras.saving.register_keras_serializable(package="raytag")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * step / warmup_steps`` while warming up, then ``decay`` from ``peak`` to 0 at ``total_steps``.

    Past ``total_steps`` the rate stays at its final value (0 for the decays). ``offset``
    steps count as done already: a resumed run continues its schedule while the
    optimizer (whose moment estimates restart from zero) counts from 0 again.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, decay: str = "constant",
                 offset: int = 0) -> None:
        if decay not in SCHEDULES:
            raise ValueError(f"unknown decay {decay!r}; expected one of {', '.join(SCHEDULES)}")
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, got "
                             f"{warmup_steps} and {total_steps}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.offset = int(offset)

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32) + float(self.offset)
        warm = float(max(self.warmup_steps, 1))
        warmup = self.peak * tf.minimum(step + 1.0, warm) / warm if self.warmup_steps else tf.constant(self.peak)
        span = float(max(self.total_steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            decayed = self.peak * 0.5 * (1.0 + tf.cos(math.pi * progress))
        elif self.decay == "linear_decay":
            decayed = self.peak * (1.0 - progress)
        else:
            decayed = tf.constant(self.peak)
        return tf.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "decay": self.decay, "offset": self.offset}


def learning_rate(peak: float, schedule: str | None, total_steps: int, warmup_ratio: float = 0.0,
                  done_steps: int = 0) -> Any:
    """What to give the optimizer: the plain ``peak`` when nothing varies, else a :class:`WarmupDecay`."""
    decay = schedule or "constant"
    total_steps = max(int(total_steps), 1)
    warmup_steps = min(int(round(warmup_ratio * total_steps)), total_steps)
    if decay == "constant" and warmup_steps == 0:
        return peak
    return WarmupDecay(peak, total_steps, warmup_steps, decay, offset=done_steps)
