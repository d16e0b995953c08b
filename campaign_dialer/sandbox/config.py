"""Settings of one sandbox run.

Everything that makes a run reproducible (seed, fault rates, time scale, limits) lives here so a
test can name the exact world it plays against, and a failing run can be replayed.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from campaign_dialer.sandbox.figures import FIGURES

if TYPE_CHECKING:
    from campaign_dialer.sandbox.data import SubAccountData

RetryAfterMode = Literal["fractional", "integer", "absent", "mixed"]
RETRY_AFTER_MODES: tuple[str, ...] = ("fractional", "integer", "absent", "mixed")

#: Every fault the sandbox can inject; each has its own rate (0..1) and its own random stream.
FAULTS: dict[str, str] = {
    "server_error": "POST /v1/calls answers 500/502/503 with an HTML body; nothing is placed",
    "drop_after_place": "the call is placed and its idempotency record kept, then the "
    "connection drops mid-response",
    "slow": "the call is placed, then the response waits slow_seconds while the "
    "Idempotency-Key is in flight",
    "spurious_429": "429 rate_limited although under every limit",
    "get_error": "GET /v1/calls/{id} answers 500/502/503",
    "unknown_fields": "success responses carry extra fields in the envelope and in CALL",
    "unknown_status": "a call passes through an undocumented non-terminal status "
    "(queued, dialing, ...)",
    "webhook_duplicate": "a webhook event is delivered twice",
    "webhook_reorder": "a webhook event is held back and delivered after the next one",
    "webhook_delay": "a webhook event is delivered webhook_delay_seconds late (others go on)",
    "webhook_lost": "a webhook event is never delivered",
    "from_substitute": "the call is placed from another owned number than the one asked for "
    "(its `from` says which; the audit's from_phone_number_id_used too)",
}


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that never leave the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class SandboxConfig:
    """One simulated Vantax sub-account: its keys, limits, clock speed and faults."""

    api_keys: tuple[str, ...] = ("vx_test_sandbox-local",)  # a fake, loopback-only key
    seed: int = 0
    #: Real seconds per simulated second: 0.002 turns a 3-minute call into ~360 ms.
    time_scale: float = 0.002
    #: Admitted requests in any sliding 1-second window (POST and GET together); None = no limit.
    requests_per_second: float | None = 10.0
    #: Non-terminal calls at once; None = no limit.
    max_live_calls: int | None = 20
    retry_after: RetryAfterMode = "mixed"
    #: Fault name -> rate in 0..1; see FAULTS.
    faults: dict[str, float] = field(default_factory=dict)
    #: Seed of the fault streams; None = use `seed`.
    fault_seed: int | None = None
    #: How long the `slow` fault holds its response (longer than a client's timeout).
    slow_seconds: float = 15.0
    #: Real seconds every POST /v1/calls spends "in flight" before it is decided (0 = none).
    post_latency: float = 0.0
    data: SubAccountData | None = None
    data_file: Path | None = None
    audit_path: Path | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    #: (lo, hi): every call lasts lo..hi simulated seconds, placement to final status; None:
    #: each kind of call its own typical length (a failed call a few seconds). The reputation
    #: model's quick hang-ups (2-8 s) ignore the lower bound.
    call_seconds: tuple[float, float] | None = None
    #: How late the `webhook_delay` fault delivers an event (real seconds).
    webhook_delay_seconds: float = 2.0
    #: A call that ends with the person asking not to be called puts the number on the DNC list.
    dnc_on_opt_out: bool = True
    #: Idempotency records are kept this long (seconds of real time).
    idempotency_ttl: float = 24 * 3600.0
    #: The caller-ID reputation model (sandbox/reputation.py; figures and sources in FIGURES).
    reputation: bool = False
    #: An answer curve by the recipient's local weekday and hour (sandbox/answer_curve.py).
    answer_curve: Path | None = None
    #: The instant (ISO 8601) the curve's clock reads when the sandbox starts; None: the machine's.
    answer_clock: str | None = None
    #: Calls from one number in a rolling 24 simulated hours past which it is flagged.
    flag_calls_per_day: int = int(FIGURES["flag_calls_per_day"].value)
    #: Share of short calls among a number's last `flag_window` connected calls that flags it.
    flag_short_share: float = FIGURES["flag_short_share"].value
    #: A connected call shorter than this many simulated seconds is short.
    short_call_seconds: float = FIGURES["short_call_seconds"].value
    flag_window: int = int(FIGURES["flag_window"].value)
    #: A flagged number's calls are answered with this times the normal probability.
    flagged_answer_factor: float = FIGURES["flagged_answer_factor"].value
    #: Simulated days a flag lasts.
    flag_days: float = FIGURES["flag_days"].value
    #: Calls from one number to one person in 24 simulated hours they tolerate...
    repeat_calls_tolerated: int = int(FIGURES["repeat_calls_tolerated"].value)
    #: ...and the answer factor of the ones after (who answers them hangs up within seconds).
    repeat_answer_factor: float = FIGURES["repeat_answer_factor"].value

    def __post_init__(self) -> None:
        if isinstance(self.api_keys, str):
            self.api_keys = (self.api_keys,)
        self.api_keys = tuple(self.api_keys)
        if not self.api_keys or not all(isinstance(k, str) and k for k in self.api_keys):
            raise ValueError("api_keys must hold at least one non-empty key")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError("time_scale must be a positive number")
        if not (self.idempotency_ttl >= 0 and math.isfinite(self.idempotency_ttl)):
            raise ValueError("idempotency_ttl must be a number of seconds, 0 or more")
        rps = self.requests_per_second
        if rps is not None and not rps > 0:
            raise ValueError("requests_per_second must be positive (or None for no limit)")
        if self.max_live_calls is not None and self.max_live_calls < 1:
            raise ValueError("max_live_calls must be at least 1 (or None for no limit)")
        if self.retry_after not in RETRY_AFTER_MODES:
            raise ValueError(f"retry_after must be one of {', '.join(RETRY_AFTER_MODES)}")
        self.faults = dict(self.faults)
        for name, rate in self.faults.items():
            if name not in FAULTS:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"fault {name} rate must be within 0..1, got {rate}")
            self.faults[name] = float(rate)
        if self.slow_seconds < 0 or self.post_latency < 0 or self.webhook_delay_seconds < 0:
            raise ValueError(
                "slow_seconds, post_latency and webhook_delay_seconds must not be negative"
            )
        self._check_reputation()
        if self.call_seconds is not None:
            lo, hi = self.call_seconds
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError("call_seconds must be (lo, hi) with 0 < lo <= hi")
            self.call_seconds = (float(lo), float(hi))
        if self.data is not None and self.data_file is not None:
            raise ValueError("give data or data_file, not both")
        if self.data_file is not None:
            self.data_file = Path(self.data_file)
        if self.audit_path is not None:
            self.audit_path = Path(self.audit_path)
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not is_loopback_host(parts.hostname or ""):
                raise ValueError("webhook_url must be an http(s) URL on a loopback address")
            if not self.webhook_secret:
                raise ValueError("webhook_url needs a webhook_secret to sign deliveries")

    def _check_reputation(self) -> None:
        for name in ("flag_calls_per_day", "flag_window", "repeat_calls_tolerated"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number, 1 or more")
        for name in ("flag_short_share", "flagged_answer_factor", "repeat_answer_factor"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
            setattr(self, name, value)
        for name in ("short_call_seconds", "flag_days"):
            value = float(getattr(self, name))
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value}")
            setattr(self, name, value)
