"""How the database plans what the store sends: the statements a piece of code sends, and
the tables each one's plan reads from end to end (``EXPLAIN QUERY PLAN`` on SQLite; on
PostgreSQL the plan of the prepared statement under a chosen ``plan_cache_mode``). Shared by
the plan tests of the detection pass and of a rep's list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from reengage.store import Store


@contextmanager
def recording(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT the store sends meanwhile, with its parameters as the driver got them."""
    sent: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", keep)


def sqlite_scans(store: Store, statement: str, parameters: Any, watched: set[str]) -> list[str]:
    """The steps of SQLite's plan that scan one of the ``watched`` tables end to end (the
    plan must search some index)."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = [row[3] for row in rows]
    assert any(d.startswith("SEARCH") for d in details), details
    return [d for d in details if d.startswith("SCAN") and d.split()[1] in watched]


def postgres_scans(
    store: Store, statement: str, parameters: dict[str, Any], mode: str, watched: set[str]
) -> list[str]:
    """Sequential scans of the ``watched`` tables in the plan PostgreSQL makes for the
    prepared statement under ``plan_cache_mode = mode`` (the plan must use some index)."""
    order: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", placeholder, statement).replace("%%", "%")
    values = ", ".join(literal(parameters[name]) for name in order)
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute(f"SET plan_cache_mode = {mode}")
            cursor.execute(f"PREPARE explained AS {prepared}")
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE explained({values})")
            plan = cursor.fetchone()[0]
            cursor.execute("DEALLOCATE explained")
            cursor.execute("RESET plan_cache_mode")
        raw.rollback()
    finally:
        raw.close()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes = list(walk(plan[0]["Plan"]))
    shape = [(n["Node Type"], n.get("Relation Name") or n.get("Index Name")) for n in nodes]
    assert any("Index" in n["Node Type"] for n in nodes), (mode, shape, statement)
    return [
        f"{n['Node Type']} on {n['Relation Name']}"
        for n in nodes
        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in watched
    ]


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan node and every node below it."""
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def literal(value: Any) -> str:
    """A bound value as SQL text for ``EXECUTE (...)`` (the types the store's reads bind)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):  # an array of ids
        return "'{" + ",".join(str(int(v)) for v in value) + "}'"
    return "'" + str(value).replace("'", "''") + "'"
