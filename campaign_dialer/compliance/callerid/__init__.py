"""Caller IDs: which owned number a call shows. Pure (no network, no file writes, no store).

`rules`: the dated, cited table of state rules about showing a number local to the recipient.
"""

from __future__ import annotations

from campaign_dialer.compliance.callerid.rules import (
    ALLOWED,
    CALLER_ID_RULES_COLUMNS,
    CALLER_ID_RULES_MAX_AGE_DAYS,
    LOCAL_PRESENCE_VALUES,
    OFF,
    CallerIdRule,
    CallerIdRules,
    CallerIdRulesError,
    builtin_caller_id_rules,
    load_caller_id_rules,
    parse_caller_id_rules,
)

__all__ = [
    "ALLOWED",
    "CALLER_ID_RULES_COLUMNS",
    "CALLER_ID_RULES_MAX_AGE_DAYS",
    "LOCAL_PRESENCE_VALUES",
    "OFF",
    "CallerIdRule",
    "CallerIdRules",
    "CallerIdRulesError",
    "builtin_caller_id_rules",
    "load_caller_id_rules",
    "parse_caller_id_rules",
]
