"""The run's monitor: its metrics fed by the engine, the live page and `/metrics` served.

Off by default: `run --serve HOST:PORT` or `[monitor] listen` give it an address
(`RunOptions.monitor`). The metrics themselves are always counted (a few in-memory
increments per call); only the server is optional. When `[webhook]` listens on the same
host and port, the webhook's server serves the monitor's routes too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaign_dialer.clock import Clock
from campaign_dialer.config import Campaign, ConfigError
from campaign_dialer.monitor import Metrics, live_view
from campaign_dialer.monitor.server import CachedView, Listener, MonitorApp, listen
from campaign_dialer.store import JournalStore
from campaign_dialer.webhook import Served


class RunMonitor:
    """What the engine serves while it runs; made (and bound) before the first call. Given
    what it shows (the run's metrics, clock and expected call length), not the engine."""

    def __init__(
        self, campaign: Campaign, address: tuple[str, int],
        own_journal: Callable[[], JournalStore], *, metrics: Metrics, clock: Clock, log: Any,
        expected_call_s: float,
    ) -> None:
        self.campaign = campaign
        self.address = address
        self._own_journal = own_journal
        self.metrics = metrics
        self.clock = clock
        self.log = log
        self.expected_call_s = expected_call_s
        self.listener: Listener | None = None
        self._journal: Any = None

    def open(self, served: Served | None) -> Served | None:
        """Bind (in a worker thread). Returns the webhook's server (`served`), serving the
        monitor too, when both share an address; else None (the monitor has its own
        listener)."""
        host, port = self.address
        campaign = self.campaign
        # A connection of its own, read from worker threads: never the lane's, never the loop.
        self._journal = self._own_journal()
        view = CachedView(self._build, self._on_view)
        app = MonitorApp(metrics=self.metrics, view=view, campaign=campaign.name)
        hook = campaign.model.webhook
        if served is not None and hook is not None and (hook.host, hook.port) == (host, port):
            app.fallback = served.receiver
            self.log.info("monitor_listening", host=host, port=served.port, with_webhook=True)
            return Served(served.receiver, served.sock, app=app)
        try:
            sock = listen(host, port)
        except OSError as err:
            self.close()
            raise ConfigError(
                campaign.path, "monitor.listen",
                f"cannot listen on {host}:{port} for the monitor (--serve / [monitor] listen): "
                f"{err.strerror or err}",
            ) from None
        self.listener = Listener(app, sock)
        self.log.info("monitor_listening", host=host, port=self.listener.port,
                      with_webhook=False)
        return None

    def _build(self) -> dict[str, Any]:
        return live_view(self._journal, self.campaign.model, now=self.clock.now(),
                         expected_call_s=self.expected_call_s, running=True)

    def _on_view(self, view: dict[str, Any]) -> None:
        self.metrics.rows(view["progress"]["by_disposition"])
        if view["budget"] is not None:
            self.metrics.spent(view["budget"]["figures"])

    def close(self) -> None:
        if self.listener is not None:
            self.listener.sock.close()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
