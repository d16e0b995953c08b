"""The caller-ID benchmark's simulation, small: the real governor in it keeps its caps.

scripts/bench_caller_id.py drives the real claim, `CallerIds.request` and `check_health`
through a simulated clock against the sandbox's reputation model; this keeps it working and
checks, on 300 people over one simulated day at the default pace, what its figures rest on.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _bench() -> Any:
    path = REPO / "scripts" / "bench_caller_id.py"
    spec = importlib.util.spec_from_file_location("bench_caller_id", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_governor_keeps_its_caps_and_numbers_while_one_number_is_flagged(
    tmp_path: Path,
) -> None:
    bench = _bench()
    people = bench.phone_numbers(300)
    gov = bench.simulate("governor", people, 1, bench.DEFAULT_RATE, 1, tmp_path)
    single = bench.simulate("single", people, 1, bench.DEFAULT_RATE, 1, tmp_path)

    assert gov.calls > 300  # every person once, and redials
    assert set(gov.calls_by_number) <= {pn for pn, _ in bench.POOL}
    assert max(gov.max_24h_by_number.values()) <= 75
    assert max(gov.max_1h_by_number.values()) <= 20
    # At 2 calls/s the hour cap binds: rows wait (caller_ids_exhausted) instead of going out.
    assert gov.refused_caps > 0 and gov.pool_closed_h > 0
    assert gov.sticky_breaks == 0  # no number rested, so every redial shows the same number
    assert gov.flags == [] and gov.from_flagged == 0

    assert [f["number_id"] for f in single.flags] == ["pn_55ad12"]
    assert single.from_flagged > single.calls / 2
    assert gov.answer_rate > 2 * single.answer_rate
