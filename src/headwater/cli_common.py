"""What every ``headwater`` subcommand shares: the consoles, one-line failures with an exit status, and the
``--output table|json`` option."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True, highlight=False)  # one unbroken line per error, for logs and grep


def fail(message: str, status: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``status`` (1 failed, 2 bad usage or config)."""
    errors.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(status)


def _output_format(value: str) -> str:
    if value not in ("table", "json"):
        fail(f"--output {value!r} is not table or json", 2)
    return value


Output = Annotated[str, typer.Option("--output", "-o", help="table or json", callback=_output_format)]
