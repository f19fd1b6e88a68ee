"""Which line each id of an import first appeared on, in little memory.

An import streams its rows, so a repeated id can only be recognised by remembering every id
kept so far. A dict of the ids themselves would cost ~115 bytes per row (a million-row file:
115 MB); this table keeps a 64-bit fingerprint and a line number per id in two flat arrays,
open-addressed and at most half full: 32-64 bytes per row, ~1 µs per lookup.

The fingerprint is Python's string hash, so two different ids could share one: for a file
of n rows the chance is about n² / 2⁶⁵ (about one in 37 million for a million rows). Such an id
would be reported as a repeat of the other's line; nothing is ever silently dropped.
"""

from __future__ import annotations

from array import array


class FirstLines:
    """Remembers the first line each key was seen on; answers it for a repeated key."""

    def __init__(self, expected: int = 0) -> None:
        self._allocate(1 << max(10, (2 * expected).bit_length()))

    def _allocate(self, size: int) -> None:
        self._keys = array("q", bytes(8 * size))  # 0 marks a free slot
        self._lines = array("q", bytes(8 * size))
        self._mask = size - 1
        self._free = size // 2  # grow before the table is more than half full

    def first(self, key: str, line: int) -> int | None:
        """The line ``key`` was first seen on; None if it is new (``line`` is then its first)."""
        fingerprint = hash(key) or 1
        keys, mask = self._keys, self._mask
        slot = fingerprint & mask
        while (found := keys[slot]) != 0:
            if found == fingerprint:
                return self._lines[slot]
            slot = (slot + 1) & mask
        keys[slot] = fingerprint
        self._lines[slot] = line
        self._free -= 1
        if not self._free:
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        self._allocate(2 * len(old_keys))
        keys, lines, mask = self._keys, self._lines, self._mask
        for fingerprint, line in zip(old_keys, old_lines, strict=True):
            if fingerprint:
                slot = fingerprint & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = fingerprint
                lines[slot] = line
                self._free -= 1
