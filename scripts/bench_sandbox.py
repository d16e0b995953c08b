"""How many requests per second the sandbox itself serves over loopback.

The dialer's benchmarks drive the sandbox at 100-200 requests/s; this measures the headroom.
Limits are switched off so only the server's own cost shows. Two placements are measured:
the server in its own process (the CLI, as the demo runs it) and in a thread of the client's
process (as the tests run it, sharing one GIL with the clients). Bounded in requests and time:
each phase stops at --requests or --phase-seconds, whichever comes first.

    .venv/bin/python scripts/bench_sandbox.py [--requests 1500] [--clients 4] [--concurrency 16]

The httpx clients cost more CPU than the server, so req/s served is mostly a client figure on a
2-core machine; the server's CPU time per request (read from /proc) and a lean asyncio-streams
client show the server's own capacity. Seen here: one httpx.AsyncClient with 32 requests in
flight fell to ~140 req/s with multi-second tails, against ~370 req/s at 1-4 in flight, so
keep a few requests in flight per client.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from campaign_dialer.sandbox import SandboxConfig, SandboxServer

REPO = Path(__file__).resolve().parents[1]

KEY = "vx_test_" + secrets.token_hex(10)  # any key will do: the server is started with it
AGENT = "agt_3d9b21"

Request = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def run_phase(url: str, make_request: Request, requests: int, clients: int,
                    concurrency: int, seconds: float) -> tuple[int, float, list[float]]:
    """Fire `requests` requests from a pool of clients; returns (done, elapsed, latencies)."""
    counter = itertools.count()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    pool = [
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEY}"}, trust_env=False,
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        for _ in range(clients)
    ]

    async def worker(n: int) -> None:
        client = pool[n % clients]
        while time.perf_counter() < deadline:
            i = next(counter)
            if i >= requests:
                return
            started = time.perf_counter()
            response = await make_request(client, i)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    finally:
        for client in pool:
            await client.aclose()
    elapsed = time.perf_counter() - started
    unexpected = {k: v for k, v in statuses.items() if k >= 300}
    if unexpected:
        print(f"    (unexpected statuses: {unexpected})")
    return len(latencies), elapsed, latencies


def process_cpu(pid: int) -> Callable[[], float] | None:
    """CPU seconds used so far by `pid` (Linux /proc), or None where /proc is missing."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


async def bench(url: str, args: argparse.Namespace, label: str,
                server_cpu: Callable[[], float] | None = None) -> dict[str, float]:
    numbers = itertools.count()
    ids: list[str] = []

    async def post(client: httpx.AsyncClient, i: int) -> httpx.Response:
        prefix = "1" if label == "process" else "2"
        body = {"agent_id": AGENT, "phone_number": f"+1{prefix}30{next(numbers):07d}"}
        response = await client.post("/v1/calls", json=body)
        if response.status_code == 201:
            ids.append(response.json()["data"]["id"])
        return response

    async def get(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get(f"/v1/calls/{ids[i % len(ids)]}")

    async def mixed(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await (post(client, i) if i % 4 == 0 else get(client, i))

    async def listing(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get("/v1/calls", params={"limit": 20})

    results: dict[str, float] = {}
    for name, fn in (("POST /v1/calls", post), ("GET /v1/calls/{id}", get),
                     ("mixed 1 POST : 3 GET", mixed), ("GET /v1/calls?limit=20", listing)):
        cpu_before = server_cpu() if server_cpu else 0.0
        done, elapsed, lat = await run_phase(url, fn, args.requests, args.clients,
                                             args.concurrency, args.phase_seconds)
        cpu_used = (server_cpu() - cpu_before) if server_cpu else 0.0
        rate = done / elapsed if elapsed else 0.0
        line = report(label, name, done, elapsed, lat)
        if cpu_used > 0 and done:
            per_request = cpu_used / done
            line += (f"  server CPU {per_request * 1e6:4.0f} us/req"
                     f" = {1 / per_request:5.0f} req/s/core")
            results[name + " capacity"] = 1 / per_request
        print(line)
        results[name] = rate
    return results


async def lean_phase(url: str, method: str, requests: int, connections: int,
                     seconds: float) -> tuple[int, float, list[float]]:
    """The same load from a minimal keep-alive HTTP/1.1 client on asyncio streams.

    httpx spends more CPU per request than the server does, so on 2 cores an httpx pool
    measures itself; this client costs little and shows what the server can serve.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    counter = itertools.count()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    auth = f"Authorization: Bearer {KEY}\r\n".encode()

    def request(i: int) -> bytes:
        if method == "GET":
            return b"GET /v1/calls?limit=1 HTTP/1.1\r\nHost: sandbox\r\n" + auth + b"\r\n"
        body = f'{{"agent_id":"{AGENT}","phone_number":"+1415{i:07d}"}}'.encode()
        return (b"POST /v1/calls HTTP/1.1\r\nHost: sandbox\r\n" + auth
                + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                i = next(counter)
                if i >= requests:
                    return
                started = time.perf_counter()
                writer.write(request(i))
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return len(latencies), time.perf_counter() - started, latencies


def report(label: str, name: str, done: int, elapsed: float, lat: list[float]) -> str:
    rate = done / elapsed if elapsed else 0.0
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms) if lat_ms else 0.0
    p99 = lat_ms[int(len(lat_ms) * 0.99) - 1] if lat_ms else 0.0
    return (f"  {label:8s} {name:24s} {done:5d} req in {elapsed:5.2f} s = {rate:6.0f} req/s"
            f"  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")


def start_subprocess() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "campaign_dialer.sandbox", "--port", "0", "--key", KEY,
         "--rps", "0", "--max-live", "0"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("sandbox listening on "):
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return proc, line.removeprefix("sandbox listening on ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per phase")
    parser.add_argument("--clients", type=int, default=4, help="httpx.AsyncClient pool size")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--phase-seconds", type=float, default=5.0, help="time cap per phase")
    args = parser.parse_args()
    print(f"sandbox throughput on {os.cpu_count()} cores, {args.requests} requests per phase, "
          f"{args.clients} clients, {args.concurrency} in flight, limits off")
    started = time.perf_counter()

    proc, url = start_subprocess()
    lean: dict[str, float] = {}
    try:
        separate = asyncio.run(bench(url, args, "process", process_cpu(proc.pid)))
        for method in ("POST", "GET"):
            done, elapsed, lat = asyncio.run(lean_phase(url, method, args.requests,
                                                        args.concurrency, args.phase_seconds))
            name = "POST /v1/calls" if method == "POST" else "GET /v1/calls?limit=1"
            print(report("lean", name, done, elapsed, lat))
            lean[method] = done / elapsed if elapsed else 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)

    config = SandboxConfig(api_keys=(KEY,), requests_per_second=None, max_live_calls=None)
    with SandboxServer(config) as sb:
        shared = asyncio.run(bench(sb.url, args, "thread"))

    mixed = "mixed 1 POST : 3 GET"
    print(f"summary: the server in its own process serves {lean['POST']:.0f} POST/s and "
          f"{lean['GET']:.0f} GET/s to a lean client; an httpx pool gets {separate[mixed]:.0f} "
          f"req/s (mixed) from it, or {shared[mixed]:.0f} req/s with the server in a thread of "
          f"the client process", end="")
    if mixed + " capacity" in separate:
        print(f"; server CPU per request ~{separate[mixed + ' capacity']:.0f} req/s per core",
              end="")
    print(f"; bench took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
