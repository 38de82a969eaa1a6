"""What every ``headwater`` subcommand shares: consoles that never wrap or colour output nobody reads on a
screen, one-line failures with documented exit statuses, ``--output table|json``, and a standard output
that carries one JSON document and nothing else.

Exit statuses: 0 success; 1 a run, export or check failed; 2 bad usage, config or Connection; 130 / 143
stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import IO, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn

from headwater.errors import ConfigError, ConnectionConfigError

FAILED, BAD_USAGE = 1, 2
_UNWRAPPED = 1_000_000  # a line as long as it is: a log file or a pipe has no width


def _console(stream: IO[str], stderr: bool) -> Console:
    """A console for ``stream``: a terminal's width and colours, or when it is not a terminal no colour
    and no wrapping (unless COLUMNS says a width); NO_COLOR is honoured by rich."""
    terminal = stream.isatty()
    width = None if terminal or os.environ.get("COLUMNS") else _UNWRAPPED
    return Console(stderr=stderr, soft_wrap=True, highlight=False, width=width)


console = _console(sys.stdout, stderr=False)
errors = _console(sys.stderr, stderr=True)


def status_for(exc: BaseException) -> int:
    """2 for bad config or a malformed Connection (fix the input, do not retry), 1 for anything else."""
    return BAD_USAGE if isinstance(exc, ConfigError | ConnectionConfigError) else FAILED


def fail(message: str, status: int = FAILED) -> NoReturn:
    """Print ``error: message`` on stderr as one line and exit with ``status``."""
    errors.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(status)


def fail_on(exc: BaseException, verbose: bool = False) -> NoReturn:
    """Fail with the exception's message (its traceback too with ``--verbose``) and its exit status."""
    if verbose:
        errors.print(escape("".join(traceback.format_exception(exc)).rstrip()))
    fail(" ".join(str(exc).split()) or type(exc).__name__, status_for(exc))


def _output_format(value: str) -> str:
    if value not in ("table", "json"):
        fail(f"--output {value!r} is not table or json", BAD_USAGE)
    return value


Output = Annotated[
    str,
    typer.Option("--output", "-o", help="table (for people) or json (one document on stdout)", callback=_output_format),
]
Json = Annotated[bool, typer.Option("--json", help="the same as --output json")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="tracebacks and Airflow's task logs")]


def wants_json(output: str, as_json: bool) -> bool:
    return as_json or output == "json"


@contextlib.contextmanager
def stdout_to_stderr(active: bool = True) -> Iterator[None]:
    """While the block runs, anything written to standard output (by Python, a library or a child process)
    goes to standard error, so that the JSON document printed after it is all that standard output holds."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    previous, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout = previous


def print_json(document: Any) -> None:
    """The command's one JSON document, on standard output."""
    sys.stdout.write(json.dumps(document, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def progress_display(target: Console, *columns: str | ProgressColumn) -> Progress:
    """A progress bar on a terminal; nothing when the output is a file or a pipe (commands print
    occasional progress lines there instead)."""
    return Progress(*columns, console=target, disable=not target.is_terminal, transient=False)
