"""The engine's lane: one worker thread, calls in the order asked, deferred writes included."""

from __future__ import annotations

import threading

import anyio
import pytest

from campaign_dialer.engine.io import Lane


def test_deferred_posted_and_awaited_calls_run_in_the_order_asked() -> None:
    done: list[str] = []
    threads: set[int] = set()

    def note(name: str) -> str:
        threads.add(threading.get_ident())
        done.append(name)
        return name

    async def main() -> None:
        lane = Lane()
        lane.defer(note, "a")
        lane.defer(note, "b")
        lane.post(note, "c")
        lane.defer(note, "d")
        assert await lane.run(note, "e") == "e"
        assert done == ["a", "b", "c", "d", "e"]

    anyio.run(main, backend="asyncio")
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_a_deferred_write_is_sent_on_its_own_within_defer_s() -> None:
    ran = threading.Event()

    async def main() -> None:
        lane = Lane()
        lane.defer(ran.set)
        assert not ran.is_set()  # held on the loop
        with anyio.fail_after(5):
            while not ran.is_set():
                await anyio.sleep(Lane.DEFER_S / 5)

    anyio.run(main, backend="asyncio")
    assert ran.is_set()


def test_a_failed_deferred_write_is_raised_by_the_next_call_and_the_rest_still_run() -> None:
    done: list[str] = []

    def fail() -> None:
        raise OSError("disk full")

    async def main() -> None:
        lane = Lane()
        lane.defer(fail)
        lane.defer(done.append, "after")
        await lane.run(lambda: None)  # sends the held writes ahead of itself
        with pytest.raises(OSError, match="disk full"):
            await lane.run(done.append, "next")
        assert done == ["after"]
        await lane.run(done.append, "then")  # raised once
        assert done == ["after", "then"]

    anyio.run(main, backend="asyncio")
