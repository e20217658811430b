"""How the ``raytag`` command line reports failures: one ``error:`` line and an exit code.

Exit code 2 means the input is wrong (a config, a corpus, a path; typer uses 2 for usage
errors too) and 1 that raytag itself failed. The traceback is printed only with
``--verbose``, on the commands that have it.
"""

from __future__ import annotations

import traceback
from contextvars import ContextVar
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from raytag.errors import RaytagError

EXIT_USER, EXIT_INTERNAL = 2, 1
err_console = Console(stderr=True)
# (the command has --verbose, it was given) for the command line being run.
_VERBOSITY: ContextVar[tuple[bool, bool]] = ContextVar("raytag_verbosity", default=(False, False))


def is_user_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, (RaytagError, ValidationError, FileExistsError, FileNotFoundError,
                            IsADirectoryError, NotADirectoryError, PermissionError))


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of Ray's task-error wrappers (they keep it in ``cause``)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        module = type(exc).__module__
        from_ray = module == "ray" or module.startswith("ray.")
        inner = getattr(exc, "cause", None) or (exc.__cause__ if from_ray else None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


class CommandGroup(TyperGroup):
    """The root command group: every error a command lets escape ends as one ``error:`` line."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        # The verbose flag belongs to the subcommand, whose context is gone by the time
        # its exception reaches invoke(); remember it from the raw arguments.
        command: Any = self
        for word in args:
            if not isinstance(command, TyperGroup) or word.startswith("-"):
                break
            command = command.get_command(ctx, word)
        has_verbose = command is not None and any(p.name == "verbose" for p in command.params)
        _VERBOSITY.set((has_verbose, has_verbose and ("--verbose" in args or "-v" in args)))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, aborts and usage errors (exit 2), which typer reports itself
        except Exception as exc:  # noqa: BLE001 - the one place that reports every failure
            fail(exc)


def fail(exc: BaseException) -> NoReturn:
    """Report ``exc`` on one line and exit: 2 for bad input, 1 for a failure of raytag itself.

    The traceback is printed only with ``--verbose`` (on the commands that have it).
    """
    has_verbose, verbose = _VERBOSITY.get()
    cause = root_cause(exc)
    user = is_user_error(cause)
    if verbose:
        err_console.print("".join(traceback.format_exception(cause)), highlight=False, markup=False, end="",
                          soft_wrap=True)
    message = " ".join(str(cause).split()) or type(cause).__name__
    if not user:
        message = f"internal error: {type(cause).__name__}: {message}"
        if has_verbose and not verbose:
            message += " (rerun with --verbose for the traceback)"
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_USER if user else EXIT_INTERNAL)
