"""In-memory fakes of the store's ledgers, for fast unit tests of the use cases' rules.

``FakeStore`` holds them over one ``FakeTables``; the contract test
(``tests/integration/test_ledger_contract.py``) runs the same scenarios on these fakes and
on the real ledgers (SQLite and PostgreSQL), so a fake cannot drift from its SQL.
"""

from tests.fakes.store import FakeStore
from tests.fakes.tables import FakeTables

__all__ = ["FakeStore", "FakeTables"]
