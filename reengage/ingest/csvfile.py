"""Streaming a CSV file of records in batches, after checking its header."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable, Iterator
from pathlib import Path

from reengage.errors import InputError
from reengage.ingest.records import OPTIONAL, REQUIRED, Kind, RowProblem

Progress = Callable[[int], None]


class CsvReader:
    """Streams a CSV file as ``(line, row)`` batches after checking its header."""

    def __init__(self, path: Path, kind: Kind, progress: Progress | None) -> None:
        self.path, self.kind, self.progress = path, kind, progress
        self.warnings: list[str] = []
        try:
            with path.open("rb") as handle:
                head = handle.read(65536)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
        if not head.strip():
            raise InputError(f"{path}: the file is empty; expected a header line and rows")
        if b"\x00" in head:
            raise InputError(f"{path}: this is not a CSV text file (it contains binary data)")
        first = head.splitlines()[0]
        try:
            header_line = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(
                f"{path}: the header is not UTF-8 text; save the file as CSV UTF-8"
            ) from None
        self.delimiter = max(",;\t", key=header_line.count)
        self.header = [
            h.strip().lower() for h in next(csv.reader([header_line], delimiter=self.delimiter))
        ]
        missing = [c for c in REQUIRED[kind] if c not in self.header]
        if missing:
            raise InputError(
                f"{path}:1: the header lacks {', '.join(missing)}; a {kind.value} file needs "
                f"at least the columns {','.join(REQUIRED[kind])} (found: "
                f"{','.join(self.header) or 'nothing'})"
            )
        known = set(REQUIRED[kind]) | set(OPTIONAL[kind])
        for column in self.header:
            if column and column not in known:
                close = difflib.get_close_matches(column, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.warnings.append(f"{path}:1: column {column!r} is not used{hint}")
        duplicated = {c for c in self.header if self.header.count(c) > 1}
        if duplicated:
            raise InputError(
                f"{path}:1: column(s) {', '.join(sorted(duplicated))} appear "
                "twice in the header; keep one of each"
            )

    def _lines(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            done = 0
            for number, raw in enumerate(handle):
                done += len(raw)
                if self.progress is not None and number % 2000 == 0:
                    self.progress(done)
                # surrogateescape keeps a bad byte as a marker that the field parser reports
                text = raw.decode("utf-8", errors="surrogateescape")
                yield text.removeprefix("\ufeff") if number == 0 else text
            if self.progress is not None:
                self.progress(done)

    def batches(
        self, size: int, rejected: list[RowProblem]
    ) -> Iterator[list[tuple[int, dict[str, str]]]]:
        """Rows in batches of ``size``; rows with too many fields go to ``rejected``."""
        reader = csv.reader(self._lines(), delimiter=self.delimiter)
        next(reader)  # header, already checked
        width = len(self.header)
        batch: list[tuple[int, dict[str, str]]] = []
        line = reader.line_num + 1
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not "".join(fields).strip():
                continue  # blank lines are not rows
            if len(fields) > width:
                rejected.append(
                    RowProblem(
                        str(self.path),
                        start,
                        self.header[-1],
                        f"the row has {len(fields)} fields but the header has {width}; "
                        "quote values that contain the delimiter",
                    )
                )
                continue
            if len(fields) < width:  # spreadsheets drop trailing empty cells
                fields += [""] * (width - len(fields))
            batch.append((start, dict(zip(self.header, fields, strict=True))))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
