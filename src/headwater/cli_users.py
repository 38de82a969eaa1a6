"""``headwater create-admin`` and ``create-user``: users of the FAB auth manager, passwords from the
environment or standard input (never from an argument, which the process list would show)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)
ROLES = ("Admin", "Op", "User", "Viewer", "Public")


def create_admin() -> None:
    """Create the first admin from HEADWATER_ADMIN_USERNAME, HEADWATER_ADMIN_PASSWORD and (optional)
    HEADWATER_ADMIN_EMAIL; an existing user of that name is left as it is."""
    username = _required("HEADWATER_ADMIN_USERNAME")
    password = _required("HEADWATER_ADMIN_PASSWORD")
    email = os.environ.get("HEADWATER_ADMIN_EMAIL") or f"{username}@localhost"
    _create(username, password, "Admin", email)


def create_user(
    username: Annotated[str, typer.Argument(help="the login name")],
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")] = "Viewer",
    email: Annotated[str | None, typer.Option(help="default: USERNAME@localhost")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Create a user of the FAB auth manager with a role; the password comes from HEADWATER_USER_PASSWORD
    or, with --password-stdin, from standard input."""
    if role not in ROLES:
        _fail(f"--role {role!r} is not one of {', '.join(ROLES)}", 2)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else _required("HEADWATER_USER_PASSWORD")
    if not password:
        _fail("the password is empty", 2)
    _create(username, password, role, email or f"{username}@localhost")


def _required(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        _fail(f"{name} is not set", 2)
    if not value.strip():
        _fail(f"{name} is set but empty", 2)
    return value


def _fail(message: str, status: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(status)


def _create(username: str, password: str, role: str, email: str) -> None:
    from airflow.configuration import conf

    if "fab" not in conf.get("core", "auth_manager"):
        _fail("[core] auth_manager is not the FAB auth manager: its users live elsewhere", 2)
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        if security.find_user(username=username):
            console.print(f"user {username!r} exists already; left as it is")
            return
        found = security.find_role(role)
        if found is None:
            _fail(f"role {role!r} does not exist in this Airflow (run `airflow db migrate` first)")
        if not security.add_user(username, username, role.lower(), email, found, password):
            _fail(f"Airflow refused to create user {username!r} (is {email!r} taken?)")
    console.print(f"user {username!r} created with role {role}")
