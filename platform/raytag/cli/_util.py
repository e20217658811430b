"""What every ``raytag`` command shares: the Typer app, options, failure reporting, Ray sessions.

Failures end as one ``error:`` line and an exit code. Exit code 2 means the input is
wrong (a config, a corpus, a path; typer uses 2 for usage errors too) and 1 that raytag
itself failed. The traceback is printed only with ``--verbose``, on the commands that
have it.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from raytag.errors import RaytagError

if TYPE_CHECKING:
    from raytag.config import JobConfig

EXIT_USER, EXIT_INTERNAL = 2, 1
console = Console()
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
    from raytag.cluster_access import explain

    has_verbose, verbose = _VERBOSITY.get()
    # A cluster that does not answer or refuses this client's token is the user's to fix:
    # say what to do rather than pass on Ray's error.
    original = root_cause(exc)
    cause = explain(original)
    user = is_user_error(cause)
    if verbose:
        err_console.print("".join(traceback.format_exception(original)), highlight=False, markup=False, end="",
                          soft_wrap=True)
    message = " ".join(str(cause).split()) or type(cause).__name__
    if not user:
        message = f"internal error: {type(cause).__name__}: {message}"
        if has_verbose and not verbose:
            message += " (rerun with --verbose for the traceback)"
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_USER if user else EXIT_INTERNAL)


app = typer.Typer(
    name="raytag",
    cls=CommandGroup,
    help="Prepare corpora, train, tune and serve sequence taggers on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Dotted override, e.g. --set split.seed=7 (repeatable)."),
]
AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a new local Ray)."),
]
RegistryOption = Annotated[str, typer.Option(help="Registry root.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show Ray progress logs.")]


def quiet_ray(verbose: bool) -> None:
    # Ray Data logs every execution at INFO; a CLI run wants the result, not the plan.
    if verbose:
        return
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)


def job_session(job: JobConfig, address: str | None, log_to_driver: bool = True) -> AbstractContextManager[None]:
    """The Ray a job runs on: --address, else the job's ray.address, else a new local Ray."""
    from raytag.session import ray_session

    return ray_session(
        address or job.ray.address, num_cpus=job.ray.num_cpus, object_store_memory=job.ray.object_store_memory,
        log_to_driver=log_to_driver,
    )


def announce_prepare(job: JobConfig) -> Callable[[Path], None]:
    """What the CLI prints before a command prepares a missing corpus first."""
    return lambda directory: console.print(f"preparing {job.name} → {directory}")
