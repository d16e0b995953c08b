"""The `[caller_id]` section: the pool of owned numbers calls go out from, and its limits.

One number carrying a whole campaign is labelled "Spam Likely" within hours by the carriers'
analytics engines (Hiya, First Orion, TNS), and then nobody answers. The governor spreads
calls over a pool, caps each number per rolling hour and day (counted over every campaign
and process sharing the contact history), keeps the same number for the same person, and
rests a number whose calls stop being answered. These keys are a public interface.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
STATE = re.compile(r"^[A-Z]{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


class PoolNumber(_Model):
    """One owned number: the platform's id (`from_phone_number_id`) and its E.164."""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    number: str
    # Where this number may be shown: recipients in these US states only (None: anywhere).
    states: list[str] | None = None

    @field_validator("number")
    @classmethod
    def _e164(cls, v: str) -> str:
        if not E164.fullmatch(v):
            raise ValueError(f"{v!r} is not an E.164 number (e.g. \"+12125550100\")")
        return v

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("name at least one state, or leave the key out (anywhere)")
        bad = [s for s in v if not STATE.fullmatch(s)]
        if bad:
            raise ValueError(f"{bad} are not two-letter US state codes (e.g. \"NY\")")
        return v


Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=False)]


class CallerIdSection(_Model):
    """`[caller_id]`: a pool of owned numbers with per-number limits (see module doc)."""

    numbers: list[PoolNumber]
    # Rolling 24 h and rolling 60 min, every campaign and process of the history counted.
    max_calls_per_number_per_day: Annotated[int, Field(ge=1, le=100_000)] = 75
    max_calls_per_number_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 20
    sticky: bool = True
    local_presence: bool = False
    # Health: over a number's last `health_window_calls` finished calls.
    health_window_calls: Annotated[int, Field(ge=5, le=10_000)] = 50
    min_answer_share: Share | None = None  # default: half the pool's median answered share
    short_call_seconds: Annotated[float, Field(gt=0, le=600, allow_inf_nan=False,
                                               strict=False)] = 10.0
    max_short_call_share: Share = 0.5
    rest_days: Annotated[float, Field(gt=0, le=365, allow_inf_nan=False, strict=False)] = 30.0
    # A team's own table of state rules on the number shown (the shipped format).
    rules_file: Annotated[Path, Strict(False)] | None = None

    @field_validator("numbers")
    @classmethod
    def _distinct(cls, v: list[PoolNumber]) -> list[PoolNumber]:
        if not v:
            raise ValueError("name at least one number: { id = \"pn_...\", number = \"+1...\" }")
        for what, values in (("id", [n.id for n in v]), ("number", [n.number for n in v])):
            twice = sorted({x for x in values if values.count(x) > 1})
            if twice:
                raise ValueError(f"a number's {what} is listed twice: {twice}")
        return v

    @model_validator(mode="after")
    def _caps(self) -> CallerIdSection:
        if self.max_calls_per_number_per_hour > self.max_calls_per_number_per_day:
            raise ValueError(
                "max_calls_per_number_per_hour exceeds max_calls_per_number_per_day"
            )
        return self

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.numbers)

    @property
    def daily_capacity(self) -> int:
        """Calls a day the whole pool may carry (no rests)."""
        return len(self.numbers) * self.max_calls_per_number_per_day
