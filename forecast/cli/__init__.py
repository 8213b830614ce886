"""The `forecast` command: a thin layer over the package's functions.

Every ForecastError becomes one clear message on stderr and exit code 2; `--debug` (anywhere
on the command line) shows the traceback as well.

Quiet by default: TensorFlow's, absl's and MLflow's logs are turned down before any command
imports them (``forecast.quiet``); our own warnings still show, one line each. `--verbose`
(anywhere on the command line) brings the libraries' logs back.
"""

from __future__ import annotations

import sys
import traceback

import typer
from rich.console import Console
from rich.markup import escape
from typer.exceptions import TyperException

from forecast import quiet
from forecast.cli import (
    data_commands,
    model_commands,
    pipeline_commands,
    serve_commands,
    tracking_commands,
)
from forecast.errors import ForecastError
from forecast.quiet import VERBOSE_FLAG

app = typer.Typer(
    name="forecast",
    help="Forecast CSV time series with Keras recurrent models, tracked in MLflow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    verbose: bool = typer.Option(False, "--verbose",
                                 help="Show the logs of TensorFlow, absl and MLflow too."),
) -> None:
    """Forecast CSV time series with Keras recurrent models, tracked in MLflow."""


data_commands.register(app)
model_commands.register(app)
serve_commands.register(app)
tracking_commands.register(app)
pipeline_commands.register(app)
from forecast.cli import registry_commands  # noqa: E402

registry_commands.register(app)
from forecast.cli import tune_commands  # noqa: E402

tune_commands.register(app)
from forecast.cli import export_commands  # noqa: E402

export_commands.register(app)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

#: the longest error message printed whole (``--debug`` prints every message whole).
MAX_MESSAGE = 500


def bounded(message: str, *, debug: bool = False, limit: int = MAX_MESSAGE) -> str:
    """``message`` cut to about ``limit`` characters, saying how much was left out.

    Example:
        >>> bounded("x" * 600, limit=10)
        'xxxxxxxxxx… (590 more characters; --debug shows the whole message)'
    """
    if debug or len(message) <= limit:
        return message
    return (f"{message[:limit]}… ({len(message) - limit:,} more characters; --debug shows the "
            "whole message)")


#: flags of the root command that may stand anywhere on the command line.
ROOT_FLAGS = ("--debug", VERBOSE_FLAG)


def _root_flags_first(argv: list[str]) -> list[str]:
    """``argv`` with the root flags (``--debug``, ``--verbose``) moved before the command, so
    that ``forecast train data.csv --verbose`` works as ``forecast --verbose train data.csv``.
    Nothing after a ``--`` separator is moved."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [arg for arg in ROOT_FLAGS if arg in argv[:end]]
    rest = [arg for arg in argv[:end] if arg not in ROOT_FLAGS]
    return [*flags, *rest, *argv[end:]]


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI; the console-script entry point.

    Args:
        argv: the arguments (defaults to ``sys.argv[1:]``).

    Raises:
        SystemExit: 0 on success, 2 on a ForecastError or a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    verbose = VERBOSE_FLAG in argv
    # first: TensorFlow and MLflow read their log settings when a command imports them
    quiet.configure(verbose=verbose)
    argv = _root_flags_first(argv)
    try:
        result = app(args=argv, prog_name="forecast", standalone_mode=False)
    except ForecastError as exc:
        if debug:
            traceback.print_exc()
        # the message is text, never markup: a key such as "[/red]" in a user's file is printed
        _stderr.print("[bold red]error:[/bold red] " + escape(bounded(str(exc), debug=debug)),
                      markup=True)
        raise SystemExit(2) from None
    except TyperException as exc:  # usage errors: an unknown flag, a bad value for a flag
        if hasattr(exc, "show"):
            exc.show()
        else:
            _stderr.print(f"error: {exc}", markup=False)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        _stderr.print("aborted.")
        raise SystemExit(130) from None
    raise SystemExit(result if isinstance(result, int) else 0)
