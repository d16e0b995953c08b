"""The `[schedule]` section: in which order the rows the gate allows are dialed (issue 27).

`input_order` (the default) is the behaviour every campaign had before: the first eligible row
of the file first. `adaptive` dials first the row whose recipient is most likely to answer at
their local hour now, learned from the contact history, while a stable `holdout_share` of
people keeps input order so the gain can be measured. These keys are a public interface.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ScheduleSection(BaseModel):
    """`[schedule]`: the order in which the rows the gate allows are dialed."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    strategy: Literal["input_order", "adaptive"] = Field(default="input_order", description=(
        "input_order: the file's order (as before); adaptive: the open row most likely to be "
        "answered at its local hour now, learned from the contact history (Thompson sampling), "
        "rows short of time first."))
    holdout_share: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False, strict=False)] = (
        Field(default=0.1, description=(
            "Under adaptive: this share of people (a stable hash of campaign and person) is "
            "dialed in input order, so the report can measure the gain.")))
    split: Literal["none", "area_code"] = Field(default="none", description=(
        "none: one learned curve for everyone; area_code: each area code's curve may move "
        "away from the pooled one."))
