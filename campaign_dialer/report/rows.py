"""Which rows the page's table holds: every row up to a size a browser opens, above it the rows
a person must see and a seeded sample of the rest (issue #25, "a report that opens at a million
rows"). Tiles and charts never read this selection: they are computed from every row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from campaign_dialer import vocab

# Up to this many rows the page embeds every row, as before (a 100,000-row page is ~21 MB and
# opens in Chromium in a few seconds); above it, the selection below.
PAGE_ALL_ROWS_MAX = 100_000
# Above the threshold: at most this many rows a person must see (each kind keeps all its rows
# up to an equal share, so a rare kind such as errors is never thinned by a common one) ...
MUST_SEE_MAX = 25_000
# ... and a random sample of this many of the other rows, drawn with a fixed seed so the same
# results give the same page.
SAMPLE_ROWS = 20_000
SAMPLE_SEED = 25

# Why a row must be seen, by (disposition, reason). The reasons are vocab's words.
# Unresolved: the outcome of a call is not known (a person decides, `release`), or a call was
# live when the run stopped.
UNRESOLVED_REASONS = ("unresolved", "call_live")
# Opt-outs: the contacts file's own DNC checkbox, a local DNC list or the DNC ledger (opt-outs
# and 409s of earlier runs), consent revoked, the platform's DNC list (a 409).
OPT_OUT_REASONS = ("dnc_flag", *vocab.DNC_REASONS, "consent_revoked", *vocab.PLATFORM_REASONS)
# Held back for a reason a person can fix: the number (blank, invalid, none; reassigned to
# someone else: find the new one), consent (none on record, expired), the time zone (add a
# state, postal code or time zone column), the reassigned-numbers check not done, the caller-ID
# pool used up (add numbers), the budget reached (raise it), a DNC list too old (refresh it).
# Not here: duplicates, outside the calling window, recently called, redials waiting, paused or
# canceled campaigns and rows not planned yet: they need no one, or wait by design.
FIXABLE_REASONS = (
    "blank_phone", "invalid_phone", "no_phone_number", "number_reassigned",
    "no_consent", "consent_expired", "reassigned_unchecked", "unknown_timezone",
    *vocab.CALLER_ID_REASONS, "budget_reached", vocab.DNC_LIST_STALE,
)
MUST_SEE_REASONS = (*UNRESOLVED_REASONS, *OPT_OUT_REASONS, *FIXABLE_REASONS)
# Dispositions whose every row must be seen: errors and 409s.
MUST_SEE_DISPOSITIONS = (vocab.ERROR, vocab.REJECTED)

SHOWN_COLUMN = "shown"
MUST_SEE = "needs attention"
SAMPLED = "sample"


@dataclass
class Selection:
    """The rows the page holds (positions in the frame, in its order) and what they stand for."""

    positions: np.ndarray
    total: int
    reduced: bool = False
    must_see: int = 0  # rows that must be seen, in all
    must_see_shown: int = 0
    sampled: int = 0
    rest: int = 0  # the other rows, of which `sampled` are shown
    seed: int = SAMPLE_SEED
    must_see_max: int = MUST_SEE_MAX  # the caps this selection was drawn with
    sample_rows: int = SAMPLE_ROWS
    bytes_max: int | None = None  # the page's size limit, when it made the caps smaller
    # kind -> [shown, total] for every kind of must-see row
    kinds: dict[str, list[int]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)  # per shown row: MUST_SEE or SAMPLED

    def notice(self) -> dict[str, Any]:
        return {"reduced": self.reduced, "shown": int(len(self.positions)),
                "total": self.total, "must_see": self.must_see,
                "must_see_shown": self.must_see_shown, "sampled": self.sampled,
                "rest": self.rest, "seed": self.seed, "kinds": self.kinds,
                "threshold": PAGE_ALL_ROWS_MAX, "must_see_max": self.must_see_max,
                "sample_rows": self.sample_rows, "bytes_max": self.bytes_max,
                "unresolved_reasons": list(UNRESOLVED_REASONS),
                "opt_out_reasons": list(OPT_OUT_REASONS),
                "fixable_reasons": list(FIXABLE_REASONS)}


def _text(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series("", index=df.index, dtype="string")
    return df[col].astype("string").fillna("")


def must_see_kinds(df: pd.DataFrame, opt_out_outcomes: Iterable[str]) -> pd.Series:
    """Per row, why a person must see it ("" for none): "error: <reason>", "rejected (409):
    <reason>", "opt-out outcome: <outcome>" or "<disposition>: <reason>"."""
    disp = _text(df, "disposition")
    reason = _text(df, "reason")
    words = list(dict.fromkeys(opt_out_outcomes))
    kind = pd.Series("", index=df.index, dtype="string")
    held = reason.isin(MUST_SEE_REASONS) & disp.isin([vocab.SUPPRESSED, vocab.PENDING])
    kind = kind.mask(held, disp + ": " + reason)
    if words:
        # The call ended in an opt-out (outcome, ended reason or status), as the redial policy
        # reads it.
        hit = pd.Series(False, index=df.index)
        which = pd.Series("", index=df.index, dtype="string")
        for col in ("status", "ended_reason", "outcome"):
            v = _text(df, col)
            m = v.isin(words)
            which = which.mask(m, v)
            hit |= m
        kind = kind.mask(hit & kind.eq(""), "opt-out outcome: " + which)
    kind = kind.mask(disp.eq(vocab.REJECTED), "rejected (409): " + reason)
    kind = kind.mask(disp.eq(vocab.ERROR), "error: " + reason)
    return kind


