"""Helpers for the engine benchmark: campaign folders, the sandbox as a process, audit figures.

Nothing here imports the dialer: the benchmark judges the dialer by the sandbox's audit and by
the operating system's accounting of its CPU, not by anything the dialer says about itself.
"""

from __future__ import annotations

import bisect
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the one campaign-file writer lives with the tests
    sys.path.insert(0, str(REPO))
from tests.campaign_files import write_campaign_toml  # noqa: E402

PYTHON = sys.executable
AGENT = "agt_3d9b21"  # the agent every generated sandbox sub-account has
FROM_NUMBER_ID = "pn_55ad12"
NY_AREA_CODES = ("212", "718", "917", "646", "347", "929", "332")  # all America/New_York
CONSENT_AT = "2026-01-01T00:00:00Z"
CLOCK_START = "2026-06-09T17:00:00Z"  # a Tuesday, 13:00 in New York: inside the window
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- inputs ------------------------------------------------------------------------------


def phone_numbers(n: int, offset: int = 0) -> list[str]:
    """`n` distinct valid New York numbers (+1 AAA 555 XXXX), area codes interleaved."""
    cap = len(NY_AREA_CODES) * 10_000
    if offset + n > cap:
        raise ValueError(f"at most {cap} distinct numbers, asked for {offset + n}")
    out = []
    for i in range(offset, offset + n):
        area = NY_AREA_CODES[i % len(NY_AREA_CODES)]
        out.append(f"+1{area}555{i // len(NY_AREA_CODES):04d}")
    return out


def check_numbers_valid(numbers: Sequence[str]) -> None:
    import phonenumbers

    bad = [n for n in numbers if not phonenumbers.is_valid_number(phonenumbers.parse(n))]
    if bad:
        raise SystemExit(f"generated numbers phonenumbers calls invalid: {bad[:5]}")


@dataclass
class CampaignSpec:
    calls: int
    rate: float  # pacing.calls_per_second
    rps: float  # api.requests_per_second (the sandbox gets the same)
    max_live: int  # api.max_live_calls (the sandbox gets the same)
    poll_interval_s: float
    name: str = "bench-engine"


def write_campaign(folder: Path, spec: CampaignSpec) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    numbers = phone_numbers(spec.calls)
    check_numbers_valid(numbers)
    (folder / "contacts.csv").write_text("phone\n" + "".join(f"{n}\n" for n in numbers))
    (folder / "consent.csv").write_text(
        "phone,event,event_at,source\n"
        + "".join(f"{n},grant,{CONSENT_AT},bench-web-form\n" for n in numbers)
    )
    (folder / "dnc.csv").write_text("phone\n")
    return write_campaign_toml(folder / "campaign.toml", {
        "campaign": {"name": spec.name, "agent_id": AGENT, "from_phone_number_id": FROM_NUMBER_ID,
                     "default_region": "US"},
        "api": {
            "base_url": "http://127.0.0.1:9",  # replaced by --base-url
            "api_key_env": "VANTAX_API_KEY", "requests_per_second": spec.rps,
            "max_live_calls": spec.max_live, "request_timeout_s": 5,
            "poll_interval_s": spec.poll_interval_s,
        },
        "pacing": {"calls_per_second": spec.rate},
        "inputs": {"contacts": "contacts.csv", "dnc": ["dnc.csv"], "consent": "consent.csv"},
        "compliance": {"calling_window": ["09:00", "20:00"], "require_consent": True,
                       "dnc_ledger": "dnc-ledger.csv"},
        "output": {"dir": "out"},
    })


# ---- processes -----------------------------------------------------------------------------


