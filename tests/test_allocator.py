"""Arrow's allocator is chosen when campaign_dialer is imported, before arrow loads: jemalloc
on Linux x86-64, handing freed pages back after 100 ms (docs/operations/large-lists.md);
the environment's own choice wins."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="jemalloc is chosen on Linux x86-64 only")

PROBE = ("import os, campaign_dialer, pyarrow as pa; "
         "print(pa.default_memory_pool().backend_name, os.environ['JE_ARROW_MALLOC_CONF'])")


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_arrow_allocates_from_jemalloc_that_hands_pages_back_soon() -> None:
    assert _probe() == ["jemalloc", "dirty_decay_ms:100,muzzy_decay_ms:0"]


def test_the_environments_choice_wins() -> None:
    assert _probe(ARROW_DEFAULT_MEMORY_POOL="system",
                  JE_ARROW_MALLOC_CONF="dirty_decay_ms:1000") == ["system",
                                                                  "dirty_decay_ms:1000"]
