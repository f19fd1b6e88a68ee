"""``FakeStore``: the ledgers the response and outcome use cases touch, over one
:class:`FakeTables`, with no database. Hand it to those use cases where they take a
``Store`` (they only call its ledgers, so duck typing does);
``tests/integration/test_ledger_contract.py`` keeps it honest."""

from __future__ import annotations

from tests.fakes.call_book import FakeCallBook
from tests.fakes.detection import FakeDetectionReads
from tests.fakes.response_log import FakeResponseLog
from tests.fakes.sending_book import FakeSendingBook
from tests.fakes.tables import FakeTables


class FakeStore:
    """``store.responses``, ``store.calls``, ``store.sending`` (enrollments and
    suppressions) and ``store.detection`` (what assessing a customer reads)."""

    def __init__(self, tables: FakeTables | None = None) -> None:
        self.tables = tables or FakeTables()
        self.responses = FakeResponseLog(self.tables)
        self.calls = FakeCallBook(self.tables)
        self.sending = FakeSendingBook(self.tables)
        self.detection = FakeDetectionReads(self.tables)
