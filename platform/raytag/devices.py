"""Where a model runs: ``"auto" | "cpu" | "cuda" | "cuda:N"`` resolved against the visible GPUs.

Plain Python: each framework passes in how many GPUs it sees, so the choice is one
function that tests can drive without a GPU. Inside a Ray actor started with
``num_gpus > 0``, Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned, so
``auto`` there picks the actor's own GPU (``cuda:0`` of what it sees).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from raytag.errors import RaytagError

DEVICE_HELP = "auto (a visible GPU if any, else cpu), cpu, cuda or cuda:N"
_PATTERN = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


class DeviceError(RaytagError, ValueError):
    """A device that is malformed or not visible in this process."""


def check_device(device: str) -> str:
    """``device`` normalised (lower case, ``cuda`` → ``cuda:0``), or a DeviceError naming the forms."""
    value = device.strip().lower()
    match = _PATTERN.match(value)
    if match is None:
        raise DeviceError(f"device {device!r} is not one of: {DEVICE_HELP}")
    return "cuda:0" if value == "cuda" else value


def resolve_device(device: str, visible_gpus: int | Callable[[], int]) -> str:
    """The concrete device (``cpu`` or ``cuda:N``) for a request, given how many GPUs are visible.

    ``visible_gpus`` may be a callable so that ``cpu`` never touches a GPU runtime.
    """
    wanted = check_device(device)
    if wanted == "cpu":
        return "cpu"
    count = visible_gpus() if callable(visible_gpus) else visible_gpus
    if wanted == "auto":
        return "cuda:0" if count > 0 else "cpu"
    index = int(wanted.split(":")[1])
    if index >= count:
        seen = "no GPU is visible" if count == 0 else f"only {count} GPU(s) are visible (cuda:0..cuda:{count - 1})"
        raise DeviceError(f"device {device!r} requested but {seen}")
    return wanted


def torch_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def tensorflow_gpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def tensorflow_device(device: str) -> str:
    """A resolved device in TensorFlow's spelling (``/CPU:0``, ``/GPU:N``)."""
    return "/CPU:0" if device == "cpu" else f"/GPU:{device.split(':')[1]}"
