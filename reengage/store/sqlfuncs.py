"""Portable SQL for time arithmetic: the same expression on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import BigInteger, Float


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


class epoch_us(GenericFunction[int]):  # SQL function names are lower case
    """Microseconds since 1970-01-01 of a stored UTC timestamp, as an exact integer.

    Unlike :class:`epoch_days` it loses nothing: differences of these integers are the
    very ``timedelta`` Python would compute from the parsed timestamps, so a read that
    needs thousands of timestamps for exact arithmetic can skip building ``datetime``s.
    """

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: Any, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]': whole seconds from the first 19 characters
    # (strftime would round a fraction to milliseconds), the fraction padded to 6 digits.
    at = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(strftime('%s', substr({at}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({at} || '000000', 21, 6) AS INTEGER))"
    )


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler: Any, **kw: Any) -> str:
    # extract() is an exact numeric since PostgreSQL 14.
    return (
        f"CAST(extract(epoch from {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"
    )
