"""Send results the database could not take yet, kept on local disk until it can.

The mail server said 250: the customer has the mail. If recording that fails (the database
went away), forgetting it would leave the message ``sending``, then ``unknown``, and a
person would have to settle mail that was plainly delivered. So each group that cannot be
written is appended to a JSON-lines file in the spool folder (flushed and fsynced before
the worker goes on), and written to the database as soon as it answers again — by this
worker or, if it died meanwhile, by any worker sharing the folder. The same holds for what
else the server said in the meantime (try later, no such user, a lost reply): a mail that
was never delivered is tried again rather than left for a person, and so is one whose
``sending`` mark got no answer (it never went out). Writing an entry twice
changes nothing (see ``store.late``).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from reengage.errors import StoreError
from reengage.logs import get_logger
from reengage.store import Store
from reengage.store.sending import Sent

log = get_logger(__name__)


def to_line(sent: Sent) -> dict[str, Any]:
    """What a late write of one accepted send needs, as JSON-ready data."""
    return {
        "outcome": "sent",
        "message_id": sent.message_id,
        "enrollment_id": sent.claimed.enrollment_id,
        "response": sent.response,
        "smtp_id": sent.smtp_id,
        "now": sent.now.isoformat(),
        "next_step": (
            [sent.next_step[0], sent.next_step[1], sent.next_step[2].isoformat()]
            if sent.next_step
            else None
        ),
    }


def outcome_line(
    outcome: str,
    message_id: int,
    enrollment_id: int,
    response: str,
    now: datetime,
    *,
    retry_at: datetime | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """A send that was not accepted (``retry``, ``bounced``, ``failed``, ``unknown``), as
    JSON-ready data for a late write."""
    return {
        "outcome": outcome,
        "message_id": message_id,
        "enrollment_id": enrollment_id,
        "response": response,
        "now": now.isoformat(),
        "retry_at": retry_at.isoformat() if retry_at else None,
        "email": email,
    }


def unsent_line(
    message_id: int, enrollment_id: int, marked_until: datetime, now: datetime
) -> dict[str, Any]:
    """A mail that never went out because the database did not answer when its row was to
    be marked ``sending``: the mark may have been committed all the same (the line dropped
    before the reply), so the row is put back if it holds that mark (``marked_until``, the
    lease the mark writes) or was settled ``unknown`` from it meanwhile."""
    return {
        "outcome": "unsent",
        "message_id": message_id,
        "enrollment_id": enrollment_id,
        "response": "not sent: the database did not answer when it was to go out",
        "now": now.isoformat(),
        "marked_until": marked_until.isoformat(),
    }


def from_line(line: dict[str, Any]) -> dict[str, Any]:
    """A line read back, with its moments as datetimes."""
    step = line.get("next_step")
    retry_at = line.get("retry_at")
    marked_until = line.get("marked_until")
    return {
        **line,
        "marked_until": datetime.fromisoformat(marked_until) if marked_until else None,
        "now": datetime.fromisoformat(line["now"]),
        "next_step": (step[0], step[1], datetime.fromisoformat(step[2])) if step else None,
        "retry_at": datetime.fromisoformat(retry_at) if retry_at else None,
    }


class Spool:
    """One worker's file of send results waiting for the database, in a shared folder."""

    def __init__(self, folder: Path, worker_id: str) -> None:
        self.folder = folder
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in worker_id)
        self.path = folder / f"sent-{safe}.jsonl"

    def keep(self, sent: list[Sent]) -> None:
        """Append accepted sends durably; raises StoreError if even the disk refuses."""
        self.keep_lines([to_line(one) for one in sent])

    def keep_lines(self, lines: list[dict[str, Any]]) -> None:
        """Append results (:func:`to_line`, :func:`outcome_line`) durably; raises StoreError
        if even the disk refuses."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while True:
                with self.path.open("a", encoding="utf-8") as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
                    if not _still_named(handle, self.path):
                        continue  # a worker took this file to write it: start a new one
                    for one in lines:
                        handle.write(json.dumps(one) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                    return
        except OSError as exc:
            raise StoreError(
                f"cannot keep {len(lines)} send result(s) in {self.folder} while the database "
                f"is away: {exc}; they will show as unknown"
            ) from exc

    def waiting(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        """Every spool file in the folder (any worker's) and its entries, each taken first
        (renamed, between two appends), so a line appended while it is being written to the
        database goes to a new file instead of being removed with this one unwritten."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("sent-*.jsonl")):
            taken = path if path.name.endswith(TAKEN) else _take(path)
            if taken is None:
                continue
            entries = []
            try:
                text = taken.read_text(encoding="utf-8")
            except OSError:
                continue
            for raw in text.splitlines():
                try:
                    entries.append(from_line(json.loads(raw)))
                except (ValueError, KeyError, TypeError, IndexError):
                    continue  # a line cut short by a crash mid-write: its send shows unknown
            found.append((taken, entries))
        return found


TAKEN = ".taken.jsonl"  # a file a worker took to write (left if it died: taken again later)


def write_spooled(store: Store, spool: Spool) -> int:
    """Write the accepted sends kept on disk while the database was away; each file is
    removed once written. Returns how many were recorded now."""
    written = 0
    for path, entries in spool.waiting():
        written += store.sending.record_late(entries)
        path.unlink(missing_ok=True)
    if written:
        log.info("spooled_sends_recorded", count=written)
    return written


def _take(path: Path) -> Path | None:
    # Under the file's lock, so never in the middle of an append.
    taken = path.with_name(f"{path.stem}.{uuid.uuid4().hex}{TAKEN}")
    try:
        with path.open(encoding="utf-8") as handle:  # reading: never creates it again
            fcntl.flock(handle, fcntl.LOCK_EX)
            if not _still_named(handle, path):
                return None
            os.rename(path, taken)
    except OSError:
        return None
    return taken


def _still_named(handle: IO[str], path: Path) -> bool:
    """Whether the open file is still the one at ``path`` (not renamed or removed)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
