"""Portable SQL for time arithmetic: the same expression on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import Float


class epoch_days(GenericFunction[float]):  # SQL function names are lower case
    """Days since 1970-01-01 of a stored UTC timestamp, as a float, computed in the database.

    Lets a query do "days silent >= factor × gap" arithmetic without shipping every timestamp
    to Python to be parsed.
    """

    type = Float()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _epoch_days_sqlite(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5)"


@compiles(epoch_days, "postgresql")
def _epoch_days_postgresql(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"(extract(epoch from {compiler.process(element.clauses, **kw)}) / 86400.0)"
