"""The consent ledger: the latest event by time at or before the call decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.compliance.base import (
    CONSENT_EXPIRED,
    CONSENT_REVOKED,
    E164_PATTERN,
    NO_CONSENT,
    ComplianceError,
    arrow_strings,
    e164_ints,
    file_stamp,
    from_ns,
    search_sorted,
    to_ns,
)
from campaign_dialer.contacts import PHONE_ROLES, ROLE_ALIASES, STRING, normalize_phones
from campaign_dialer.contacts.csvfile import (
    UNREADABLE_COLUMNS,
    StringBatches,
    column_of,
    first_bad,
    joined_cells,
    refuse_plausible,
    refuse_title_lines,
    unreadable_cells,
)
from campaign_dialer.contacts.csvfile import (
    canon as canon_header,
)
from campaign_dialer.contacts.ids import read_ids
from campaign_dialer.memory import release_memory


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    reason: str | None  # None | "no_consent" | "consent_revoked" | "consent_expired"
    event_at: datetime | None
    source: str | None
    expires_at: datetime | None = None
    event_at_text: str = ""  # the ledger's own text, for evidence
    expires_at_text: str = ""


_OFFSET = r"(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"
_NO_EXPIRY = np.iinfo(np.int64).max


class _Checks:
    """Which check a batch has reached. The file's refusal is the first check, in reading
    order, that fails anywhere in the file, at its first row: what the whole-file reader
    raised. Each check steps it once per batch, in the same order for every batch."""

    def __init__(self) -> None:
        self.at = 0
        self.refusal: tuple[int, ComplianceError] | None = None

    def step(self) -> None:
        self.at += 1

    def first_bad(self, bad: np.ndarray, error: Callable[[int], ComplianceError]) -> None:
        self.step()
        first_bad(bad, error)

    def refused(self, error: ComplianceError) -> None:
        if self.refusal is None or self.at < self.refusal[0]:
            self.refusal = (self.at, error)


def _timestamps(
    path: Path, cells: pd.Series, column: str, *, optional: bool, first_row: int = 1,
    checks: _Checks | None = None,
) -> np.ndarray:
    """UTC nanoseconds; rejects (naming the row) a missing offset or an unparseable value."""
    refuse = (checks or _Checks()).first_bad
    text = cells.fillna("").str.strip()
    blank = text.eq("").to_numpy(dtype=bool)
    if optional:
        check = ~blank
    else:
        refuse(blank, lambda i: ComplianceError(
            path, "is blank", row=i + first_row, column=column
        ))
        check = np.ones(len(text), dtype=bool)
    has_offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(dtype=bool)
    has_time = text.str.contains("T| ", regex=True).fillna(False).to_numpy(dtype=bool)
    naive = check & ~(has_offset & has_time)
    refuse(naive, lambda i: ComplianceError(
        path, f"{text.iloc[i]!r} is not an ISO 8601 date-time with a UTC offset",
        row=i + first_row, column=column,
    ))
    parsed = pd.to_datetime(
        text.where(~pd.Series(blank, index=text.index), None),
        utc=True,
        format="ISO8601",
        errors="coerce",
    )
    bad = check & parsed.isna().to_numpy(dtype=bool)
    refuse(bad, lambda i: ComplianceError(
        path, f"{text.iloc[i]!r} is not a valid date-time", row=i + first_row, column=column
    ))
    # pandas keeps 9999-12-31 or 0001-01-01 at microsecond resolution; nanoseconds (what the
    # ledger compares in) only reach 1677-2262, so such a date is named, not a traceback.
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    outside = check & ((parsed < lo) | (parsed > hi)).fillna(False).to_numpy(dtype=bool)
    refuse(outside, lambda i: ComplianceError(
        path, f"{text.iloc[i]!r} is outside the supported years 1678-2261",
        row=i + first_row, column=column,
    ))
    ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(blank, _NO_EXPIRY, ns)


class ConsentLedger:
    """Consent events keyed by phone and by contact_id, ordered by time (not file order).

    The events are sorted by "later" (time, then revoke over grant, then earlier expiry), so an
    event's position is its rank and the deciding event is the one of highest rank at or before
    the call. `reloaded()` reads the file again when it changed, so a revocation written during a
    run stops the next call to that person.

    What is kept is columns (`ConsentEvents`): numbers and instants as int64, a phone key as its
    `e164_ints` key, texts as arrow arrays; `events` (a frame of every event) is made only when
    asked for (`check`'s summary, tests), never by the gate.
    """

    def __init__(
        self, path: Path, events: ConsentEvents, *, default_region: str = "US"
    ) -> None:
        self.path = Path(path)
        self.default_region = default_region
        self.encoding: str | None = None
        self.unreadable = pd.DataFrame(columns=UNREADABLE_COLUMNS)  # phone cells not read
        self.warnings: list[str] = []
        self._stamp = file_stamp(self.path)
        self._set_events(events)

    def _set_events(self, ev: ConsentEvents) -> None:
        self._events = ev
        self._frame: pd.DataFrame | None = None
        is_phone = ev.phone_key >= 0
        # phone keys: sorted distinct int64 keys (binary search, no hash table); contact ids:
        # dictionary-encoded arrow strings
        self._phone_ints, p_codes = np.unique(ev.phone_key[is_phone], return_inverse=True)
        enc = pc.dictionary_encode(ev.cid_key)
        self._cid_keys = enc.dictionary
        key_code = np.empty(len(ev), dtype=np.int64)
        key_code[is_phone] = p_codes
        key_code[~is_phone] = np.asarray(enc.indices, dtype=np.int64) + len(self._phone_ints)
        self._key_code = key_code
        self._cid_sorted: pa.Array | None = None  # contact ids sorted, for `decide`
        self._cid_order = np.zeros(0, dtype=np.int64)
        self._order: np.ndarray | None = None
        self._sorted_codes = np.zeros(0, dtype=np.int64)
        self._latest_at: tuple[int, np.ndarray] | None = None  # `latest`'s table, last instant

    @property
    def revoke(self) -> np.ndarray:
        """Per event (by rank): a revocation."""
        return self._events.revoke

    @property
    def event_ns(self) -> np.ndarray:
        """Per event: its instant (UTC ns)."""
        return self._events.event_ns

    @property
    def expires_ns(self) -> np.ndarray:
        """Per event: its expiry (UTC ns; int64 max when none)."""
        return self._events.expires_ns

    def evidence(self, column: str, win: np.ndarray, has: np.ndarray) -> pa.Array:
        """A text column (source, event_text, expires_text) of each row's deciding event
        (`win`: its position, where `has`), null where none: dictionary-encoded, no string
        per row."""
        text = self._events.text(column)
        take = pa.array(win, type=pa.int64(), mask=~has)
        if pa.types.is_dictionary(text.type):
            idx = np.asarray(text.indices, dtype=np.int64)
            return pa.DictionaryArray.from_arrays(
                pa.array(idx[np.maximum(win, 0)], type=pa.int64(), mask=~has), text.dictionary
            )
        return pa.DictionaryArray.from_arrays(take, text)

    def source_counts(self, top: int) -> dict[str, int]:
        """The `top` most frequent consent sources (a blank one as ""), most frequent first,
        as `events["source"].fillna("").value_counts().head(top)` gives them, with no frame
        of every event made (5M events: ~0.9 GB)."""
        arr = self._events.text("source")
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.large_string())
        vc = pc.value_counts(pc.fill_null(arr, ""))
        counts = pd.Series(pd.array(vc.field("counts"), dtype=pd.ArrowDtype(pa.int64())),
                           index=vc.field("values").to_pylist())
        return {str(k): int(v) for k, v in counts.sort_values(ascending=False).head(top).items()}

    @property
    def events(self) -> pd.DataFrame:
        """Every event as a frame (row, revoke, event_ns, expires_ns, source, event_text,
        expires_text, kind "p"/"c", key), by rank; made when first asked for."""
        if self._frame is None:
            self._frame = self._events.frame()
        return self._frame

    @classmethod
    def load(
        cls, path: Path, *, default_region: str, encoding: str | None = None,
        read: Callable[[Path], tuple[ConsentEvents, pd.DataFrame, list[str]]] | None = None,
    ) -> ConsentLedger:
        """Read and validate the whole ledger; `ComplianceError` names file, row and column.
        `read`: how (`read_consent_events`' answer), default from the file (`kept.KeptReads`
        may answer from a read of the same bytes kept before)."""
        path = Path(path)
        stamp = file_stamp(path)  # before reading: a change made meanwhile is read next time
        events, unreadable, warnings = (
            read_consent_events(path, default_region, encoding) if read is None else read(path))
        out = cls(path, events, default_region=default_region)
        out._stamp = stamp
        out.encoding = encoding
        out.unreadable = unreadable
        out.warnings = warnings
        return out

    def reloaded(self) -> ConsentLedger | None:
        """The ledger read again if its file changed since loading (blocking), else None."""
        if file_stamp(self.path) == self._stamp:
            return None
        return ConsentLedger.load(
            self.path, default_region=self.default_region, encoding=self.encoding
        )

    def __len__(self) -> int:
        return len(self._events)

    def _latest_for(self, code: int, at_ns: int) -> int:
        """Position (= rank) of the latest event of one key at or before `at_ns`, or -1."""
        if self._order is None:
            self._order = np.argsort(self._key_code, kind="stable")
            self._sorted_codes = self._key_code[self._order]
        a, b = np.searchsorted(self._sorted_codes, [code, code + 1])
        pos = self._order[a:b]  # ascending rank, hence ascending time
        j = int(np.searchsorted(self._events.event_ns[pos], at_ns, side="right"))
        return int(pos[j - 1]) if j else -1

    def _code(self, kind: str, key: str | None) -> int | None:
        if not key:
            return None
        if kind == "p":
            # every phone key is a valid E.164 number: anything else matches none
            if not E164_PATTERN.fullmatch(key):
                return None
            pos = int(sorted_positions(self._phone_ints, np.array([int(key[1:])]))[0])
            return None if pos < 0 else pos
        if self._cid_sorted is None:
            order = pc.sort_indices(self._cid_keys)
            self._cid_sorted = self._cid_keys.take(order)
            self._cid_order = np.asarray(order, dtype=np.int64)
        ids = self._cid_sorted
        lo, hi = 0, len(ids)
        while lo < hi:  # binary search in the sorted ids (no dict of every id)
            mid = (lo + hi) // 2
            if ids[mid].as_py() < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(ids) and ids[lo].as_py() == key:
            return int(self._cid_order[lo]) + len(self._phone_ints)
        return None

    def decide(
        self, *, phone_e164: str | None, contact_id: str | None, at: datetime
    ) -> ConsentDecision:
        """Consent at `at`: the latest event by time at or before it decides."""
        at_ns = to_ns(at)
        best = -1
        for kind, key in (("p", phone_e164), ("c", contact_id)):
            code = self._code(kind, key)
            if code is not None:
                best = max(best, self._latest_for(code, at_ns))
        if best < 0:
            return ConsentDecision(False, NO_CONSENT, None, None)
        ev = self._events
        source, event_text, expires_text = (
            _text(ev.text(c)[best].as_py()) for c in ("source", "event_text", "expires_text")
        )
        return _decision(
            bool(ev.revoke[best]),
            int(ev.event_ns[best]),
            int(ev.expires_ns[best]),
            source,
            event_text,
            expires_text,
            at_ns,
        )

    def _latest_table(self, at_ns: int) -> np.ndarray:
        """Per key (phone keys, then contact ids): the position of its latest event at or
        before `at_ns`, -1 when none. Kept for the last instant asked: a plan asks it of
        every chunk of rows at the same instant (the events never change in place)."""
        kept = self._latest_at
        if kept is not None and kept[0] == at_ns:
            return kept[1]
        mask = self._events.event_ns <= at_ns
        latest = np.full(len(self._phone_ints) + len(self._cid_keys), -1, dtype=np.int64)
        np.maximum.at(latest, self._key_code[mask], np.flatnonzero(mask))
        self._latest_at = (at_ns, latest)
        return latest

    def latest(
        self, phones: pa.Array | np.ndarray, contact_ids: pa.Array, at_ns: int
    ) -> np.ndarray:
        """Vectorised: position of the deciding event per contact (-1 when none).

        `phones`: E.164 strings, or their `e164_ints` keys."""
        ints = phones if isinstance(phones, np.ndarray) else e164_ints(phones)
        latest = self._latest_table(at_ns)
        best = np.full(len(phones), -1, dtype=np.int64)
        pos = sorted_positions(self._phone_ints, ints)
        hit = pos >= 0
        best[hit] = latest[pos[hit]]
        if len(self._cid_keys):
            found = pc.index_in(contact_ids, value_set=self._cid_keys)
            pos = np.asarray(pc.fill_null(found, -1), dtype=np.int64)
            hit = pos >= 0
            best[hit] = np.maximum(best[hit], latest[pos[hit] + len(self._phone_ints)])
        return best


def sorted_positions(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of each query in `keys` (sorted, distinct int64), -1 where absent."""
    if len(keys) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    pos = np.minimum(search_sorted(keys, queries), len(keys) - 1)
    return np.where(keys[pos] == queries, pos, -1)


_TEXTS = ("source", "event_text", "expires_text")


@dataclass
class ConsentEvents:
    """A ledger's events as columns, by rank (`ConsentLedger`): the file row, revoke, the
    instants (UTC ns), the texts evidence quotes (arrow; dictionary-encoded when they repeat),
    and the key: a phone's `e164_ints` key (-1: a contact_id event), else the contact_id
    (`cid_key`, one per contact_id event, in rank order)."""

    row: np.ndarray
    revoke: np.ndarray
    event_ns: np.ndarray
    expires_ns: np.ndarray
    texts: dict[str, pa.Array]
    phone_key: np.ndarray
    cid_key: pa.Array

    def __len__(self) -> int:
        return len(self.row)

    def text(self, column: str) -> pa.Array:
        return self.texts[column]

    def frame(self) -> pd.DataFrame:
        """The events as the frame `read_consent` gives."""
        n = len(self)
        is_phone = self.phone_key >= 0
        phones = pc.binary_join_element_wise(
            pa.scalar("+", pa.large_string()),
            pc.cast(pa.array(self.phone_key[is_phone]), pa.large_string()),
            pa.scalar("", pa.large_string()),
        )
        # the key column: phone keys where `is_phone`, contact ids elsewhere, in rank order
        at = np.empty(n, dtype=np.int64)
        at[is_phone] = np.arange(int(is_phone.sum()))
        at[~is_phone] = np.arange(n - int(is_phone.sum())) + int(is_phone.sum())
        key = pa.concat_arrays([phones, self.cid_key.cast(pa.large_string())]).take(
            pa.array(at))

        def text(column: str) -> pd.api.extensions.ExtensionArray:
            arr = self.texts[column]
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(pa.large_string())
            return pd.array(arr, dtype=STRING)

        return pd.DataFrame({
            "row": self.row, "revoke": self.revoke, "event_ns": self.event_ns,
            "expires_ns": self.expires_ns,
            **{c: text(c) for c in _TEXTS},
            "kind": pd.Series(np.where(is_phone, "p", "c")).astype("str"),
            "key": pd.array(key, dtype=STRING),
        })


# How consent ledgers and CRM exports spell the two events (letters only, lower case). Any
# other word refuses the file: a revocation must never be read as something else.
_EVENT_WORDS = {
    **dict.fromkeys(
        ("grant", "granted", "optin", "optedin", "consent", "consented", "subscribe",
         "subscribed"), "grant"),
    **dict.fromkeys(
        ("revoke", "revoked", "revocation", "optout", "optedout", "unsubscribe",
         "unsubscribed", "withdraw", "withdrawn", "withdrew"), "revoke"),
}




@dataclass
class _Columns:
    """Where a consent file keeps what the ledger reads (column indexes)."""

    names: list[str]
    event: int
    at: int
    phone: int | None
    others: list[int]  # every other phone column: a revocation is read on each number
    cid: int | None
    expires: int | None
    source: int | None

    @classmethod
    def of(cls, path: Path, names: list[str], encoding: str | None) -> _Columns:
        """The columns by their header, or the file refused naming the one missing."""
        canon = [canon_header(h) for h in names]

        def find(*aliases: str) -> int | None:
            return next((canon.index(a) for a in aliases if a in canon), None)

        i_phone = find("phone", "phone_number", "phone_e164", "e164", "mobile_phone", "number")
        # every other phone-named column (HubSpot's "Mobile Phone Number", Salesforce's
        # "Mobile"): a revocation is read on each of the row's numbers, never left unread
        phone_aliases = {a for role in PHONE_ROLES for a in ROLE_ALIASES.get(role, ())}
        i_others = [i for i, c in enumerate(canon) if c in phone_aliases and i != i_phone]
        if i_phone is None and i_others:
            i_phone, i_others = i_others[0], i_others[1:]
        i_cid = find("contact_id", "contactid", "id", "customer_id", "record_id")
        i_event = find(
            "event", "event_type", "action", "consent_status", "consent_event", "status"
        )
        i_at = find("event_at", "timestamp", "at", "occurred_at", "event_time", "event_date",
                    "created_at", "recorded_at", "date")
        if i_phone is None and i_cid is None:
            refuse_title_lines(path, {"phone", "phone_number", "contact_id", "event"},
                               ComplianceError, encoding)
            raise ComplianceError(path, "no phone or contact_id column", column="phone")
        if i_event is None:
            raise ComplianceError(path, "no event column (grant|revoke)", column="event")
        if i_at is None:
            raise ComplianceError(path, "no event_at column", column="event_at")
        return cls(
            names=names, event=i_event, at=i_at, phone=i_phone, others=i_others, cid=i_cid,
            expires=find("expires_at", "expiry", "expires"), source=find("source", "evidence"),
        )


@dataclass
class _Part:
    """One batch of a consent file, read: its rows' fields as columns, which rows are events
    by key kind (positions in the batch, with their keys), and its unreadable phones."""

    base: dict[str, np.ndarray | pa.Array]  # row, revoke, event_ns, expires_ns, texts
    by_phone: tuple[np.ndarray, np.ndarray]  # positions, phone keys (`e164_ints`)
    by_other: list[tuple[np.ndarray, np.ndarray]]  # per other phone column
    by_cid: tuple[np.ndarray, pa.Array]  # positions, contact ids
    unreadable: list[pd.DataFrame]  # per phone column, the main one first

    def __len__(self) -> int:
        return len(self.base["row"])


def _consent_batch(
    path: Path, batch: pa.RecordBatch, cols: _Columns, default_region: str, first_row: int,
    checks: _Checks,
) -> _Part:
    """One batch's events; a bad cell raises `ComplianceError` naming its file row."""
    names = cols.names
    n = batch.num_rows
    empty = pd.Series([""] * n, dtype=STRING)
    event_cells = column_of(batch, cols.event)
    event = event_cells.str.lower().str.replace(r"[^a-z]+", "", regex=True).map(
        _EVENT_WORDS, na_action="ignore"
    ).astype(STRING)
    bad = ~event.isin(["grant", "revoke"]).to_numpy(dtype=bool)
    checks.first_bad(bad, lambda i: ComplianceError(
        path,
        f"event {event_cells.iloc[i]!r} is not grant or revoke (nor opt-in/opt-out, "
        "granted/revoked, subscribed/unsubscribed)",
        row=i + first_row,
        column=names[cols.event],
    ))
    at_text = column_of(batch, cols.at).str.strip()
    event_ns = _timestamps(
        path, at_text, names[cols.at], optional=False, first_row=first_row, checks=checks
    )
    if cols.expires is not None:
        exp_text = column_of(batch, cols.expires).str.strip()
        expires_ns = _timestamps(
            path, exp_text, names[cols.expires], optional=True, first_row=first_row,
            checks=checks,
        )
    else:
        exp_text = empty
        expires_ns = np.full(n, _NO_EXPIRY, dtype=np.int64)
    source = column_of(batch, cols.source).str.strip() if cols.source is not None else empty
    revoke = event.eq("revoke").to_numpy(dtype=bool)
    unreadable: list[pd.DataFrame] = []
    extra: list[pd.Series] = []  # per other phone column: the revocations' numbers
    if cols.phone is not None:
        phone_cells = column_of(batch, cols.phone)
        norm = normalize_phones(phone_cells, default_region)
        checks.step()
        refuse_plausible(
            path, phone_cells, norm, names[cols.phone], first_row, where=revoke,
            what="revocation phone", error=ComplianceError,
        )
        unreadable.append(unreadable_cells(phone_cells, norm, names[cols.phone], first_row))
        phone = norm["e164"]
        raw_blank = phone_cells.fillna("").str.strip().eq("")
        for i in cols.others:
            cells = column_of(batch, i)
            other = normalize_phones(cells, default_region)
            checks.step()
            refuse_plausible(
                path, cells, other, names[i], first_row, where=revoke,
                what="revocation phone", error=ComplianceError,
            )
            unreadable.append(unreadable_cells(cells, other, names[i], first_row))
            extra.append(other["e164"].where(pd.Series(revoke), pd.NA).astype(STRING))
            raw_blank = raw_blank & cells.fillna("").str.strip().eq("")
    else:
        phone = pd.Series(pd.NA, index=range(n), dtype=STRING)
        raw_blank = pd.Series(True, index=range(n))
    if cols.cid is not None:
        checks.step()
        cid = read_ids(
            path, column_of(batch, cols.cid), names[cols.cid], ComplianceError,
            first_row=first_row,
        )
    else:
        cid = pd.Series(pd.NA, index=range(n), dtype=STRING)
    nothing = (raw_blank & cid.isna()).to_numpy(dtype=bool)
    col = names[cols.phone if cols.phone is not None else cols.cid]  # type: ignore[index]
    checks.first_bad(nothing, lambda i: ComplianceError(
        path, "has neither a phone nor a contact_id", row=i + first_row, column=col
    ))
    base: dict[str, np.ndarray | pa.Array] = {
        "row": np.arange(first_row, first_row + n, dtype=np.int64),
        "revoke": revoke,
        "event_ns": np.asarray(event_ns, dtype=np.int64),
        "expires_ns": np.asarray(expires_ns, dtype=np.int64),
        # arrow strings, not a Python object per cell (half a million events)
        "source": arrow_strings(source.fillna("")),
        "event_text": arrow_strings(at_text.fillna("")),
        "expires_text": arrow_strings(exp_text.fillna("")),
    }
    has_phone = phone.notna().to_numpy(dtype=bool)
    has_cid = cid.notna().to_numpy(dtype=bool)

    def keyed(numbers: pd.Series, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.flatnonzero(where), e164_ints(arrow_strings(numbers[where]))

    by_other = []
    for numbers in extra:
        other_set = (numbers.notna() & numbers.ne(phone).fillna(True)).to_numpy(dtype=bool)
        by_other.append(keyed(numbers, other_set))
    return _Part(
        base=base,
        by_phone=keyed(phone, has_phone),
        by_other=by_other,
        by_cid=(np.flatnonzero(has_cid), arrow_strings(cid[has_cid])),
        unreadable=unreadable,
    )


def read_consent(
    path: Path, default_region: str, encoding: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """`read_consent_events`, the events as a frame (`ConsentEvents.frame`)."""
    events, unreadable, warnings = read_consent_events(path, default_region, encoding)
    return events.frame(), unreadable, warnings


def read_consent_events(
    path: Path, default_region: str, encoding: str | None = None
) -> tuple[ConsentEvents, pd.DataFrame, list[str]]:
    """(events, unreadable phone cells, warnings), read in bounded batches (`StringBatches`):
    memory follows the events kept, not the file. A revocation whose phone holds 7+ digits
    but is not one valid number refuses the file; other unreadable phones are listed. A row
    the CSV reader cannot read refuses the file first, wherever it is; then the first check
    that fails, at its first row, exactly as when the file was read whole."""
    warnings: list[str] = []
    batches = StringBatches(path, encoding=encoding, warnings=warnings, error=ComplianceError)
    if not batches.names:
        raise ComplianceError(path, "empty file: no header row")
    try:
        cols = _Columns.of(path, batches.names, encoding)
    except ComplianceError:
        iter(batches)
        batches.drain()  # a row that cannot be read is named first, as it always was
        raise
    checks = _Checks()
    parts: list[_Part] = []
    for start, batch in batches:
        checks.at = 0
        try:
            part = _consent_batch(path, batch, cols, default_region, start + 1, checks)
        except ComplianceError as e:
            checks.refused(e)
            parts.clear()  # the file is refused: nothing more of it is kept
            continue
        if checks.refusal is None:
            parts.append(part)
    if checks.refusal is not None:
        raise checks.refusal[1]
    if not parts:  # a header and no rows: the events of an empty batch, typed as any other
        empty = pa.RecordBatch.from_pydict(
            {f"c{i}": pa.array([], pa.string()) for i in range(len(cols.names))}
        )
        parts.append(_consent_batch(path, empty, cols, default_region, 1, checks))
    unreadable = pd.DataFrame(columns=UNREADABLE_COLUMNS)
    for k in range(1 + len(cols.others) if cols.phone is not None else 0):
        one = joined_cells([p.unreadable[k] for p in parts])
        unreadable = one if k == 0 else pd.concat([unreadable, one], ignore_index=True)
    return _ranked(parts, len(cols.others)), unreadable, warnings


def _ranked(parts: list[_Part], others: int) -> ConsentEvents:
    """The parts' events in one set of columns, by rank: the phone events of every part,
    then each other phone column's, then the contact_id events (the order a stable sort
    keeps for ties), sorted by the total order of "later": time, then revoke over grant,
    then earlier expiry (compared as float, as it always was), then file row."""
    starts = np.cumsum([0, *(len(p) for p in parts)])
    phone_sets = [
        (p.by_phone, starts[i]) for i, p in enumerate(parts)
    ] + [(p.by_other[k], starts[i]) for k in range(others) for i, p in enumerate(parts)]
    at = np.concatenate([
        *(pos + start for (pos, _), start in phone_sets),
        *(p.by_cid[0] + starts[i] for i, p in enumerate(parts)),
    ]).astype(np.int64)
    n_cid = sum(len(p.by_cid[0]) for p in parts)
    phone_key = np.concatenate([
        *(keys for (_, keys), _ in phone_sets), np.full(n_cid, -1, dtype=np.int64),
    ]).astype(np.int64)
    cid_key = pa.concat_arrays([p.by_cid[1] for p in parts])
    del phone_sets

    def column(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(p.base[name]) for p in parts])[at]

    row, revoke = column("row"), column("revoke")
    event_ns, expires_ns = column("event_ns"), column("expires_ns")
    order = np.lexsort((row, -expires_ns.astype(np.float64), revoke, event_ns))
    taken = pa.array(at[order])
    texts = {}
    for c in _TEXTS:  # each text column taken from the parts' chunks, then let go of
        chunks = pa.chunked_array([p.base.pop(c) for p in parts], type=pa.large_string())
        texts[c] = _compact(chunks.take(taken).combine_chunks())
        del chunks
    parts.clear()
    release_memory()  # the batches' columns, joined
    is_cid = phone_key[order] < 0
    first_cid = len(phone_key) - n_cid
    return ConsentEvents(
        row=row[order], revoke=revoke[order], event_ns=event_ns[order],
        expires_ns=expires_ns[order], texts=texts, phone_key=phone_key[order],
        cid_key=cid_key.take(pa.array(order[is_cid] - first_cid)),
    )


def _compact(text: pa.Array) -> pa.Array:
    """A text column dictionary-encoded when its values repeat (a source's name, a blank
    expiry), as is otherwise (an event's own time). Told by the first rows: encoding half
    a million distinct times only to drop the result costs a hash table of them all."""
    sample = text.slice(0, 4096)
    if pc.count_distinct(sample).as_py() * 2 > len(sample):
        return text
    enc = pc.dictionary_encode(text)
    return enc if len(enc.dictionary) * 2 <= len(text) else text


def _text(value: object) -> str:
    """A text cell of an event ("" when absent; the reader never leaves one absent)."""
    return "" if value is None else str(value)


def _decision(
    revoke: bool,
    event_ns: int,
    expires_ns: int,
    source: str,
    event_text: str,
    expires_text: str,
    at_ns: int,
) -> ConsentDecision:
    event_at = from_ns(event_ns)
    expires = None if expires_ns == _NO_EXPIRY else from_ns(expires_ns)
    src = source or None
    if revoke:
        reason: str | None = CONSENT_REVOKED
    elif expires_ns <= at_ns:
        reason = CONSENT_EXPIRED
    else:
        reason = None
    return ConsentDecision(reason is None, reason, event_at, src, expires, event_text, expires_text)

