"""Do-Not-Call lists with a kind and a date: a national or state copy over 31 days old
stops the run before any call (16 CFR 310.4(b)(3)(iv)); `check` warns from 25 days on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_dialer.compliance import (
    DNC_MAX_AGE_DAYS,
    CallingWindow,
    DncList,
    DncListMeta,
    Gate,
)
from campaign_dialer.config import ConfigError, load_campaign

from .e2e_support import KEY, MIDDAY, numbers, run_cli, write_campaign

NOW = datetime(2026, 6, 9, 17, 0, tzinfo=UTC)  # MIDDAY


def _lists(as_of: str, kind: str = "national", state: str = "") -> str:
    st_line = f'state = "{state}"' if state else ""
    return f"""
        [[inputs.dnc_lists]]
        path = "national.csv"
        kind = "{kind}"
        {st_line}
        as_of = "{as_of}"
        """


def _campaign(  # type: ignore[no-untyped-def]
    tmp_path: Path, as_of: str, n: int = 3, listed: tuple[str, ...] = (), block: str | None = None
):
    """`block`: the `[[inputs.dnc_lists]]` entries as TOML text, instead of `_lists(as_of)`."""
    phones = numbers(n)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          extra=_lists(as_of) if block is None else block)
    (tmp_path / "national.csv").write_text("phone\n" + "".join(f"{p}\n" for p in listed))
    return camp, phones


def _sandbox():  # type: ignore[no-untyped-def]
    from campaign_dialer.sandbox import SandboxConfig, SandboxServer

    return SandboxServer(SandboxConfig(
        api_keys=(KEY,), seed=3, time_scale=0.004, requests_per_second=40.0, max_live_calls=10,
    ))


@pytest.mark.e2e
def test_a_stale_national_list_stops_the_run_with_78_before_any_call(tmp_path: Path) -> None:
    camp, _ = _campaign(tmp_path, "2026-05-01")  # 39 days before MIDDAY
    with _sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 78, proc.stderr[-2000:]
    assert audit["calls"] == []
    err = proc.stderr + proc.stdout
    assert "national.csv" in err and "39 days old" in err
    assert "inputs.dnc_lists[0]" in err


@pytest.mark.e2e
def test_a_fresh_national_list_is_dialed_against_and_named_with_its_date(
    tmp_path: Path,
) -> None:
    camp, phones = _campaign(tmp_path, "2026-06-01", listed=(numbers(3)[1],))
    with _sandbox() as sb:
        proc = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(c["to"] for c in audit["calls"]) == sorted([phones[0], phones[2]])
    rows = {r["phone_e164"]: r for r in camp.results()}
    assert rows[phones[1]]["reason"] == "dnc_local"
    dialed = rows[phones[0]]
    assert dialed["dnc_lists_checked"] == (
        "dnc.csv, national.csv (national, as of 2026-06-01), ledger"
    )
    html = (camp.out / "report.html").read_text(encoding="utf-8")
    assert "national.csv (national, as of 2026-06-01)" in html
    # and per row in the page's table, beside the row's fate
    from campaign_dialer import report
    from campaign_dialer.config import load_campaign

    table = report.table_data(report.load(load_campaign(camp.path)).df, None)
    at = {c: i for i, c in enumerate(table["columns"])}
    by_phone = {r[at["phone_e164"]]: r for r in table["rows"]}
    assert by_phone[phones[0]][at["dnc_lists_checked"]] == dialed["dnc_lists_checked"]


def test_check_warns_at_26_days_and_names_the_list(tmp_path: Path) -> None:
    camp, _ = _campaign(tmp_path, "2026-05-14")  # 26 days before MIDDAY
    proc = run_cli("check", str(camp.path), clock=MIDDAY)
    out = proc.stdout + proc.stderr
    assert "national.csv is 26 days old" in out, out[-2000:]
    assert "5 day(s) left" in out


def test_check_does_not_warn_at_24_days(tmp_path: Path) -> None:
    camp, _ = _campaign(tmp_path, "2026-05-16")  # 24 days
    proc = run_cli("check", str(camp.path), clock=MIDDAY)
    out = proc.stdout + proc.stderr
    assert "national, as of 2026-05-16 (24 days old)" in out  # the summary says its age
    assert not [ln for ln in out.splitlines() if ln.startswith("warning:") and "days old" in ln]


def _gate(tmp_path: Path, as_of: date, kind: str = "national") -> Gate:
    p = tmp_path / "l.csv"
    p.write_text("phone\n+12125550199\n")
    dnc = DncList.load(
        [p], default_region="US",
        meta=[DncListMeta(kind, "TX" if kind == "state" else None, as_of, key="k")],
    )
    window = CallingWindow(time(9), time(20))
    return Gate(dnc=dnc, consent=None, window=window, require_consent=False)


def test_the_dial_time_gate_holds_a_call_once_the_list_goes_stale(tmp_path: Path) -> None:
    gate = _gate(tmp_path, date(2026, 5, 9))  # 31 days at NOW: still fresh
    ok = gate.check(phone_e164="+12125550100", contact_id=None, tz_hint=None, at=NOW)
    assert ok.disposition == "eligible"
    assert "l.csv (national, as of 2026-05-09)" in ok.evidence["dnc_lists_checked"]
    later = gate.check(
        phone_e164="+12125550100", contact_id=None, tz_hint=None, at=NOW + timedelta(days=1)
    )
    assert (later.disposition, later.reason) == ("pending", "dnc_list_stale")
    assert "32 days old" in later.detail


@pytest.mark.parametrize("kind", ["internal", "vendor"])
def test_internal_and_vendor_lists_never_go_stale(tmp_path: Path, kind: str) -> None:
    gate = _gate(tmp_path, date(2025, 1, 1), kind)
    v = gate.check(phone_e164="+12125550100", contact_id=None, tz_hint=None, at=NOW)
    assert v.disposition == "eligible"


@given(age=st.integers(min_value=-5, max_value=400), kind=st.sampled_from(["national", "state"]))
def test_stale_exactly_when_older_than_31_days(age: int, kind: str) -> None:
    dnc = DncList.load([], default_region="US")
    dnc.meta = {"x.csv": DncListMeta(kind, "TX" if kind == "state" else None,
                                     NOW.date() - timedelta(days=age), key="k")}
    assert bool(dnc.stale(NOW)) == (age > DNC_MAX_AGE_DAYS)


def _toml(tmp_path: Path, block: str) -> Path:
    camp, _ = _campaign(tmp_path, "2026-06-01", block=block)
    return camp.path


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ('[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "national"\n', "as_of"),
        ('[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "state"\nas_of = "2026-06-01"\n',
         "state"),
        ('[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "federal"\nas_of = "2026-06-01"\n',
         "kind"),
        ('[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "national"\nas_of = "June 1"\n',
         "YYYY-MM-DD"),
        ('[[inputs.dnc_lists]]\npath = "nope.csv"\nkind = "internal"\n',
         "inputs.dnc_lists[0].path"),
    ],
)
def test_bad_dnc_list_entries_are_refused_naming_the_key(
    tmp_path: Path, block: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_campaign(_toml(tmp_path, block))
    assert needle in str(e.value)


def test_a_toml_date_and_a_state_list_are_accepted(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[[inputs.dnc_lists]]\npath = "national.csv"\nkind = "state"\n'
                           'state = "TX"\nas_of = 2026-06-01\n')
    c = load_campaign(path)
    assert c.dnc_paths[-1].name == "national.csv"
    key, section = c.dnc_lists[-1]  # type: ignore[misc]
    assert (key, section.state, section.as_of) == ("inputs.dnc_lists[0]", "TX", date(2026, 6, 1))
