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
# Where a NANP number can be: the US states, DC and territories, and Canada's provinces and
# territories (the area-code table's codes). A typo ("NU" for NY is Nunavut; "NX" is nothing)
# would silently keep a number from ever being used.
NANP_REGIONS = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY "
    "PR GU VI AS MP "
    "AB BC MB NB NL NS NT NU ON PE QC SK YT".split()
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)


class PoolNumber(_Model):
    """One owned number: the platform's id (`from_phone_number_id`) and its E.164."""

    id: Annotated[str, Field(min_length=1, max_length=200)] = Field(description=(
        "The platform's phone-number id, sent as from_phone_number_id (pn_...)."))
    number: str = Field(description="Its E.164 number, e.g. \"+12125550100\".")
    states: list[str] | None = Field(default=None, description=(
        "Shown only to recipients in these US states (two letters); left out: anywhere."))

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
        bad = [s for s in v if s not in NANP_REGIONS]
        if bad:
            raise ValueError(f"{bad} are not US state (or Canadian province) codes, two "
                             "capital letters (e.g. \"NY\")")
        return v


Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=False)]


class CallerIdSection(_Model):
    """`[caller_id]`: a pool of owned numbers with per-number limits (see module doc)."""

    numbers: list[PoolNumber] = Field(description=(
        "The pool of owned numbers calls go out from, one table each: "
        "{ id = \"pn_...\", number = \"+1...\" }, optional states = [\"NY\"]."))
    max_calls_per_number_per_day: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=75, description=(
            "Calls from one number in a rolling 24 h, counted over every campaign and process "
            "sharing the contact history or the team database."))
    max_calls_per_number_per_hour: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=20, description="Calls from one number in a rolling 60 minutes, counted the same.")
    sticky: bool = Field(default=True, description=(
        "A person is called from the number that called them before (redials, other "
        "campaigns) unless it rests or left the pool; a person whose number is at its cap "
        "waits for it."))
    local_presence: bool = Field(default=False, description=(
        "Prefer a number with the recipient's area code, then one in their state, then any; "
        "never a number local to a recipient in a state whose rule is off."))
    health_window_calls: Annotated[int, Field(ge=5, le=10_000)] = Field(
        default=50, description="How many of a number's last finished calls its health judges.")
    min_answer_share: Share | None = Field(default=None, description=(
        "A number whose answered share (calls ended completed) falls below this rests; "
        "default: half the pool's median."))
    short_call_seconds: Annotated[float, Field(gt=0, le=600, allow_inf_nan=False,
                                               strict=False)] = Field(
        default=10.0, description="A connected call shorter than this counts against a number.")
    max_short_call_share: Share = Field(default=0.5, description=(
        "A number whose connected calls are short more often than this rests."))
    rest_days: Annotated[float, Field(gt=0, le=365, allow_inf_nan=False, strict=False)] = Field(
        default=30.0, description="How long a number the health rule takes out of use rests.")
    rules_file: Annotated[Path, Strict(False)] | None = Field(default=None, description=(
        "A team's own table of state rules on the number shown (the shipped "
        "caller_id_rules.csv format); it replaces the built-in one."))

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