def _kind_of(disp: str, reason: str, status: str, ended_reason: str, outcome: str,
             words: Sequence[str]) -> str:
    """`must_see_kinds` of one row (its text, "" for missing)."""
    kind = f"{disp}: {reason}" if (reason in MUST_SEE_REASONS and disp in (
        vocab.SUPPRESSED, vocab.PENDING)) else ""
    which, hit = "", False
    for v in (status, ended_reason, outcome):
        if v in words:
            which, hit = v, True
    if hit and not kind:
        kind = "opt-out outcome: " + which
    if disp == vocab.REJECTED:
        kind = "rejected (409): " + reason
    if disp == vocab.ERROR:
        kind = "error: " + reason
    return kind


KIND_COLUMNS = ("disposition", "reason", "status", "ended_reason", "outcome")


def kind_codes(df: pd.DataFrame, opt_out_outcomes: Iterable[str]) -> tuple[np.ndarray, list[str]]:
    """`pd.factorize(must_see_kinds(df, opt_out_outcomes))` (codes in the order of the rows,
    labels in the order they first appear), without a string per row: the rows are coded by
    their five columns' values, and each distinct combination's kind worked out once."""
    n = len(df)
    words = list(dict.fromkeys(opt_out_outcomes))
    combo = np.zeros(n, dtype=np.int64)
    for col in KIND_COLUMNS:
        codes = _value_codes(df, col)
        combo, _ = pd.factorize(combo * (int(codes.max(initial=0)) + 1) + codes)
    combos, first = np.unique(combo, return_index=True)
    texts = {c: _text(df.iloc[first], c).tolist() for c in KIND_COLUMNS}
    label_of: dict[str, int] = {}
    code_of_combo = np.empty(len(combos), dtype=np.int64)
    for k in range(len(combos)):  # combination k first appears before k + 1
        disp, reason, status, ended, outcome = (texts[c][k] for c in KIND_COLUMNS)
        kind = _kind_of(disp, reason, status, ended, outcome, words)
        code_of_combo[k] = label_of.setdefault(kind, len(label_of))
    return code_of_combo[combo], list(label_of)


def _value_codes(df: pd.DataFrame, col: str) -> np.ndarray:
    """A code per row for the column's value (missing: a code of its own)."""
    if col not in df.columns:
        return np.zeros(len(df), dtype=np.int64)
    codes, _ = pd.factorize(df[col], use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def fair_shares(counts: dict[str, int], budget: int) -> dict[str, int]:
    """Each kind keeps all its rows up to an equal share of `budget`; what a small kind leaves
    goes to the larger ones (water-filling)."""
    shares = dict.fromkeys(counts, 0)
    left = dict(counts)
    room = budget
    while left and room > 0:
        each = room // len(left)
        if each == 0:
            for k in sorted(left, key=lambda k: (-left[k], k))[:room]:
                shares[k] += 1
            break
        for k in list(left):
            take = min(left[k], each)
            shares[k] += take
            left[k] -= take
            room -= take
            if left[k] == 0:
                del left[k]
    return shares


def select_rows(
    df: pd.DataFrame, opt_out_outcomes: Sequence[str] = vocab.OPT_OUT_OUTCOMES, *,
    threshold: int | None = None, must_see_max: int | None = None,
    sample_rows: int | None = None, seed: int = SAMPLE_SEED,
) -> Selection:
    """The rows the page's table holds; the module's constants unless given."""
    threshold = PAGE_ALL_ROWS_MAX if threshold is None else threshold
    must_see_max = MUST_SEE_MAX if must_see_max is None else must_see_max
    sample_rows = SAMPLE_ROWS if sample_rows is None else sample_rows
    n = len(df)
    if n <= threshold:
        return Selection(np.arange(n), n)
    # each row's kind as a code into a few labels (a million rows: no sort of a million
    # strings, no comparison of every row's string per kind)
    codes, labels_of = kind_codes(df, opt_out_outcomes)
    code_of = {k: c for c, k in enumerate(labels_of)}
    rng = np.random.default_rng(seed)
    must = codes != code_of.get("", -2)
    per_code = np.bincount(codes[must], minlength=len(labels_of)) if must.any() else (
        np.zeros(len(labels_of), dtype=np.int64))
    counts = {k: int(per_code[code_of[k]]) for k in sorted(labels_of)  # np.unique's order
              if k and per_code[code_of[k]]}
    shares = fair_shares(counts, must_see_max)
    chosen = []
    for k in sorted(counts):
        where = np.flatnonzero(codes == code_of[k])
        if shares[k] < len(where):
            where = rng.choice(where, size=shares[k], replace=False)
        chosen.append(where)
    rest = np.flatnonzero(~must)
    sample = rng.choice(rest, size=min(sample_rows, len(rest)), replace=False)
    keep_must = np.concatenate(chosen) if chosen else np.array([], dtype=np.int64)
    positions = np.sort(np.concatenate([keep_must, sample]).astype(np.int64))
    is_must = np.zeros(n, dtype=bool)
    is_must[keep_must] = True
    labels = [MUST_SEE if m else SAMPLED for m in is_must[positions]]
    return Selection(
        positions, n, reduced=True, must_see=int(must.sum()), must_see_shown=len(keep_must),
        sampled=len(sample), rest=len(rest), seed=seed, must_see_max=must_see_max,
        sample_rows=sample_rows,
        kinds={k: [shares[k], counts[k]] for k in sorted(counts, key=lambda k: -counts[k])},
        labels=labels,
    )
