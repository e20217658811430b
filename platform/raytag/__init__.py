"""raytag: prepare corpora, train, tune and serve sequence taggers on Ray.

Importing raytag never starts Ray; stages that need a cluster connect
explicitly through :mod:`raytag.session`.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("raytag")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