def proc_cpu(pid: int) -> float | None:
    """user+sys CPU seconds of a live process (Linux /proc), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    busy = sum(ticks[:8]) - idle  # guest time is already counted in user
    return busy / CLK_TCK


def self_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class SandboxProcess:
    """`python -m campaign_dialer.sandbox` on a free loopback port, stopped on exit."""

    def __init__(self, *, key: str, rps: float, max_live: int, time_scale: float, seed: int,
                 log_path: Path) -> None:
        self.cmd = [
            PYTHON, "-m", "campaign_dialer.sandbox", "--host", "127.0.0.1", "--port", "0",
            "--key", key, "--rps", f"{rps:g}", "--max-live", str(max_live),
            "--time-scale", f"{time_scale:g}", "--seed", str(seed),
            "--retry-after", "fractional",
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        env = {k: v for k, v in os.environ.items() if k != "VANTAX_API_KEY"}
        self.proc = subprocess.Popen(
            self.cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
        )
        assert self.proc.stdout is not None
        found: list[str] = []

        def read_first_line() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            found.append(self.proc.stdout.readline())

        reader = threading.Thread(target=read_first_line, daemon=True)
        reader.start()
        reader.join(timeout=30)
        line = found[0] if found else ""
        if "listening on " not in line:
            self.__exit__(None, None, None)
            raise SystemExit(f"sandbox did not start (see {self.log_path}): {line!r}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float | None:
        return proc_cpu(self.pid)

    def health(self, client: httpx.Client) -> dict[str, Any]:
        return client.get(f"{self.url}/_sandbox/health").json()

    def audit(self) -> dict[str, Any]:
        with httpx.Client(trust_env=False, timeout=60) as client:
            return client.get(f"{self.url}/_sandbox/audit").json()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@dataclass
class Sample:
    t: float  # time.monotonic(), the same clock as the sandbox's audit
    dialer_cpu: float
    sandbox_cpu: float
    calls: int
    live: int


class Sampler(threading.Thread):
    """Once a second: the dialer's and the sandbox's CPU, calls placed and live calls."""

    def __init__(self, dialer_pid: int, sandbox: SandboxProcess, period: float = 1.0) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.dialer_pid = dialer_pid
        self.sandbox = sandbox
        self.period = period
        self.samples: list[Sample] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(trust_env=False, timeout=5) as client:
            while not self._halt.is_set():
                cpu = proc_cpu(self.dialer_pid)
                try:
                    h = self.sandbox.health(client)
                except (httpx.HTTPError, ValueError):
                    h = {}
                sb_cpu = self.sandbox.cpu()
                if cpu is not None:
                    self.samples.append(Sample(
                        time.monotonic(), cpu, sb_cpu or 0.0, int(h.get("calls", 0)),
                        int(h.get("live_calls", 0)),
                    ))
                self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


# ---- audit figures ---------------------------------------------------------------------------


def max_in_window(times: Sequence[float], width: float = 1.0) -> int:
    """The most events in any half-open window [t, t + width) over sorted `times`."""
    best = 0
    lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@dataclass
class AuditFigures:
    calls: int = 0
    distinct_numbers: int = 0
    posts: int = 0
    posts_admitted: int = 0
    gets: int = 0
    requests: int = 0
    first_post: float = 0.0
    last_placed: float = 0.0
    first_placed: float = 0.0
    last_end: float = 0.0
    last_request: float = 0.0
    placement_rate: float = 0.0  # (calls - 1) / (last placed - first placed)
    mean_call_s: float = 0.0  # platform duration, placed -> ended, real seconds
    p95_call_s: float = 0.0
    rate_429_own: int = 0  # rate_limited with no fault injected: our own pacing
    live_429_own: int = 0  # concurrency_limited: we exceeded the live-call limit ourselves
    fault_429: int = 0
    other_errors: dict[str, int] = field(default_factory=dict)
    max_post_1s: int = 0
    max_req_1s: int = 0
    peak_live: int = 0
    by_decile: list[float] = field(default_factory=list)  # placement rate per tenth of calls
    gets_per_call: float = 0.0
    placed_times: list[float] = field(default_factory=list)


def analyse(audit: dict[str, Any]) -> AuditFigures:
    f = AuditFigures()
    reqs = audit["requests"]
    calls = audit["calls"]
    f.requests = len(reqs)
    f.calls = len(calls)
    f.distinct_numbers = len({c["to"] for c in calls})
    f.peak_live = int(audit["stats"]["peak_live_calls"])
    posts = [r for r in reqs if r["method"] == "POST" and r["path"] == "/v1/calls"]
    f.posts = len(posts)
    f.posts_admitted = sum(1 for r in posts if r["admitted"])
    f.gets = sum(1 for r in reqs if r["method"] == "GET")
    errors: dict[str, int] = {}
    for r in reqs:
        if r["status"] == 429:
            if "spurious_429" in (r["faults"] or []):
                f.fault_429 += 1
            elif r["error_code"] == "concurrency_limited":
                f.live_429_own += 1
            else:
                f.rate_429_own += 1
        elif r["status"] >= 300:
            key = f"{r['method']} {r['status']} {r['error_code'] or ''}".strip()
            errors[key] = errors.get(key, 0) + 1
    f.other_errors = errors
    admitted_posts = sorted(r["mono"] for r in posts if r["admitted"])
    admitted = sorted(r["mono"] for r in reqs if r["admitted"])
    f.max_post_1s = max_in_window(admitted_posts)
    f.max_req_1s = max_in_window(admitted)
    if posts:
        f.first_post = min(r["mono"] for r in posts)
    if reqs:
        f.last_request = max(r["mono"] for r in reqs)
    placed = sorted(c["placed_mono"] for c in calls)
    f.placed_times = placed
    if placed:
        f.first_placed, f.last_placed = placed[0], placed[-1]
        f.last_end = max(c["ended_mono"] for c in calls)
        if len(placed) > 1 and placed[-1] > placed[0]:
            f.placement_rate = (len(placed) - 1) / (placed[-1] - placed[0])
        durs = sorted(c["ended_mono"] - c["placed_mono"] for c in calls)
        f.mean_call_s = statistics.fmean(durs)
        f.p95_call_s = durs[min(len(durs) - 1, int(0.95 * len(durs)))]
        f.gets_per_call = f.gets / len(calls)
        if len(placed) >= 20:
            edges = [round(i * (len(placed) - 1) / 10) for i in range(11)]
            for a, b in zip(edges, edges[1:], strict=False):
                span = placed[b] - placed[a]
                f.by_decile.append((b - a) / span if span > 0 else float("inf"))
    return f


def cpu_by_decile(samples: Sequence[Sample], placed: Sequence[float]) -> list[float]:
    """Dialer CPU (cores busy, 0..1 per core) while each tenth of the calls was being placed."""
    if len(placed) < 20 or len(samples) < 3:
        return []
    ts = [s.t for s in samples]

    def cpu_at(t: float) -> float:
        i = bisect.bisect_left(ts, t)
        if i <= 0:
            return samples[0].dialer_cpu
        if i >= len(samples):
            return samples[-1].dialer_cpu
        a, b = samples[i - 1], samples[i]
        w = (t - a.t) / (b.t - a.t) if b.t > a.t else 0.0
        return a.dialer_cpu + w * (b.dialer_cpu - a.dialer_cpu)

    out = []
    edges = [round(i * (len(placed) - 1) / 10) for i in range(11)]
    for a, b in zip(edges, edges[1:], strict=False):
        t0, t1 = placed[a], placed[b]
        out.append((cpu_at(t1) - cpu_at(t0)) / (t1 - t0) if t1 > t0 else float("nan"))
    return out


def iter_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue
