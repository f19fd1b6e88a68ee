"""The only place that speaks SQL: ``Store`` for use cases, ``migrate`` for the schema."""

from reengage.store.activities import NewActivity, UpsertResult
from reengage.store.customers import Overview
from reengage.store.database import Store

__all__ = ["NewActivity", "Overview", "Store", "UpsertResult"]
