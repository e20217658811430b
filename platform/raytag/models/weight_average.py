"""An exponential moving average of the Keras tagger's weights, kept by its optimizer.

Evaluating and saving the average of the last few hundred steps' weights instead of the
last step's smooths the step-to-step noise of small-batch training. tf-keras's own
``use_ema`` keeps the average on the optimizer, one slot per trainable variable, updated
inside every replica's ``apply_gradients`` (so it works under a distribution strategy
and inside the CRF model's own train step), but with a fixed decay from the weights the
model was built with; :class:`AveragingAdam` warms the decay up instead,
``min(decay, (1 + t) / (10 + t))`` at step ``t`` as in TensorFlow's
``ExponentialMovingAverage(num_updates=...)``, so the first epochs' averages are not
mostly initial weights, and a resumed run (whose optimizer counts from 0 again) soon
forgets the freshly built weights its average started from. Keras's ``fit`` would also
copy the average into the model when it returns; here training goes on from its own
weights, and :func:`averaged_weights` lends the model the average for evaluation and saving.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["AveragingAdam", "averaged_weights", "make_optimizer"]


@keras.saving.register_keras_serializable(package="raytag")
class AveragingAdam(keras.optimizers.Adam):
    """Adam that also keeps a moving average of the weights it trains (decay warmed up)."""

    def __init__(self, learning_rate: Any = 0.001, average_decay: float = 0.999, **kwargs: Any):
        kwargs.update(use_ema=True, ema_momentum=average_decay)
        super().__init__(learning_rate=learning_rate, **kwargs)

    def _update_model_variables_moving_average(self, var_list: Any) -> None:
        # Called before the step counter moves: the first update sees t = 0.
        step = tf.cast(self.iterations, tf.float32)
        decay = tf.minimum(tf.constant(self.ema_momentum, tf.float32), (1.0 + step) / (10.0 + step))

        def update(average: Any, var: Any) -> Any:
            return average.assign(decay * average + (1.0 - decay) * var)

        for var in var_list:
            average = self._model_variables_moving_average[self._index_dict[self._var_key(var)]]
            self._distribution_strategy.extended.update(average, update, args=(var,), group=False)

    def finalize_variable_values(self, var_list: Any) -> None:
        """Nothing: Keras's ``fit`` calls this when it returns, and would otherwise go on
        training (the next epoch's ``fit``) from the average; :func:`averaged_weights` swaps."""

    def load_average(self, var_list: Any) -> None:
        """Overwrite the model's variables with their averages (on every replica)."""
        self._overwrite_model_variables_with_average_value(var_list)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["average_decay"] = config.pop("ema_momentum")
        config.pop("use_ema", None)
        return config


def make_optimizer(learning_rate: Any, average_decay: float = 0.0) -> keras.optimizers.Optimizer:
    """Adam, averaging the weights with ``average_decay`` when it is above 0."""
    if average_decay > 0:
        return AveragingAdam(learning_rate=learning_rate, average_decay=average_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


@contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Inside the block the model holds its optimizer's weight average (if it keeps one);
    afterwards the trained weights again, so training goes on from where it was."""
    optimizer = getattr(model, "optimizer", None)
    if not isinstance(optimizer, AveragingAdam):
        yield
        return
    trained = model.get_weights()
    optimizer.load_average(model.trainable_variables)
    try:
        yield
    finally:
        model.set_weights(trained)
