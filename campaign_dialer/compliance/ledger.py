"""The DNC ledger as the gate sees it: a set of numbers in memory, never a file.

Who keeps the ledger on disk (`campaign_dialer.store.ledger_file`, the contact history) hands the
gate an object with this shape; the gate only asks membership. `reload` is the one step that
may read a file, and the engine runs it in a worker thread (`Gate.reloaded`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class LedgerView(Protocol):
    """Numbers on the DNC ledger: membership from memory; `reload` catches up (blocking)."""

    def __contains__(self, e164: object) -> bool: ...

    def numbers(self) -> set[str]: ...

    def reload(self) -> bool: ...


class LedgerNumbers:
    """A pure in-memory ledger: what a plan built without a ledger file, and tests, use."""

    def __init__(self, numbers: Iterable[str] = ()) -> None:
        self._numbers: set[str] = set(numbers)

    def __contains__(self, e164: object) -> bool:
        return isinstance(e164, str) and e164 in self._numbers

    def __len__(self) -> int:
        return len(self._numbers)

    def numbers(self) -> set[str]:
        return set(self._numbers)

    def add(self, e164: str) -> None:
        """Hold the number back from now on (in memory only)."""
        self._numbers.add(e164)

    def reload(self) -> bool:
        """Nothing to re-read: the numbers are the ones given."""
        return False
