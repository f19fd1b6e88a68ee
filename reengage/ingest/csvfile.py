"""Reading a CSV file of records: its header, its structure, then its rows in batches.

A file is read twice. The first pass (``check_structure``) only runs the C ``csv`` parser
over it, at a few percent of the import's time, and refuses the whole file when a quote
problem makes rows unreliable: a quote never closed, or a quoted value that runs over
several lines and then does not fit (text after its closing quote, the wrong number of
fields, a value past the ``csv`` module's size limit). Such a mistake swallows the rows
after it into one value, so nothing can be imported safely. A quote left open on a line
that is by itself past the size limit counts too (``_runaway``): ``csv`` gives up on that
line alone and would read on after it as if the quote had closed. The second pass
(``batches``) streams the rows; a problem confined to one line (too many or too few fields,
text after a closing quote, an oversized value whose quotes close on its line) rejects that
row only.
"""

from __future__ import annotations

import csv
import difflib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from reengage.errors import InputError
from reengage.ingest.records import OPTIONAL, REQUIRED, Kind, RowProblem

Progress = Callable[[int], None]
Batch = list[tuple[int, dict[str, str]]]

FIELD_LIMIT = csv.field_size_limit()  # 131,072 characters; no column takes more than 5,000
_FIX_QUOTES = (
    "write a quote inside a value twice, and put a value holding a delimiter, quote or line "
    'break in quotes: "Say ""hi"", Bo"'
)


class CsvReader:
    """A CSV file of ``kind`` records, its header already checked."""

    def __init__(self, path: Path, kind: Kind, progress: Progress | None) -> None:
        self.path, self.kind, self.progress = path, kind, progress
        self.warnings: list[str] = []
        self.rows = 0  # every record read after the header, rejected ones included
        self.stopped: str | None = None  # why the second pass stopped early, if it did
        try:
            with path.open("rb") as handle:
                head = handle.read(65536)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
        if not head.strip():
            raise InputError(f"{path}: the file is empty; expected a header line and rows")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise InputError(f"{path}: the file is UTF-16 text; save it as CSV UTF-8")
        first = head.splitlines()[0]
        try:
            header_line = first.decode("utf-8-sig")
        except UnicodeDecodeError:
            header_line = None
        # A file whose header is text is a text file: a stray NUL further down is its row's
        # problem, reported on its line. Binary data (a spreadsheet, an image) shows early.
        if b"\x00" in first or (header_line is None and b"\x00" in head):
            raise InputError(
                f"{path}: this is not a CSV text file (it contains binary data); "
                "save it as CSV UTF-8"
            )
        if header_line is None:
            raise InputError(f"{path}: the header is not UTF-8 text; save the file as CSV UTF-8")
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

    def _open(self) -> TextIO:
        # newline="" hands line breaks inside quoted values to csv untouched; surrogateescape
        # keeps a byte that is not UTF-8 as a marker the field parser reports on its row.
        try:
            return self.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror}") from exc

    def _records(self, handle: TextIO) -> Iterator[tuple[int, int, list[str] | None, str]]:
        """``(first line, last line, fields, csv error)`` per record, header included.

        ``fields`` is None when the record cannot be parsed; ``csv`` then goes on with the
        line after the last one it read.
        """
        reader = csv.reader(handle, delimiter=self.delimiter, strict=True)
        end = 0
        while True:
            start = end + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                yield start, end, None, str(exc)
                continue
            end = reader.line_num
            yield start, end, fields, ""

    def check_structure(self) -> None:
        """Read the whole file once, writing nothing; raise InputError if its quoting is broken.

        Only problems that span lines are fatal here: they make every later row unreliable.
        """
        if not self._has_quotes():
            return  # without a quote no value spans lines: nothing here can go wrong
        width = len(self.header)
        with self._open() as handle, _Lines(self._open) as lines:
            for start, end, fields, error in self._records(handle):
                if start == 1 and (end != 1 or fields is None):
                    raise InputError(
                        f"{self.path}:1: the header line has an unclosed quote; column names "
                        "need no quotes"
                    )
                if end == start and not _runaway(lines, start, error, self.delimiter):
                    continue  # one line: its own problem, if any, is reported on its row
                problem = _spanning_problem(start, end, fields, error, width)
                if problem is not None:
                    raise InputError(
                        f"{self.path}:{start}: {problem}; {_FIX_QUOTES}. Nothing was "
                        "imported: fix the file and import it again"
                    )

    def _has_quotes(self) -> bool:
        """Whether the file holds a quote character (a scan of its bytes, about 1 ms per MB)."""
        with self.path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                if b'"' in chunk:
                    return True
        return False

    def batches(self, size: int, rejected: list[RowProblem]) -> Iterator[Batch]:
        """Rows in batches of ``size``; a row that is not CSV-shaped goes to ``rejected``.

        Counts every row in ``rows``. Should a quote problem spanning lines turn up here
        after all (the file changed since ``check_structure``), the rows before it are
        yielded, the problem is rejected and ``stopped`` says what was done.
        """
        width = len(self.header)
        file = str(self.path)
        batch: Batch = []
        with self._open() as handle, _Lines(self._open) as lines:
            records = self._records(handle)
            next(records, None)  # the header, checked already
            for count, (start, end, fields, error) in enumerate(records):
                if self.progress is not None and count % 2000 == 0:
                    self.progress(handle.buffer.tell())
                if fields is not None and not "".join(fields).strip():
                    continue  # blank lines (or only delimiters) are not rows
                self.rows += 1
                if (end != start or _runaway(lines, start, error, self.delimiter)) and (
                    problem := _spanning_problem(start, end, fields, error, width)
                ):
                    rejected.append(RowProblem(file, start, "row", f"{problem}; {_FIX_QUOTES}"))
                    self.stopped = (
                        f"{file}:{start}: the import stopped here: the rows before line "
                        f"{start} were imported or reported above, nothing from line {start} on"
                    )
                    break
                if fields is None:
                    rejected.append(RowProblem(file, start, "row", _line_problem(error)))
                elif len(fields) != width:
                    rejected.append(RowProblem(file, start, "row", _count_problem(fields, width)))
                else:
                    batch.append((start, dict(zip(self.header, fields, strict=True))))
                    if len(batch) >= size:
                        yield batch
                        batch = []
            if self.progress is not None:
                self.progress(handle.buffer.tell())
        if batch:
            yield batch


