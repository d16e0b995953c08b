"""The run's Prometheus metrics, in a registry of its own (never the library's global one).

Names follow Prometheus' rules: the `dialer_` prefix, base units (`_seconds`), `_total` for
counters, and labels of low cardinality only: campaign, agent, status, disposition, reason,
HTTP method and code, webhook result, caller-ID number id, budget unit. Never a phone
number, a contact id or a call id. The names are a public interface (README, dashboards).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from campaign_dialer.vocab import DISPOSITIONS

# The `_created` series double every counter for no reader of ours; this process serves only
# its own registry, so turning them off here changes nothing else.
prometheus_client.disable_created_metrics()

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# Round trips to the API: a few ms on loopback, up to the request timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DEFAULT_NUMBER = "agent_default"  # a call with no from_phone_number_id: the agent's own


class _WebhookCollector(Collector):
    """`dialer_webhook_events_total` from the receiver's own tally, read at each scrape."""

    def __init__(self, campaign: str) -> None:
        self.campaign = campaign
        self.source: Callable[[], Mapping[str, int]] | None = None

    def collect(self):  # type: ignore[no-untyped-def]
        fam = CounterMetricFamily(
            "dialer_webhook_events", "Webhook deliveries received, by what became of them.",
            labels=["campaign", "result"])
        for result, n in sorted(dict(self.source() if self.source else {}).items()):
            fam.add_metric([self.campaign, result], n)
        yield fam

    def describe(self):  # type: ignore[no-untyped-def]
        yield CounterMetricFamily("dialer_webhook_events", "", labels=["campaign", "result"])


class Metrics:
    """Every metric of one run; each method is one cheap in-memory update."""

    def __init__(self, campaign: str) -> None:
        self.campaign = campaign
        self.registry = r = CollectorRegistry()
        c = ["campaign"]
        self._placed = Counter("dialer_calls_placed", "Calls the platform accepted (201).",
                               [*c, "agent"], registry=r)
        self._final = Counter("dialer_calls_final", "Calls followed to a final status.",
                              [*c, "status"], registry=r)
        self._rows = Gauge("dialer_rows", "Input rows by their current fate.",
                           [*c, "disposition"], registry=r)
        self._held = Counter("dialer_held", "Rows held back at the moment of dialing, by reason.",
                             [*c, "reason"], registry=r)
        self._live = Gauge("dialer_live_calls", "Calls placed and not final yet (this process).",
                           c, registry=r)
        self._requests = Counter("dialer_api_requests", "Requests to the voice API by HTTP "
                                 "method and status code ('none': no answer).",
                                 [*c, "method", "code"], registry=r)
        self._latency = Histogram("dialer_api_request_seconds", "Time to the API's answer.",
                                  [*c, "method"], buckets=LATENCY_BUCKETS, registry=r)
        self._webhooks = _WebhookCollector(campaign)
        r.register(self._webhooks)
        self._caller_id = Counter("dialer_caller_id_calls", "Calls placed from each caller ID "
                                  f"(from_phone_number_id; '{DEFAULT_NUMBER}': none sent).",
                                  [*c, "number_id"], registry=r)
        self._spent = Gauge("dialer_budget_spent", "What the campaign has spent, per budget "
                            "unit: cost (report's currency), talk_seconds, calls_today.",
                            [*c, "unit"], registry=r)
        self._up = Gauge("dialer_up", "1 while the run is dialing or following calls.", c,
                         registry=r)
        # A request's two series by (method, status): `labels` validates and locks on every
        # call, and a run makes a few requests per call, so each child is looked up once.
        self._request_series: dict[tuple[str, int | None], tuple[Any, Any]] = {}
        for d in DISPOSITIONS:
            self._rows.labels(campaign, d).set(0)
        self._up.labels(campaign).set(0)
        self._live.labels(campaign).set(0)

    # -- the engine's hooks ---------------------------------------------------------------
    def placed(self, agent: str, number_id: str | None) -> None:
        self._placed.labels(self.campaign, agent).inc()
        self._caller_id.labels(self.campaign, number_id or DEFAULT_NUMBER).inc()

    def final(self, status: str) -> None:
        self._final.labels(self.campaign, status).inc()

    def held(self, reason: str) -> None:
        self._held.labels(self.campaign, reason).inc()

    def request(self, method: str, status: int | None, seconds: float) -> None:
        series = self._request_series.get((method, status))
        if series is None:
            series = self._request_series[(method, status)] = (
                self._requests.labels(self.campaign, method, str(status) if status else "none"),
                self._latency.labels(self.campaign, method),
            )
        series[0].inc()
        series[1].observe(seconds)

    def live_from(self, read: Callable[[], float]) -> None:
        self._live.labels(self.campaign).set_function(read)

    def webhooks_from(self, read: Callable[[], Mapping[str, int]]) -> None:
        self._webhooks.source = read

    def rows(self, by_disposition: Mapping[str, int]) -> None:
        for d in {*DISPOSITIONS, *by_disposition}:
            self._rows.labels(self.campaign, d).set(by_disposition.get(d, 0))

    def spent(self, figures: Mapping[str, float | None]) -> None:
        for unit in ("cost", "talk_seconds", "calls_today"):
            v = figures.get(unit)
            if v is not None:
                self._spent.labels(self.campaign, unit).set(v)

    def up(self, on: bool) -> None:
        self._up.labels(self.campaign).set(1 if on else 0)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return prometheus_client.generate_latest(self.registry)
