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
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True)

    strategy: Literal["input_order", "adaptive"] = "input_order"
    # People (a stable hash of campaign and person) dialed in input order under `adaptive`.
    holdout_share: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False, strict=False)] = 0.1
    # Learn one curve for everyone ("none") or let each area code's curve move away from it.
    split: Literal["none", "area_code"] = "none"
