"""Caller IDs: which owned number a call shows. Pure (no network, no file writes, no store).

`rules`: the dated, cited table of state rules about showing a number local to the recipient;
`chooser`: the number a call shows (`choose_caller_id`); `health`: a pool's capacity and
whether a number should rest.
"""

from __future__ import annotations

from campaign_dialer.compliance.callerid.chooser import (
    CHOICE_REASONS,
    LOCAL_AREA_CODE,
    LOCAL_STATE,
    POOL,
    STICKY,
    Caps,
    Choice,
    Exhausted,
    PoolNumber,
    choose_caller_id,
    local_off_states,
    local_presence_allowed_for,
    recipient_states,
    shows_barred_local,
)
from campaign_dialer.compliance.callerid.health import (
    LOW_ANSWER_SHARE,
    REST_REASONS,
    SHORT_CALLS,
    FinishedCall,
    HealthThresholds,
    PoolCapacity,
    RestAdvice,
    answer_share,
    pool_capacity,
    rest_advice,
)
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
    "CHOICE_REASONS",
    "LOCAL_AREA_CODE",
    "LOCAL_PRESENCE_VALUES",
    "LOCAL_STATE",
    "LOW_ANSWER_SHARE",
    "OFF",
    "POOL",
    "REST_REASONS",
    "SHORT_CALLS",
    "STICKY",
    "CallerIdRule",
    "CallerIdRules",
    "CallerIdRulesError",
    "Caps",
    "Choice",
    "Exhausted",
    "FinishedCall",
    "HealthThresholds",
    "PoolCapacity",
    "PoolNumber",
    "RestAdvice",
    "answer_share",
    "builtin_caller_id_rules",
    "choose_caller_id",
    "local_off_states",
    "load_caller_id_rules",
    "local_presence_allowed_for",
    "parse_caller_id_rules",
    "pool_capacity",
    "recipient_states",
    "shows_barred_local",
    "rest_advice",
]
