"""Inputs as people really write them, found in review: each spelling is read, or the file is
refused naming file, row and column; never a revocation read as anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from campaign_dialer.compliance import ComplianceError, ConsentLedger

AT = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)


def test_consent_event_spellings_of_crm_exports(tmp_path: Path) -> None:
    p = tmp_path / "consent.csv"
    p.write_text(
        "phone,event,event_at\n"
        "2125550101,opt-in,2025-11-20T15:04:00Z\n"
        "2125550102,Granted,2025-11-20T15:04:00-05:00\n"
        "2125550103,Opt-In,2025-01-01T00:00:00Z\n"
        "2125550103,Opted Out,2025-06-01T00:00:00Z\n"
        "2125550104,granted,2025-01-01T00:00:00Z\n"
        "2125550104,REVOKE,2025-02-01T10:00:00Z\n"
        "2125550105,subscribed,2025-01-01T00:00:00Z\n"
        "2125550105,Unsubscribed,2025-03-01T00:00:00Z\n"
        "2125550106,opt_in,2025-01-01T00:00:00Z\n"
        "2125550106,OPT-OUT,2025-03-01T00:00:00Z\n"
    )
    led = ConsentLedger.load(p, default_region="US")

    def reason(n: int) -> str | None:
        return led.decide(phone_e164=f"+121255501{n:02d}", contact_id=None, at=AT).reason

    assert reason(1) is None and reason(2) is None
    assert [reason(n) for n in (3, 4, 5, 6)] == ["consent_revoked"] * 4


@pytest.mark.parametrize("word", ["maybe", "pending", "yes"])
def test_an_unknown_consent_event_refuses_the_file_naming_row_and_column(
    tmp_path: Path, word: str
) -> None:
    p = tmp_path / "consent.csv"
    p.write_text(f"phone,Action,event_at\n2125550101,grant,2025-01-01T00:00:00Z\n"
                 f"2125550102,{word},2025-01-01T00:00:00Z\n")
    with pytest.raises(ComplianceError) as e:
        ConsentLedger.load(p, default_region="US")
    assert "row 2" in str(e.value) and "Action" in str(e.value) and word in str(e.value)
