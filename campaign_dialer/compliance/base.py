"""What every compliance module shares: the evidence keys, the error, instants as ns."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_dialer.contacts import STRING
from campaign_dialer.errors import InputError
from campaign_dialer.vocab import CONSENT_REASONS, DNC_REASONS, WINDOW_REASONS

# The gate's reasons, by name, from the one vocabulary (`vocab`): never spelled out here.
(DNC_LOCAL,) = DNC_REASONS
NO_CONSENT, CONSENT_REVOKED, CONSENT_EXPIRED, NUMBER_REASSIGNED, REASSIGNED_UNCHECKED = (
    CONSENT_REASONS
)
OUTSIDE_WINDOW, UNKNOWN_TIMEZONE = WINDOW_REASONS

US_FEDERAL_WINDOW = (time(8), time(21))
DATA = Path(__file__).resolve().parent.parent / "data"
LOOKAHEAD_DAYS = 14  # how far `next_open` searches; beyond that it is None
EVIDENCE_KEYS = (
    "consent_event_at",
    "consent_expires_at",
    "consent_source",
    "local_times",
    "zones",
    "dnc_lists_checked",
    "rnd_queried_at",
)
NO_PHONE_DNC = "(no phone: local lists not checked)"
# 16 CFR 310.4(b)(3)(iv): the safe harbour needs a national registry copy at most 31 days old
# at the moment of the call; `check` warns some days ahead so the list is renewed in time.
DNC_MAX_AGE_DAYS = 31
DNC_WARN_AGE_DAYS = 25
DATED_KINDS = frozenset({"national", "state"})


class ComplianceError(InputError):
    """A DNC or consent file cannot be used: the CLI exits 65 before any call."""


E164_PATTERN = re.compile(r"\+[1-9]\d{5,14}")


def aware(at: datetime, name: str = "at") -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    return at



_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(at: datetime) -> int:
    """Nanoseconds since the epoch of an aware instant (exact: datetimes hold microseconds).

    Integer arithmetic, as pandas does it, without a Timestamp per call: the gate asks at
    every dial."""
    d = aware(at) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    """The instant of `to_ns`, in UTC (nanoseconds below a microsecond dropped, as pandas'
    `to_pydatetime` does)."""
    return _EPOCH + timedelta(microseconds=ns // 1_000)



def arrow_strings(values: pd.Series) -> pa.Array:
    arr = pa.array(values.astype(STRING), type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def e164_int(number: str) -> int:
    """`e164_ints` of one number: the dial-time check asks one at a time."""
    digits = number[1:]
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        return int(digits)
    return int(e164_ints(pa.array([number], type=pa.large_string()))[0])


def e164_ints(numbers: pa.Array) -> np.ndarray:
    """E.164 strings as int64 (digits after "+"; -1 for null): injective, since no country
    code starts with 0 and E.164 has at most 15 digits; hashing and sorting ints is fast."""
    digits = pc.utf8_slice_codeunits(numbers, 1)
    return np.asarray(pc.fill_null(pc.cast(digits, pa.int64()), -1), dtype=np.int64)


SORTED_LOOKUP_KEYS = 1 << 20  # below: the keys fit the caches, queries as given are faster
SORTED_LOOKUP_QUERIES = 1 << 12


def search_sorted(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """`np.searchsorted(keys, queries)`, the same answer. Against millions of keys the
    queries are looked up in their own sorted order (then put back): each lookup then starts
    where the last one ended in memory, instead of a cache miss at every step (10M keys,
    1.25M queries: 2.6 s looked up as given, 0.25 s sorted first)."""
    if len(keys) < SORTED_LOOKUP_KEYS or len(queries) < SORTED_LOOKUP_QUERIES:
        return np.searchsorted(keys, queries)
    order = np.argsort(queries, kind="stable")
    found = np.searchsorted(keys, queries[order])
    out = np.empty_like(found)
    out[order] = found
    return out


def positions(keys: pd.Index, queries: np.ndarray) -> np.ndarray:
    """Index of each query in `keys` (unique int64; its hash table is built once), -1 if absent."""
    if len(keys) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    return keys.get_indexer(queries)



def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime): what tells a reload that a file changed; None when absent."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
