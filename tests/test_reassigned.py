"""Reassigned numbers: the FCC Reassigned Numbers Database (RND) answers decide whether a
consent grant still belongs to the person who has the number now."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_dialer.compliance import (
    CallingWindow,
    ComplianceError,
    ConsentLedger,
    DncList,
    Gate,
    ReassignedAnswers,
    day_ns,
    to_ns,
)

from .e2e_support import KEY, numbers, run_cli, write_campaign

NOW = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # MIDDAY; grants are at 2026-01-01T00:00Z


def _rnd(folder: Path, lines: list[str]) -> None:
    (folder / "rnd.csv").write_text(
        "phone,date_queried,result,queried_at\n" + "".join(f"{ln}\n" for ln in lines)
    )


def _campaign(tmp_path: Path, *, require: bool):  # type: ignore[no-untyped-def]
    p = numbers(4)
    compliance = "require_reassigned_check = true" if require else ""
    camp = write_campaign(
        tmp_path, contacts=[{"phone": x} for x in p], compliance=compliance,
    )
    text = camp.path.read_text().replace(
        'consent = "consent.csv"', 'consent = "consent.csv"\nreassigned = "rnd.csv"', 1
    )
    camp.path.write_text(text)
    national = f"({p[0][2:5]}) {p[0][5:8]}-{p[0][8:]}"  # the same spelling rules as DNC lists
    _rnd(tmp_path, [
        f"{national},2025-12-01,yes,2026-05-02T10:00:00Z",   # disconnected since before grant
        f"{p[1]},2026-01-01,no,2026-05-03T10:00:00Z",        # vouches for the grant
        f"{p[2]},2026-01-01,no data,2026-05-04T10:00:00Z",    # vouches for nothing
    ])
    return camp, p


def _sandbox():  # type: ignore[no-untyped-def]
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    return SandboxServer(SandboxConfig(
        api_keys=(KEY,), seed=3, time_scale=0.004, requests_per_second=40.0, max_live_calls=10,
    ))


@pytest.mark.e2e
def test_rnd_answers_decide_who_is_called(tmp_path: Path) -> None:
    camp, p = _campaign(tmp_path, require=False)
    with _sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(c["to"] for c in audit["calls"]) == sorted([p[1], p[2], p[3]])
    rows = {r["phone_e164"]: r for r in camp.results()}
    assert (rows[p[0]]["disposition"], rows[p[0]]["reason"]) == ("suppressed",
                                                                 "number_reassigned")
    assert rows[p[1]]["disposition"] == "dialed"
    assert rows[p[1]]["rnd_queried_at"] == "2026-05-03T10:00:00Z"
    assert rows[p[3]]["rnd_queried_at"] == ""
    header = list(camp.results()[0])
    assert header.index("rnd_queried_at") == header.index("agent_id") + 1
    html = (camp.out / "report.html").read_text(encoding="utf-8")
    assert "Reassigned Numbers Database query date" in html
    summary = (camp.out / "summary.json").read_text(encoding="utf-8")
    assert '"with_rnd_queried_at": 1' in summary  # the one vouched-for dialed row


@pytest.mark.e2e
def test_require_reassigned_check_holds_back_no_data_and_unchecked(tmp_path: Path) -> None:
    camp, p = _campaign(tmp_path, require=True)
    with _sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [c["to"] for c in audit["calls"]] == [p[1]]
    rows = {r["phone_e164"]: r for r in camp.results()}
    assert rows[p[0]]["reason"] == "number_reassigned"
    assert rows[p[2]]["reason"] == "reassigned_unchecked"
    assert rows[p[3]]["reason"] == "reassigned_unchecked"
    assert rows[p[1]]["rnd_queried_at"] == "2026-05-03T10:00:00Z"


def test_an_unreadable_rnd_answer_refuses_the_file_naming_row_and_column(
    tmp_path: Path,
) -> None:
    _rnd(tmp_path, ["+12125550100,2026-01-01,no,x", "+12125550101,2026-01-01,maybe,x"])
    with pytest.raises(ComplianceError) as e:
        ReassignedAnswers.load(tmp_path / "rnd.csv", default_region="US")
    assert "row 2" in str(e.value) and "'result'" in str(e.value)


def _gate(tmp_path: Path, lines: list[str], *, require: bool) -> Gate:
    (tmp_path / "c.csv").write_text(
        "phone,event,event_at\n+12125550100,grant,2026-01-10T12:00:00Z\n"
    )
    _rnd(tmp_path, lines)
    return Gate(
        dnc=DncList.load([], default_region="US"),
        consent=ConsentLedger.load(tmp_path / "c.csv", default_region="US"),
        window=CallingWindow(time(9), time(20)), require_consent=True,
        reassigned=ReassignedAnswers.load(tmp_path / "rnd.csv", default_region="US"),
        require_reassigned_check=require,
    )


@pytest.mark.parametrize(
    ("line", "require", "want"),
    [
        ("+12125550100,2026-01-10,yes,q", False, "number_reassigned"),  # same day: voids
        ("+12125550100,2026-01-10,no,q", True, None),                   # same day: vouches
        ("+12125550100,2026-01-11,no,q", True, "reassigned_unchecked"),  # after the grant
        ("+12125550100,2026-01-01,no_data,q", True, "reassigned_unchecked"),
        ("+12125550100,2026-01-01,no_data,q", False, None),
    ],
)
def test_the_dial_time_gate_applies_the_rnd_rule(
    tmp_path: Path, line: str, require: bool, want: str | None
) -> None:
    v = _gate(tmp_path, [line], require=require).check(
        phone_e164="+12125550100", contact_id=None, tz_hint=None, at=NOW
    )
    assert v.reason == want
    assert v.disposition == ("eligible" if want is None else "suppressed")


@given(
    grant_day=st.integers(0, 60),
    answers=st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from(["yes", "no", "no_data"])), max_size=4
    ),
    require=st.booleans(),
)
def test_rnd_rule_property(
    grant_day: int, answers: list[tuple[int, str]], require: bool
) -> None:
    import pandas as pd

    base = date(2026, 1, 1)
    frame = pd.DataFrame(
        [("+12125550100", base + timedelta(days=d), r, f"q{i}")
         for i, (d, r) in enumerate(answers)],
        columns=["phone", "date_queried", "result", "queried_at"],
    )
    rnd = ReassignedAnswers(Path("x"), frame)
    grant = datetime(2026, 1, 1, 15, tzinfo=UTC) + timedelta(days=grant_day)
    code, queried = rnd.decide(
        np.array([12125550100]), np.array([to_ns(grant)]), np.array([True]), require=require
    )
    any_yes = any(r == "yes" for _, r in answers)
    vouched = any(r == "no" and day_ns(base + timedelta(days=d)) <= to_ns(grant)
                  for d, r in answers)
    if any_yes:
        assert code[0] == 1  # never called on a grant from the number's previous owner
    elif require and not vouched:
        assert code[0] == 2
    else:
        assert code[0] == 0
        assert (queried[0] is not None) == vouched
