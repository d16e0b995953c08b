"""The FCC Reassigned Numbers Database answers a team downloaded (`inputs.reassigned`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from campaign_dialer.compliance.base import (
    ComplianceError,
    arrow_strings,
    e164_ints,
    file_stamp,
    to_ns,
)
from campaign_dialer.contacts import normalize_phones
from campaign_dialer.contacts.csvfile import (
    canon as canon_header,
)
from campaign_dialer.contacts.csvfile import (
    column_of,
    read_strings,
)

RND_COLUMNS = ("phone", "date_queried", "result", "queried_at")
_RND_RESULTS = {"yes": "yes", "no": "no", "no_data": "no_data", "no data": "no_data",
                "nodata": "no_data"}


class ReassignedAnswers:
    """The FCC Reassigned Numbers Database answers a team downloaded (`inputs.reassigned`).

    A `yes` (the number was permanently disconnected since `date_queried`) voids a consent
    grant given at or before that date: the grant came from the number's previous owner.
    A disconnection after the grant voids it too, so a `yes` with a later date also voids.
    A `no` vouches for a grant given at or after its `date_queried` (47 CFR 64.1200(m)).
    """

    def __init__(self, path: Path, answers: pd.DataFrame) -> None:
        self.path = path
        self._stamp = file_stamp(path)
        self._load_kw: dict[str, str | None] = {}
        self.answers = answers  # phone (E.164), date_queried (date), result, queried_at
        ints = e164_ints(arrow_strings(answers["phone"])) if len(answers) else np.zeros(0)
        yes = answers["result"].to_numpy() == "yes" if len(answers) else np.zeros(0, bool)
        self._yes = pd.Index(np.asarray(ints, dtype=np.int64)[yes]).unique()
        self._yes_queried: dict[int, str] = {}
        for k, q in zip(np.asarray(ints)[yes], answers["queried_at"].to_numpy()[yes],
                        strict=True):
            self._yes_queried.setdefault(int(k), str(q))
        # per number, its `no` answers sorted by date: the earliest vouches for the most grants
        no = answers["result"].to_numpy() == "no" if len(answers) else np.zeros(0, bool)
        nos = pd.DataFrame({
            "k": np.asarray(ints, dtype=np.int64)[no],
            "d": [day_ns(d) for d in answers["date_queried"].to_numpy()[no]],
            "q": answers["queried_at"].to_numpy()[no],
        }).sort_values(["k", "d"], kind="stable").drop_duplicates("k", keep="first")
        self._no = pd.Index(nos["k"].to_numpy(dtype=np.int64))
        self._no_day = nos["d"].to_numpy(dtype=np.int64)
        self._no_queried = [str(q) for q in nos["q"].to_numpy()]
        self._one: tuple[set[int], dict[int, int]] | None = None  # `decide_one`'s lookups

    def __len__(self) -> int:
        return len(self.answers)

    @classmethod
    def load(cls, path: Path, *, default_region: str, encoding: str | None = None,
             ) -> ReassignedAnswers:
        """Read the answers; a cell that cannot be read refuses the file (row and column)."""
        stamp = file_stamp(Path(path))
        names, table, _ = read_strings(path, header=True, encoding=encoding, error=ComplianceError)
        canon = [canon_header(h) for h in names]
        idx: dict[str, int] = {}
        for col in RND_COLUMNS:
            if col not in canon:
                raise ComplianceError(
                    path, f"no {col!r} column (an RND answer file has columns "
                    + ", ".join(RND_COLUMNS) + "; first row: " + ", ".join(names) + ")"
                )
            idx[col] = canon.index(col)
        cells = {c: column_of(table, i).fillna("").str.strip() for c, i in idx.items()}
        norm = normalize_phones(cells["phone"], default_region)
        rows: list[tuple[str, date, str, str]] = []
        for i in range(table.num_rows):
            row = i + 1
            e164 = norm["e164"].iloc[i]
            if pd.isna(e164):
                raise ComplianceError(
                    path, f"{cells['phone'].iloc[i]!r} is not a phone number", row=row,
                    column=names[idx["phone"]],
                )
            try:
                day = date.fromisoformat(cells["date_queried"].iloc[i])
            except ValueError:
                raise ComplianceError(
                    path, f"{cells['date_queried'].iloc[i]!r} is not a date (YYYY-MM-DD)",
                    row=row, column=names[idx["date_queried"]],
                ) from None
            result = _RND_RESULTS.get(cells["result"].iloc[i].lower().replace("-", "_"))
            if result is None:
                raise ComplianceError(
                    path, f"{cells['result'].iloc[i]!r} is not an RND answer (yes, no, no_data)",
                    row=row, column=names[idx["result"]],
                )
            rows.append((str(e164), day, result, cells["queried_at"].iloc[i]))
        frame = pd.DataFrame(rows, columns=list(RND_COLUMNS))
        out = cls(Path(path), frame)
        out._stamp = stamp
        out._load_kw = {"default_region": default_region, "encoding": encoding}
        return out

    def reloaded(self) -> ReassignedAnswers | None:
        """The answers read again if the file changed since loading (blocking), else None."""
        if file_stamp(self.path) == self._stamp or not self._load_kw:
            return None
        region = self._load_kw["default_region"] or "US"
        return ReassignedAnswers.load(
            self.path, default_region=region, encoding=self._load_kw["encoding"]
        )

    def decide(
        self, ints: np.ndarray, grant_ns: np.ndarray, has_grant: np.ndarray, *, require: bool
    ) -> tuple[np.ndarray, list[str | None]]:
        """Per number: 0 ok, 1 `number_reassigned`, 2 `reassigned_unchecked`, -1 no grant;
        and the `queried_at` of the answer that decided (None when none did)."""
        ints = np.asarray(ints, dtype=np.int64)
        n = len(ints)
        code = np.where(has_grant, 0, -1).astype(np.int64)
        queried: list[str | None] = [None] * n
        yes = self._yes.get_indexer(ints) >= 0 if len(self._yes) else np.zeros(n, bool)
        pos = self._no.get_indexer(ints) if len(self._no) else np.full(n, -1)
        vouched = (pos >= 0) & (
            self._no_day[np.maximum(pos, 0)] <= np.asarray(grant_ns, dtype=np.int64)
            if len(self._no_day) else np.zeros(n, bool)
        )
        void = has_grant & yes
        code[void] = 1
        if require:
            code[has_grant & ~void & ~vouched] = 2
        for i in np.flatnonzero(void):
            queried[int(i)] = self._yes_queried.get(int(ints[i]))
        for i in np.flatnonzero(has_grant & ~void & vouched):
            queried[int(i)] = self._no_queried[int(pos[i])]
        return code, queried

    def decide_one(self, key: int, grant_ns: int, *, require: bool) -> tuple[int, str | None]:
        """`decide` for one granted number (its `e164_int` key): the dial-time check asks one
        at a time, from dicts made on first use instead of arrays per call."""
        if self._one is None:
            self._one = (set(self._yes.tolist()), {int(k): i for i, k in enumerate(self._no)})
        yes, no = self._one
        if key in yes:
            return 1, self._yes_queried.get(key)
        pos = no.get(key)
        if pos is not None and self._no_day[pos] <= grant_ns:
            return 0, self._no_queried[pos]
        return (2 if require else 0), None


def day_ns(d: date) -> int:
    """A `date_queried` as the UTC start of that day: a grant at or after it is vouched for."""
    return to_ns(datetime(d.year, d.month, d.day, tzinfo=UTC))

