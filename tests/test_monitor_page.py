"""The live page in headless Chromium while a run places calls: it changes, and no console
error, CSP violation or script exception is seen (skipped without chromium unless CI=true)."""

from __future__ import annotations

import json
import signal
import time
from importlib.resources import files
from pathlib import Path

import pytest

from .e2e_support import numbers, popen_cli, write_campaign
from .test_monitor_e2e import HAWAII, free_port, get, sandbox, wait_until_serving
from .test_report import Browser, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

FIGURES_JS = """JSON.stringify({
  updates: Number(document.body.dataset.updates),
  placed: document.getElementById('calls-placed').textContent,
  live: document.getElementById('live-calls').textContent,
  progress: document.getElementById('progress').textContent,
  campaign: document.getElementById('campaign').textContent,
  rows: document.getElementById('rows').rows.length,
})"""


def test_the_live_page_follows_a_run_without_console_errors(
    browser: Browser, tmp_path: Path,  # noqa: F811
) -> None:
    contacts = [{"phone": p, "name": f"<img src=x onerror=alert(1)> P{i}"}
                for i, p in enumerate([*numbers(30), HAWAII])]
    camp = write_campaign(tmp_path, contacts=contacts, name="live-page",
                          pacing="calls_per_second = 3", api="max_live_calls = 4")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with sandbox(time_scale=0.01) as sb:
        proc = popen_cli("run", str(camp.path), "--base-url", sb.url, "--wait",
                         "--serve", f"127.0.0.1:{port}")
        try:
            wait_until_serving(base, proc)
            status, headers, _ = get(base + "/")
            assert status == 200 and headers["content-type"].startswith("text/html")
            csp = headers["content-security-policy"]
            assert "default-src 'none'" in csp and "connect-src 'self'" in csp
            assert "script-src 'sha256-" in csp and "unsafe-eval" not in csp
            mark = len(browser.events)
            browser.call("Page.navigate", {"url": base + "/"})
            browser.wait_for("Page.loadEventFired", since=mark)
            seen: list[dict[str, object]] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                figures = json.loads(browser.js(FIGURES_JS))
                if figures["updates"]:
                    seen.append(figures)
                placed = {f["placed"] for f in seen}
                if len(placed) >= 3 and seen[-1]["placed"] == str(len(sb.audit()["calls"])) \
                        and len(sb.audit()["calls"]) == 30:
                    break
                time.sleep(0.3)
            browser.call("Page.navigate", {"url": "about:blank"})  # before the run ends
            browser.js("new Promise(r => setTimeout(r, 200))")
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert seen, "the page never drew the view"
    placed_values = [int(f["placed"]) for f in seen]  # type: ignore[call-overload]
    assert placed_values == sorted(placed_values), "calls placed only go up"
    assert len(set(placed_values)) >= 3, f"the page did not change while calls were placed: {seen}"
    assert seen[-1]["campaign"] == "live-page"
    assert any(not str(f["live"]).startswith("0 ") for f in seen), "no live call ever shown"
    assert browser.errors == []


def test_the_page_script_never_parses_data_as_html() -> None:
    script = (files("campaign_dialer.monitor") / "live.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
