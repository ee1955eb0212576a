"""The hand-written migrations and schema.py describe one schema, on both dialects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from order_engine.adapters.db import (
    Database,
    SqlOrderQueries,
    SqlOrderRepository,
    create_engine,
    metadata,
)
from order_engine.adapters.db.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    migration_connection,
    run_migrations,
    run_migrations_async,
)
from order_engine.adapters.db.schema import TERMINAL_STATUSES, WAITING_STATUSES
from order_engine.adapters.db.schema import WAITING as OPEN_PREDICATE
from order_engine.domain.order import TERMINAL, WAITING, Order, OrderEvent
from order_engine.ports.order_queries import START

HEAD = "0005"
NewDatabase = Callable[[], Coroutine[Any, Any, str]]  # the ``new_database`` fixture (conftest.py)


async def _on(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _diff_against(target: sa.MetaData) -> Any:
    def diff(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, target))

    return diff


def _normalised(value: object) -> str:
    return " ".join(str(value).split())


def _shape(conn: sa.Connection) -> dict[str, Any]:
    """All that reflection sees, including what autogenerate skips (CHECKs, index predicates)."""
    inspector = sa.inspect(conn)
    shape = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        shape[table] = {
            "columns": [
                (c["name"], c["type"].compile(dialect=conn.dialect), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": inspector.get_foreign_keys(table),
            "unique_constraints": inspector.get_unique_constraints(table),
            "checks": sorted(
                (c["name"], _normalised(c["sqltext"]))
                for c in inspector.get_check_constraints(table)
            ),
            "indexes": sorted(
                (
                    i["name"] or "",
                    tuple(i["column_names"]),
                    bool(i["unique"]),
                    tuple(sorted((k, _normalised(v)) for k, v in i["dialect_options"].items())),
                )
                for i in inspector.get_indexes(table)
            ),
        }
    return shape


def _revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def test_migrating_yields_exactly_the_schema_in_schema_py(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await run_migrations_async(url)
    assert await _on(url, _diff_against(metadata)) == []


async def test_the_comparison_notices_a_schema_py_that_drifted(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await run_migrations_async(url)
    drifted = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["orders"].append_column(sa.Column("priority", sa.Integer()))
    drifted.tables["orders"].c.amount_in.type = sa.BigInteger()

    diffs = await _on(url, _diff_against(drifted))

    assert ("add_column", None, "orders", drifted.tables["orders"].c.priority) in diffs
    assert any(
        d[0][0] == "modify_type" and d[0][3] == "amount_in" for d in diffs if isinstance(d, list)
    )


async def test_a_migrated_database_reflects_exactly_like_one_built_from_schema_py(
    new_database: NewDatabase,
) -> None:
    migrated, built = await new_database(), await new_database()
    await run_migrations_async(migrated)

    engine = create_engine(built)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()

    shape = await _on(migrated, _shape)
    assert shape == await _on(built, _shape)
    # The comparison covers what autogenerate cannot: the partial index and the CHECK.
    (reconciler_index,) = [i for i in shape["orders"]["indexes"] if "active" in i[0]]
    assert "confirmed" in str(reconciler_index[3])
    assert [name for name, _ in shape["orders"]["checks"]] == ["ck_orders_tx_all_or_none"]


async def test_concurrent_migrators_serialise_and_the_rest_find_nothing_to_do(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await asyncio.gather(*(run_migrations_async(url) for _ in range(3)))
    await run_migrations_async(url)
    assert await _on(url, _revision) == HEAD
    assert await _on(url, _diff_against(metadata)) == []


async def test_downgrading_to_base_drops_everything_and_upgrading_restores_it(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await run_migrations_async(url)
    engine = create_engine(url)

    def downgrade(conn: sa.Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    async with migration_connection(engine) as conn:
        await conn.run_sync(downgrade)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    await engine.dispose()
    assert set(tables) <= {"alembic_version"}

    await run_migrations_async(url)
    assert await _on(url, _diff_against(metadata)) == []


def test_the_blocking_entry_point_migrates_from_outside_an_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"
    run_migrations(url)
    assert asyncio.run(_on(url, _revision)) == HEAD


async def test_the_blocking_entry_point_refuses_to_run_inside_an_event_loop(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeError, match="run_migrations_async"):
        run_migrations(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}")


async def test_an_in_memory_database_is_migrated_through_its_engine_not_its_url() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        await run_migrations_async("sqlite+aiosqlite://")
    engine = create_engine("sqlite+aiosqlite://")
    await run_migrations_async(engine)
    repo = SqlOrderRepository(Database(engine))
    pairs = [_accepted() for _ in range(20)]
    # Reads and writes interleave on the one shared connection.
    await asyncio.gather(
        *(repo.create(o, e) for o, e in pairs), *(repo.get(o.id) for o, _ in pairs)
    )
    assert [await repo.get(o.id) for o, _ in pairs] == [o for o, _ in pairs]
    fk = await engine.connect()
    assert (await fk.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    await fk.close()
    await engine.dispose()


def test_the_revision_history_is_a_single_line() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD]
    assert [r.revision for r in scripts.walk_revisions()] == [
        "0005",
        "0004",
        "0003",
        "0002",
        "0001",
    ]


def test_the_schemas_terminal_statuses_are_the_domains() -> None:
    assert set(TERMINAL_STATUSES) == {s.value for s in TERMINAL}


def test_the_schemas_waiting_statuses_are_the_domains() -> None:
    assert set(WAITING_STATUSES) == {s.value for s in WAITING}


def test_the_latest_migration_spells_the_schemas_running_predicate() -> None:
    # PostgreSQL matches the reconciler's query to the partial index only when
    # both spell the predicate alike; 0003 writes it out by hand.
    latest = ScriptDirectory.from_config(alembic_config()).get_revision("0003").module
    statuses = set(TERMINAL_STATUSES + WAITING_STATUSES)
    assert all(f"'{status}'" in latest.RUNNING.text for status in statuses)
    assert latest.RUNNING.text.count("'") == 2 * len(statuses)


def test_the_open_orders_indexes_spell_the_schemas_waiting_predicate() -> None:
    for revision in ("0004", "0005"):
        module = ScriptDirectory.from_config(alembic_config()).get_revision(revision).module
        assert module.WAITING.text == OPEN_PREDICATE.text


def _accepted() -> tuple[Order, OrderEvent]:
    return Order.accept(
        order_id=uuid4(),
        input_mint="So11111111111111111111111111111111111111112",
        output_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        amount_in=1,
        slippage_bps=50,
        at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def test_the_alembic_cli_config_upgrades_and_then_finds_no_drift(
    new_database: NewDatabase,
) -> None:
    # The path a developer takes (alembic -c .../alembic.ini ...): env.py opens
    # its own connection and takes the migration lock itself.
    url = asyncio.run(new_database())
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    command.check(config)  # raises AutogenerateDiffsDetected on any drift
    assert asyncio.run(_on(url, _revision)) == HEAD


async def test_events_written_before_0002_are_numbered_in_time_order_ahead_of_new_ones(
    new_database: NewDatabase,
) -> None:
    url = await new_database()
    await run_migrations_async(url, "0001")
    engine = create_engine(url)
    old = [_accepted() for _ in range(3)]
    old[1][0].owner = "alice"
    async with engine.begin() as conn:
        for n, (order, _) in enumerate(reversed(old)):  # inserted newest first
            at = datetime(2025, 1, 1, 0, 0, 3 - n, tzinfo=UTC)
            await conn.execute(
                sa.text(
                    "INSERT INTO orders (id, kind, owner, input_mint, output_mint, amount_in,"
                    " slippage_bps, status, seq, attempts, created_at, updated_at) VALUES"
                    " (:id, 'market', :owner, 'a', 'b', '1', 50, 'pending', 1, 0, :at, :at)"
                ),
                {"id": _id(conn, order.id), "owner": order.owner, "at": _at(conn, at)},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO order_events (order_id, seq, status, at, details)"
                    " VALUES (:id, 1, 'pending', :at, '{}')"
                ),
                {"id": _id(conn, order.id), "at": _at(conn, at)},
            )
    await engine.dispose()
    await run_migrations_async(url)

    engine = create_engine(url)
    repo = SqlOrderRepository(Database(engine))
    fresh, first = _accepted()
    fresh.owner = "alice"
    await repo.create(fresh, first)
    queries = SqlOrderQueries(repo.db)
    # On PostgreSQL the log shows a transaction's events once every older transaction
    # on the server has ended (decision 0004): another client's open transaction on a
    # shared server delays the fresh event, never reorders it. Wait for it.
    for _ in range(200):
        log = await queries.account_events(None, START, 10)
        if len(log) == 4:
            break
        await asyncio.sleep(0.05)
    alice = await queries.account_events("alice", START, 10)
    await engine.dispose()
    assert [e.event.order_id for e in log] == [o.id for o, _ in old] + [fresh.id]
    assert [e.cursor.txid for e in log[:3]] == [0, 0, 0]
    assert [e.cursor.position for e in log[:3]] == [1, 2, 3]
    assert [e.event.order_id for e in alice] == [old[1][0].id, fresh.id]


def _id(conn: Any, order_id: Any) -> Any:
    # Bound as raw SQL: SQLite stores UUIDs as 32 hex characters, PostgreSQL natively.
    return order_id.hex if conn.dialect.name == "sqlite" else order_id


def _at(conn: Any, at: datetime) -> Any:
    return at.replace(tzinfo=None).isoformat(sep=" ") if conn.dialect.name == "sqlite" else at
