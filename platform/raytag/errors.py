"""Exceptions raised on bad user input, each naming where the problem is."""

from __future__ import annotations


class RaytagError(Exception):
    """Base class of every error raytag raises on bad input or state."""


class ConfigError(RaytagError):
    """A config file or override is invalid; the message names the dotted path."""


class CorpusError(RaytagError):
    """A corpus file is malformed.

    ``file`` and ``line`` locate the problem (``line`` is 1-based; ``None`` when the
    problem concerns the whole file, such as a missing file or an empty corpus).
    """

    def __init__(self, file: str, line: int | None, reason: str, byte_offset: int | None = None):
        self.file = file
        self.line = line
        self.reason = reason
        self.byte_offset = byte_offset
        where = file if line is None else f"{file}:{line}"
        if byte_offset is not None:
            where += f" (byte offset {byte_offset})"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple:
        # Raised in a Ray worker, the error is pickled back to the driver: rebuild it from
        # its fields (the default would call __init__ with the message alone and fail).
        return type(self), (self.file, self.line, self.reason, self.byte_offset)
