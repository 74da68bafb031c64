"""`lead`: the tracker runs only while this process leads, stops the moment it does not, and a
standby starts it once the leadership is free. Hand-written fake leadership; no database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.core.leadership import lead


class FakeLeadership:
    def __init__(self, *, free: bool = True) -> None:
        self.free = free
        self.held = False
        self.stepped_down = 0

    async def try_lead(self) -> bool:
        if self.held or self.free:
            self.held, self.free = True, False
        return self.held

    async def still_leading(self) -> bool:
        return self.held

    async def step_down(self) -> None:
        self.stepped_down += 1
        if self.held:
            self.held, self.free = False, True

    def lose(self) -> None:
        self.held = False


class Work:
    def __init__(self) -> None:
        self.starts = 0
        self.running = False
        self.cancelled = 0

    async def __call__(self) -> None:
        self.starts += 1
        self.running = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running = False


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_a_standby_starts_the_work_once_the_leadership_is_free() -> None:
    leadership, work = FakeLeadership(free=False), Work()
    runner = asyncio.create_task(lead(leadership, work, every=0.01))
    await asyncio.sleep(0.05)
    assert work.starts == 0
    leadership.free = True
    await until(lambda: work.running)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert work.cancelled == 1 and leadership.stepped_down == 1 and leadership.free


async def test_losing_the_leadership_stops_the_work_and_it_restarts_on_regaining_it() -> None:
    leadership, work = FakeLeadership(), Work()
    runner = asyncio.create_task(lead(leadership, work, every=0.01))
    await until(lambda: work.running)
    leadership.lose()
    await until(lambda: not work.running)
    assert work.cancelled == 1
    leadership.free = True  # the other process went away
    await until(lambda: work.starts == 2 and work.running)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_a_crash_of_the_work_steps_down_and_is_raised() -> None:
    leadership = FakeLeadership()

    async def crashing() -> None:
        raise RuntimeError("tracker bug")

    with pytest.raises(RuntimeError, match="tracker bug"):
        await lead(leadership, crashing, every=0.01)
    assert leadership.free and leadership.stepped_down == 1
