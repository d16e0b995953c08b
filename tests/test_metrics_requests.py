"""The API request metrics are tallied plainly and made into metrics at each scrape: what a
scrape shows is exactly what prometheus_client's own Counter and Histogram would show."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from campaign_dialer.monitor.metrics import LATENCY_BUCKETS, Metrics

REQUEST = st.tuples(
    st.sampled_from(["GET", "POST"]),
    st.sampled_from([None, 200, 201, 404, 409, 429, 500]),
    st.one_of(st.sampled_from(LATENCY_BUCKETS),
              st.floats(min_value=0, max_value=100, allow_nan=False)),
)


def _lines(text: bytes, prefix: str) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith(prefix)]


@settings(max_examples=60, deadline=None)
@given(st.lists(REQUEST, max_size=40))
def test_request_series_are_what_prometheus_own_types_give(requests: list) -> None:
    ours = Metrics("spring")
    registry = CollectorRegistry()
    counter = Counter("dialer_api_requests", "x", ["campaign", "method", "code"],
                      registry=registry)
    histogram = Histogram("dialer_api_request_seconds", "x", ["campaign", "method"],
                          buckets=LATENCY_BUCKETS, registry=registry)
    for method, status, seconds in requests:
        ours.request(method, status, seconds)
        counter.labels("spring", method, str(status) if status else "none").inc()
        histogram.labels("spring", method).observe(seconds)
    theirs = generate_latest(registry)
    mine = ours.exposition()
    for prefix in ("dialer_api_requests_total{", "dialer_api_request_seconds_"):
        assert _lines(mine, prefix) == _lines(theirs, prefix)
    assert b"# TYPE dialer_api_request_seconds histogram" in mine
    assert b"# TYPE dialer_api_requests_total counter" in mine
