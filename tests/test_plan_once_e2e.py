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
