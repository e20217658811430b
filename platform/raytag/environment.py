"""Environment variables every raytag process on a cluster needs before it imports a framework."""

from __future__ import annotations

# Keras 3 breaks under MultiWorkerMirroredStrategy, and tf-keras needs its switch set before
# TensorFlow loads; progress bars from Ray Data only clutter job logs.
RAYTAG_ENV: dict[str, str] = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
}


def worker_env(use_gpu: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The env vars of a Ray Train worker: the common ones, no GPU unless asked, then ``extra``."""
    env = dict(RAYTAG_ENV)
    if not use_gpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    env.update(extra or {})
    return env
