"""The ``raytag`` command line: thin verbs over the library's stages.

``_util`` holds the app, shared options, failure reporting and the Ray session
helper; each module below registers one group of verbs on that app.
"""

from __future__ import annotations

import sys

from raytag.cli import corpus, train, predict, models, export, cluster, ray_cluster  # noqa: F401,I001  (each registers its verbs on ``app``, in help order)
from raytag.cli._util import app, console

__all__ = ["app", "main"]


@app.command()
def version() -> None:
    """Print the raytag version."""
    import raytag

    console.print(raytag.__version__)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
