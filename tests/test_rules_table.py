"""The state rules table carries its date as data; a team may ship its own, validated like
the built-in one; `check` warns when it is old and prints a compliance summary."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from campaign_dialer.compliance import (
    ComplianceError,
    builtin_state_rules,
    load_state_rules,
    max_calls_per_24h,
)

from .e2e_support import MIDDAY, numbers, run_cli, write_campaign

HEADER = "state,weekday,saturday,sunday,holiday,holidays,max_24h,source\n"


def test_the_builtin_table_date_is_read_from_the_file() -> None:
    text = (Path(__file__).resolve().parents[1] / "campaign_dialer/data/state_rules.csv"
            ).read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("# table_date:"))
    assert builtin_state_rules().table_date == date.fromisoformat(line.split()[2])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (HEADER + "FL,08:00-20:00,,,,,3,x\n", "table_date"),
        ("# table_date: 2026-01-01\n" + HEADER + "FL,8-20,,,,,3,x\n", "column 'weekday'"),
        ("# table_date: 2026-01-01\n" + HEADER + "Florida,08:00-20:00,,,,,3,x\n", "'state'"),
        ("# table_date: 2026-01-01\n" + HEADER + "FL,08:00-20:00,,,,xmas,3,x\n", "holiday"),
        ("# table_date: 2026-01-01\n" + HEADER + "FL,08:00-20:00,,,,,three,x\n", "max_24h"),
        ("# table_date: 2026-01-01\nstate,weekday\nFL,08:00-20:00\n", "missing column"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_what_is_wrong(
    tmp_path: Path, body: str, needle: str
) -> None:
    p = tmp_path / "rules.csv"
    p.write_text(body)
    with pytest.raises(ComplianceError) as e:
        load_state_rules(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def _campaign(tmp_path: Path, rules: str | None = None, extra: str = ""):  # type: ignore[no-untyped-def]
    compliance = 'rules_file = "rules.csv"' if rules is not None else ""
    if rules is not None:
        (tmp_path / "rules.csv").write_text(rules)
    return write_campaign(
        tmp_path, contacts=[{"phone": p} for p in numbers(2, areas=("305",))],
        compliance=compliance, extra=extra,
    )


def test_a_teams_rules_file_is_used_and_check_warns_when_it_is_old(tmp_path: Path) -> None:
    # 2025-11-01 is 220 days before MIDDAY (2026-06-09); Florida (305) capped at 2 calls/24 h
    rules = "# table_date: 2025-11-01\n" + HEADER + "FL,08:00-20:00,,,,,2,counsel\n"
    camp = _campaign(tmp_path, rules)
    proc = run_cli("check", str(camp.path), "--json", clock=MIDDAY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["compliance"]["rules"]["table_date"] == "2025-11-01"
    assert data["compliance"]["rules"]["age_days"] == 220
    assert any("220 days old" in w for w in data["warnings"])
    table = load_state_rules(tmp_path / "rules.csv")
    assert max_calls_per_24h("+13055550100", table) == 2
    assert max_calls_per_24h("+13055550100") == 3  # the built-in table


def test_check_prints_a_compliance_summary(tmp_path: Path) -> None:
    camp = _campaign(tmp_path, extra=(
        '[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "national"\nas_of = "2026-06-01"\n'
    ))
    (tmp_path / "national.csv").write_text("phone\n")
    proc = run_cli("check", str(camp.path), clock=MIDDAY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "DNC list national.csv: national, as of 2026-06-01 (8 days old)" in out
    assert "DNC list dnc.csv: internal" in out
    assert "consent sources: test (2)" in out
    assert "reassigned numbers: no RND answers given" in out
    assert f"table_date {builtin_state_rules().table_date}" in out
    assert "state rules table" not in out  # not old enough to warn
