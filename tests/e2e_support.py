"""Helpers for end-to-end tests: campaigns on disk, the real CLI in a subprocess, the audit."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .campaign_files import merged, parse_snippet, write_campaign_toml

KEY = "vx_test_e2ekey000000000001"
AGENT = "agt_3d9b21"
# Tuesday 2026-06-09 17:00 UTC: 13:00 in New York, 10:00 in Los Angeles.
MIDDAY = "2026-06-09T17:00:00Z"
NIGHT = "2026-06-09T07:00:00Z"  # 03:00 in New York, 00:00 in Los Angeles


@dataclass
class CampaignFiles:
    folder: Path
    path: Path

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def results(self) -> list[dict[str, str]]:
        with open(self.out / "results.csv", encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


NEW_YORK_AREAS = ("212", "718", "917", "646", "347")


def numbers(n: int, areas: tuple[str, ...] = NEW_YORK_AREAS, start: int = 0) -> list[str]:
    """Distinct E.164 numbers in the fictional 555-01XX blocks of the given area codes."""
    out = []
    for i in range(start, start + n):
        area = areas[i // 100]
        out.append(f"+1{area}55501{i % 100:02d}")
    return out


def write_campaign(
    folder: Path,
    *,
    contacts: list[dict[str, str]],
    dnc: list[str] = (),  # type: ignore[assignment]
    consent: list[str] | None = None,
    name: str = "e2e",
    extra: str = "",
    api: str = "",
    pacing: str = "calls_per_second = 20",
    compliance: str = "",
) -> CampaignFiles:
    """consent=None grants consent to every contact's phone long before the test clock."""
    folder.mkdir(parents=True, exist_ok=True)
    header = list(contacts[0]) if contacts else ["phone"]
    with open(folder / "contacts.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(contacts)
    (folder / "dnc.csv").write_text("phone\n" + "".join(f"{d}\n" for d in dnc))
    if consent is None:
        consent = [c["phone"] for c in contacts if c.get("phone")]
    lines = ["phone,event,event_at,source"] + [
        f"{p},grant,2026-01-01T00:00:00Z,test" for p in consent
    ]
    (folder / "consent.csv").write_text("\n".join(lines) + "\n")
    extras = [parse_snippet(api, "api"), parse_snippet(pacing, "pacing"),
              parse_snippet(compliance, "compliance"), parse_snippet(textwrap.dedent(extra))]
    path = write_campaign_toml(folder / "campaign.toml", merged(e2e_sections(name), *extras))
    return CampaignFiles(folder, path)


def e2e_sections(name: str = "e2e") -> dict[str, dict[str, Any]]:
    """The e2e campaign before a test's changes: fast polls, a loopback API `--base-url`
    replaces, consent required, the ledger and results under the campaign's folder."""
    return {
        "campaign": {"name": name, "agent_id": AGENT, "default_region": "US"},
        "api": {
            "base_url": "http://127.0.0.1:9", "api_key_env": "VANTAX_API_KEY",
            "requests_per_second": 40, "max_live_calls": 10, "request_timeout_s": 2,
            "poll_interval_s": 0.2,
        },
        "pacing": {},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {
            "calling_window": ["09:00", "20:00"], "require_consent": True,
            "dnc_ledger": "dnc-ledger.csv",
        },
        "output": {"dir": "out"},
    }


def cli_env(clock: str | None = MIDDAY, key: str = KEY) -> dict[str, str]:
    # The test's own contact history (tests/conftest.py), never the user's.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAMPAIGN_DIALER_") or k == "CAMPAIGN_DIALER_HOME"}
    assert env.get("CAMPAIGN_DIALER_HOME"), "tests must run with their own contact history"
    env["VANTAX_API_KEY"] = key
    if clock:
        env["CAMPAIGN_DIALER_TEST_CLOCK"] = clock
    env.pop("FORCE_COLOR", None)
    return env


def run_cli(
    *args: str, clock: str | None = MIDDAY, key: str = KEY, timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "campaign_dialer.cli", *args],
        env=cli_env(clock, key), capture_output=True, text=True, timeout=timeout,
    )


def popen_cli(*args: str, clock: str | None = MIDDAY, key: str = KEY) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "campaign_dialer.cli", *args],
        env=cli_env(clock, key), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def assert_nobody_called_twice(audit: dict[str, Any]) -> Counter[str]:
    per_number = Counter(c["to"] for c in audit["calls"])
    twice = {n: k for n, k in per_number.items() if k > 1}
    assert not twice, f"numbers called more than once: {twice}"
    return per_number


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def wait_for_calls(sb: Any, n: int, timeout: float = 60.0) -> None:
    """Signals are tested once the run is dialing, not while Python is still importing."""
    deadline = time.monotonic() + timeout
    while len(sb.audit()["calls"]) < n:
        assert time.monotonic() < deadline, "the run placed no call"
        time.sleep(0.05)


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))
