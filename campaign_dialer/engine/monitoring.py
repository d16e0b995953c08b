"""The run's monitor: its metrics fed by the engine, the live page and `/metrics` served.

Off by default: `run --serve HOST:PORT` or `[monitor] listen` give it an address
(`RunOptions.monitor`). The metrics themselves are always counted (a few in-memory
increments per call); only the server is optional. When `[webhook]` listens on the same
host and port, the webhook's server serves the monitor's routes too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from campaign_dialer.config import ConfigError
from campaign_dialer.monitor import live_view
from campaign_dialer.monitor.server import CachedView, Listener, MonitorApp, listen
from campaign_dialer.store import JournalStore
from campaign_dialer.webhook import Served

if TYPE_CHECKING:
    from .run import Engine


class RunMonitor:
    """What the engine serves while it runs; made (and bound) before the first call."""

    def __init__(self, engine: Engine, address: tuple[str, int],
                 own_journal: Callable[[], JournalStore]) -> None:
        self.engine = engine
        self.address = address
        self._own_journal = own_journal
        self.listener: Listener | None = None
        self._journal: Any = None

    def open(self) -> Served | None:
        """Bind (in a worker thread). Returns the webhook's server, serving the monitor too,
        when both share an address; else None (the monitor has its own listener)."""
        e = self.engine
        host, port = self.address
        # A connection of its own, read from worker threads: never the lane's, never the loop.
        self._journal = self._own_journal()
        view = CachedView(self._build, self._on_view)
        app = MonitorApp(metrics=e.metrics, view=view, campaign=e.campaign.name)
        hook = e.cfg.webhook
        if e.served is not None and hook is not None and (hook.host, hook.port) == (host, port):
            app.fallback = e.served.receiver
            e.log.info("monitor_listening", host=host, port=e.served.port, with_webhook=True)
            return Served(e.served.receiver, e.served.sock, app=app)
        try:
            sock = listen(host, port)
        except OSError as err:
            self.close()
            raise ConfigError(
                e.campaign.path, "monitor.listen",
                f"cannot listen on {host}:{port} for the monitor (--serve / [monitor] listen): "
                f"{err.strerror or err}",
            ) from None
        self.listener = Listener(app, sock)
        e.log.info("monitor_listening", host=host, port=self.listener.port, with_webhook=False)
        return None

    def _build(self) -> dict[str, Any]:
        e = self.engine
        return live_view(self._journal, e.cfg, now=e.clock.now(),
                         expected_call_s=e.expected_call_s, running=True)

    def _on_view(self, view: dict[str, Any]) -> None:
        e = self.engine
        e.metrics.rows(view["progress"]["by_disposition"])
        if view["budget"] is not None:
            e.metrics.spent(view["budget"]["figures"])

    def close(self) -> None:
        if self.listener is not None:
            self.listener.sock.close()
        if self._journal is not None:
            self._journal.close()
            self._journal = None
