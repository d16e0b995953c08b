"""Plan once (#25), end to end: a resumed run reads its plan back instead of planning again,
and a changed DNC list is planned again: its new number is never called."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

from .e2e_support import KEY, assert_nobody_called_twice, numbers, run_cli, write_campaign

pytestmark = pytest.mark.e2e


def sandbox() -> SandboxServer:
    return SandboxServer(SandboxConfig(
        api_keys=(KEY,), seed=3, time_scale=0.004, requests_per_second=40.0, max_live_calls=10,
    ))


def test_a_resumed_run_reuses_the_plan_and_a_changed_dnc_list_is_planned_again(
    tmp_path: Path,
) -> None:
    phones = numbers(40)
    camp = write_campaign(tmp_path, contacts=[{"phone": p} for p in phones],
                          pacing="calls_per_second = 2")
    with sandbox() as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url, "--max-duration", "1s")
        assert first.returncode == 75, first.stderr[-2000:]
        assert '"plan_made"' in first.stderr and '"plan_reused"' not in first.stderr
        resumed = run_cli("run", str(camp.path), "--base-url", sb.url, "--max-duration", "1s")
        assert resumed.returncode == 75, resumed.stderr[-2000:]
        assert '"plan_reused"' in resumed.stderr and '"plan_made"' not in resumed.stderr
        called = set(assert_nobody_called_twice(sb.audit()))
        late = [p for p in phones if p not in called][-3:]
        assert len(late) == 3
        with open(camp.folder / "dnc.csv", "a", encoding="utf-8") as f:
            f.writelines(f"{p}\n" for p in late)
        last = run_cli("run", str(camp.path), "--base-url", sb.url)
        audit = sb.audit()
    assert last.returncode == 0, last.stderr[-2000:]
    assert '"plan_made"' in last.stderr  # the DNC list changed: planned again
    per_number = assert_nobody_called_twice(audit)
    assert not set(per_number) & set(late)
    assert set(per_number) == set(phones) - set(late)
    rows = {r["phone_e164"]: r for r in camp.results()}
    for p in late:
        assert (rows[p]["disposition"], rows[p]["reason"]) == ("suppressed", "dnc_local")
    assert Counter(r["disposition"] for r in rows.values()) == {"dialed": 37, "suppressed": 3}


def test_a_resumed_run_writes_its_results_from_the_contacts_kept_with_its_plan(
    tmp_path: Path,
) -> None:
    """The first run keeps the contacts the results read beside its plan; both runs write
    results.csv from them: the bytes `results` writes from the contacts CSV (input columns a
    spreadsheet would run, quote or break on, an unreadable number included)."""
    phones = numbers(30)
    contacts = [{"phone": p, "Name": n, "Notes": note, "Company": "Acme, Inc."}
                for p, n, note in zip(phones, ["=HYPERLINK(\"x\")", "@sum", "Zoë"] * 10,
                                      ["two\r\nlines", "", 'say "hi"'] * 10, strict=True)]
    contacts.append({"phone": "555-01", "Name": "+cmd|' /C calc'!A0", "Notes": "bad number",
                     "Company": ""})
    camp = write_campaign(tmp_path, contacts=contacts, pacing="calls_per_second = 2")
    with sandbox() as sb:
        first = run_cli("run", str(camp.path), "--base-url", sb.url, "--max-duration", "1s")
        assert first.returncode == 75, first.stderr[-2000:]
        kept = list(camp.out.glob("*.journal.sqlite.contacts"))
        assert len(kept) == 1 and kept[0].stat().st_mode & 0o777 == 0o600
        resumed = run_cli("run", str(camp.path), "--base-url", sb.url, "--max-duration", "1s")
        assert resumed.returncode == 75, resumed.stderr[-2000:]
        assert '"plan_reused"' in resumed.stderr
        # both from the kept file: the first run's, once kept beside its calls
        assert '"contacts": "kept"' in resumed.stderr and '"contacts": "kept"' in first.stderr
        assert_nobody_called_twice(sb.audit())
    written = (camp.out / "results.csv").read_bytes()
    again = run_cli("results", str(camp.path))  # from the contacts CSV, read again
    assert again.returncode == 0, again.stderr[-2000:]
    assert (camp.out / "results.csv").read_bytes() == written
    rows = camp.results()
    assert len(rows) == 31 and rows[-1]["Name"] == "'+cmd|' /C calc'!A0"
    assert Counter(r["disposition"] for r in rows)["dialed"] >= 1
