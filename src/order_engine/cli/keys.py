"""``order-engine keys create | list | revoke``: API keys, on DATABASE_URL.

``create`` prints the new key on stdout, once: only its sha256 is stored, so
it cannot be shown again. Like ``serve``, these commands migrate the database
first. A running ``serve``/``api`` notices a new or revoked key within
AUTH_CACHE_S.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from order_engine.settings import Settings

if TYPE_CHECKING:
    from order_engine.adapters.db import SqlApiKeyStore

T = TypeVar("T")

app = typer.Typer(
    help="Manage API keys: create (the key is shown once), list, revoke.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _with_store(work: Callable[[SqlApiKeyStore], Awaitable[T]]) -> T:
    from order_engine.adapters.db import (
        Database,
        SqlApiKeyStore,
        create_engine,
        run_migrations_async,
    )

    settings = Settings()

    async def run() -> T:
        await run_migrations_async(settings.database_url)
        engine = create_engine(settings.database_url)
        try:
            return await work(SqlApiKeyStore(Database(engine, group_commit=False)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
) -> None:
    """Create a key and print it (stdout, once). Store it now: it cannot be shown again."""
    from order_engine.adapters.clock import SystemClock
    from order_engine.app.access import create_key

    try:
        key, secret = _with_store(lambda store: create_key(store, name, SystemClock()))
    except ValueError as exc:
        typer.secho(f"keys create: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    typer.echo(secret)
    typer.secho(
        f"created API key {key.id} ({key.name!r}). It is shown only this once; send it as "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        err=True,
        fg=typer.colors.GREEN,
    )


@app.command("list")
def list_keys() -> None:
    """Every key: id, status, created, name (never the secret)."""
    from order_engine.app.access import KEY_PREFIX

    keys = _with_store(lambda store: store.list())
    if not keys:
        typer.echo("no API keys (`order-engine keys create --name <name>` makes one)")
        return
    typer.echo(f"{'ID':12} {'PREFIX':20} {'STATUS':8} {'CREATED':20} NAME")
    for key in keys:
        status = "revoked" if key.revoked else "active"
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        prefix = f"{KEY_PREFIX}{key.id}_..."
        typer.echo(f"{key.id:12} {prefix:20} {status:8} {created:20} {key.name}")


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`), or the key.")],
) -> None:
    """Revoke a key: requests with it get 401 within AUTH_CACHE_S. Its orders stay its own."""
    from order_engine.adapters.clock import SystemClock
    from order_engine.app.access import KEY_PREFIX

    wanted = key_id.strip()
    if wanted.startswith(KEY_PREFIX):
        wanted = wanted[len(KEY_PREFIX) :].split("_", 1)[0]
    revoked = _with_store(lambda store: store.revoke(wanted, SystemClock().now()))
    if not revoked:
        typer.secho(f"keys revoke: no active key with id {wanted!r}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(f"revoked API key {wanted}")
