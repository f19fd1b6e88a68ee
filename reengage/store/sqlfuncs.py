"""Portable SQL helpers: ``least``/``greatest`` that ignore NULL on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class _Least(GenericFunction[Any]):
    name = "least"
    inherit_cache = True


class _Greatest(GenericFunction[Any]):
    name = "greatest"
    inherit_cache = True


@compiles(_Least, "sqlite")
def _least_sqlite(element: _Least, compiler: Any, **kw: Any) -> str:
    return f"min({compiler.process(element.clauses, **kw)})"


@compiles(_Greatest, "sqlite")
def _greatest_sqlite(element: _Greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def least_of(a: Any, b: Any) -> sa.ColumnElement[Any]:
    """The smaller of two values, NULL only when both are.

    PostgreSQL's LEAST skips NULLs but SQLite's scalar min() returns NULL if any argument
    is NULL, so each side falls back to the other first.
    """
    return _Least(sa.func.coalesce(a, b), sa.func.coalesce(b, a))


def greatest_of(a: Any, b: Any) -> sa.ColumnElement[Any]:
    """The larger of two values, NULL only when both are (see :func:`least_of`)."""
    return _Greatest(sa.func.coalesce(a, b), sa.func.coalesce(b, a))
