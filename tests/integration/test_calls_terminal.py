"""``reengage calls log`` in a terminal, as a rep types it: the installed script on a
pseudo-terminal, answering its questions. It asks for whatever is missing — the day to call
again included, judged on the rep's own date — and asks again after a mistyped answer
instead of ending the session.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reengage.store import Store
from tests.conftest import child_env
from tests.integration import digest_world as w
from tests.integration.test_cli import REENGAGE

pytestmark = pytest.mark.clock
NOW = datetime(2026, 11, 22, 23, 40, tzinfo=UTC)  # already Monday 23 November in Berlin


class Terminal:
    """A command on a pseudo-terminal: wait for what it says, type an answer."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [REENGAGE, *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
        )
        os.close(slave)
        self.fd = master
        self.seen = ""

    def _read(self, deadline: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:  # the command ended and closed the terminal
            return False
        self.seen += chunk.decode(errors="replace").replace("\r\n", "\n")
        return bool(chunk)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until the terminal shows ``text`` (after what was already expected)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if not self._read(deadline):
                raise AssertionError(f"never showed {text!r}; the terminal shows:\n{self.seen}")
        self.seen = self.seen[self.seen.index(text) + len(text) :]

    def type(self, answer: str) -> None:
        os.write(self.fd, answer.encode() + b"\n")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        code = self.proc.wait(timeout=timeout)
        os.close(self.fd)
        return code, self.seen


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    store = Store.open(database_url, upgrade=True)
    try:
        w.fill(store, NOW)
    finally:
        store.close()
    return child_env(
        REENGAGE_NOW=NOW.isoformat(),
        REENGAGE_DATABASE_URL=database_url,
        REENGAGE_CAMPAIGNS_DIR=str(w.ROOT / "campaigns"),
        REENGAGE_TEMPLATES_DIR=str(w.ROOT / "templates"),
        REENGAGE_SECRET_KEY=w.SECRET,
        COLUMNS="200",
    )


def test_calls_log_asks_for_the_day_to_call_again_and_again_after_a_typo(
    tmp_path: Path, env: dict[str, str], database_url: str
) -> None:
    term = Terminal(["calls", "log", "bakery"], env, tmp_path)
    term.expect("Whom did you reach?")
    term.type("someone_else")
    term.expect("Why did they stop?")
    term.type("bogus")
    term.expect("'bogus' is not one of")
    term.expect("Why did they stop?")  # asked again, nothing typed so far is lost
    term.type("price")
    term.expect("Specific to them or systemic?")
    term.type("")  # skipped: left unanswered, not "unsure"
    term.expect("Worth winning back?")
    term.type("yes")
    term.expect("What next?")
    term.type("call_again")
    term.expect("Which day to call again?")
    term.type("2026-11-23")  # Dana's today in Berlin, though still the 22nd in UTC
    term.expect("must be after today")
    term.expect("Which day to call again?")
    term.type("next week")
    term.expect("is not a day like")
    term.type("2026-11-28")  # a Saturday
    code, said = term.finish()
    assert code == 0, said
    assert "The call is recorded." in said
    assert "They are on your list again on Monday, November 30, 2026." in said
    assert "(Saturday, November 28, 2026 is not a working day.)" in said
    store = Store.open(database_url)
    try:
        [outcome] = store.calls.outcomes_since(None)
    finally:
        store.close()
    assert (outcome.reached, outcome.reason, outcome.scope) == ("someone_else", "price", None)
    assert str(outcome.call_again_on) == "2026-11-28"