def _spanning_problem(
    start: int, end: int, fields: list[str] | None, error: str, width: int
) -> str | None:
    """What is wrong with a record that runs from line ``start`` over to ``end``, if anything.

    A value in quotes may hold line breaks (a note); but a record spanning lines that then
    fails to parse, or has the wrong number of fields, is a quote that opened by mistake.
    """
    lines = f"lines {start}-{end}"
    if "field limit" in error and end == start:  # see _runaway
        return (
            f"a quote opened in the row on this line is not closed by the line's end, and the "
            f"value grows past {FIELD_LIMIT:,} characters: its closing quote is probably "
            "missing, and the rows after it would be read as part of that one value"
        )
    if "end of data" in error:
        return (
            f"a quote opened in the row on this line is never closed: the rest of the file "
            f"({lines}) would be read as one value"
        )
    if "field limit" in error:
        return (
            f"a quoted value in the row on this line grows past {FIELD_LIMIT:,} characters "
            f"by line {end}: its closing quote is probably missing"
        )
    if fields is None:
        return (
            f"a quoted value in the row on this line runs to line {end} and text follows its "
            "closing quote there: a quote is probably missing or not doubled"
        )
    if len(fields) != width:
        return (
            f"the row on this line runs over {lines} inside quotes and then has {len(fields)} "
            f"fields where the header has {width}: a quote is probably missing or not doubled"
        )
    return None


class _Lines:
    """Line ``n`` of the file on request, read by a second handle that only moves forward.

    Opened on the first request only (a value past the field limit is rare), and asked for
    ever later lines, so the whole file is read at most once more. Lines are split as the
    ``csv`` reader's handle splits them, so the numbers agree with ``reader.line_num``.
    """

    def __init__(self, opener: Callable[[], TextIO]) -> None:
        self._opener = opener
        self._handle: TextIO | None = None
        self._next = 1  # the number of the line the next _take returns
        self._peeked: str | None = None  # that line, when it has been read already

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()

    def line(self, number: int) -> tuple[str, bool]:
        """Line ``number`` (with its line break) and whether any line follows it."""
        if self._handle is None or number < self._next:  # the latter never happens
            if self._handle is not None:
                self._handle.close()
            self._handle, self._next, self._peeked = self._opener(), 1, None
        skip = number - self._next
        if skip and self._peeked is not None:
            self._peeked, skip, self._next = None, skip - 1, self._next + 1
        for _ in itertools.islice(self._handle, skip):  # at C speed
            pass
        text = self._peeked if self._peeked is not None else self._handle.readline()
        self._peeked, self._next = self._handle.readline(), number + 1
        return text, bool(self._peeked)


def _runaway(lines: _Lines, number: int, error: str, delimiter: str) -> bool:
    """Whether a record the ``csv`` parser gave up on at line ``number`` (one line, its
    value past the field limit) is a quote left open: the line ends inside quotes and lines
    follow, which would all be read into that value. Such a line is refused like a quote
    never closed in a small file; a long value whose quotes close on its line is that row's
    problem only.
    """
    if "field limit" not in error:
        return False
    text, following = lines.line(number)
    return following and _ends_inside_quotes(text, delimiter)


def _ends_inside_quotes(line: str, delimiter: str) -> bool:
    """Whether ``line`` ends inside a quoted value, read as ``csv`` reads it (a quote opens a
    value only at its start; ``""`` inside one is a quote; text after a closing quote ends
    the record with an error in strict mode)."""
    at, end = 0, len(line)
    while at < end:
        if line[at] == '"':
            at += 1
            while True:
                close = line.find('"', at)
                if close < 0:
                    return True
                if line.startswith('"', close + 1):
                    at = close + 2  # a doubled quote inside the value
                    continue
                at = close + 1
                break
            if not line.startswith(delimiter, at):
                return False  # the line's end, or text after a closing quote
            at += 1
        else:
            found = line.find(delimiter, at)
            if found < 0:
                return False
            at = found + 1
    return False


def _line_problem(error: str) -> str:
    """The fix for a line the csv parser refused; the lines around it are fine."""
    if "field limit" in error:
        return (
            f"a value on this line is longer than {FIELD_LIMIT:,} characters (no column takes "
            "more than 5,000); check the line, it may hold a whole file pasted into one cell"
        )
    if "end of data" in error:
        return (
            f"a quote opened on this line is never closed (the file ends inside it); {_FIX_QUOTES}"
        )
    if "expected after" in error:
        return f"text follows a closing quote; {_FIX_QUOTES}"
    return f"cannot be read as CSV ({error}); {_FIX_QUOTES}"


def _count_problem(fields: list[str], width: int) -> str:
    has = f"the row has {len(fields)} field{'s' if len(fields) > 1 else ''}"
    if len(fields) > width:
        return f"{has} but the header has {width}; quote values that contain the delimiter"
    # Trailing cells are not filled in silently: a short row is most often one cut off (an
    # export interrupted), and padding it would import a truncated amount as if it were whole.
    return (
        f"{has} but the header has {width}; every row needs all {width} (an empty value is "
        "nothing between two delimiters: a,,c), so this one is probably cut off"
    )
