"""Definitions every output of the report shares: labels, colours, what a row counts as."""

from __future__ import annotations

from typing import Any

import pandas as pd

from campaign_dialer.errors import DialerError
from campaign_dialer.exitcodes import ExitCode
from campaign_dialer.vocab import (
    HELD_PENDING_REASONS,
    NOT_CONNECTED_STATUSES,
)

SCHEMA_VERSION = 1


FEDERAL_WINDOW_MIN = (8 * 60, 21 * 60)


DEFINITIONS = {
    "rows": "data rows of the contacts file",
    "eligible": "rows the contacts, DNC, consent and calling-window checks let through "
                "(dialed, rejected by the platform, errored, or still waiting for a call)",
    "dialed": "rows whose call reached a final status",
    "connected": "dialed rows whose call completed, or that carry an outcome while their "
                 "status is not no_answer, busy, voicemail, failed or canceled",
    "outcomes": "dialed rows with an outcome recorded",
    "rejected": "rows the platform refused with 409 (its Do-Not-Call list)",
    "suppressed": "rows held back for good (bad or duplicate number, DNC, no consent, unknown "
                  "time zone, campaign canceled)",
    "errors": "rows whose call request failed for good",
    "pending": "rows left for a later run (window closed, redial due, call live, unresolved)",
    "calls_placed": "calls the platform accepted, redials included",
}


HEADLINE_LABELS = {
    "rows": "Rows", "eligible": "Eligible", "dialed": "Dialed", "connected": "Connected",
    "outcomes": "Outcomes", "rejected": "Rejected (409)", "suppressed": "Suppressed",
    "errors": "Errors", "pending": "Pending", "calls_placed": "Calls placed",
}


# On the terminal, connected and outcomes read as two parts of "dialed", not one of the other.
TERMINAL_LABELS = {**HEADLINE_LABELS, "connected": "  of which connected",
                   "outcomes": "  of which with an outcome"}


COLORS = {"dialed": "#2e7d32", "rejected": "#ef6c00", "suppressed": "#78909c",
          "error": "#c62828", "pending": "#1565c0", "bar": "#3b6ea5", "ref": "#c62828",
          "live": "#6a1b9a", "band": "#e8f5e9"}


FILES = ("report.html", "summary.json", "results.parquet")


class ReportError(DialerError):
    exit_code = ExitCode.DATAERR


class CompareError(DialerError):
    """Asked to compare what cannot be compared: the command line is at fault."""

    exit_code = ExitCode.USAGE


def text_of(s: pd.Series) -> pd.Series:
    """Missing as "" and everything else as str, so comparisons never meet NA."""
    if isinstance(s.dtype, pd.StringDtype):
        return s.fillna("").astype("str")
    return s.astype(object).where(s.notna(), "").astype("str")


def connected_mask(df: pd.DataFrame) -> pd.Series:
    """Rows where someone answered: the one definition the page, JSON and terminal use."""
    status = text_of(df["status"])
    outcome = text_of(df["outcome"])
    dialed = text_of(df["disposition"]).eq("dialed")
    return dialed & (status.eq("completed")
                     | (outcome.ne("") & ~status.isin(NOT_CONNECTED_STATUSES)))


def held_mask(df: pd.DataFrame) -> pd.Series:
    """Rows the checks held back (or never planned): the complement of eligible."""
    disp = text_of(df["disposition"])
    reason = text_of(df["reason"])
    return disp.eq("suppressed") | (disp.eq("pending") & reason.isin(HELD_PENDING_REASONS))


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


NONE_LABELS = {"(none)": "No outcome reported", "": "No outcome reported"}


CODE_LABELS = {
    "dnc_local": "On a local DNC list", "dnc_listed": "On the platform's DNC list",
    "outside_window": "Outside the calling window", "unknown_timezone": "Time zone unknown",
    "recently_called": "Called recently by another campaign", "not_planned": "Not planned yet",
    "invalid_phone": "Invalid phone number", "blank_phone": "No phone number",
    "no_phone_number": "No phone number (contact id only)", "duplicate": "Duplicate number",
    "no_answer": "No answer", "dialed": "Dialed", "error": "Error",
    "number_reassigned": "Number reassigned since consent (RND)",
    "reassigned_unchecked": "Consent not vouched for by an RND check",
}


def label(code: Any) -> str:
    """`appointment_booked` -> "Appointment booked"; the code stays in filters and exports."""
    text = "" if code is None else str(code)
    if text in NONE_LABELS:
        return NONE_LABELS[text]
    if text in CODE_LABELS:
        return CODE_LABELS[text]
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else text


def ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None
