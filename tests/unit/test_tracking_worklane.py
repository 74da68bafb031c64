"""The post-defer work lane: acknowledgements first, bounded, first come first served."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.discord_ui import worklane
from bot.discord_ui.worklane import WorkLane


class FakeResponse:
    def __init__(self) -> None:
        self.done = False

    def is_done(self) -> bool:
        return self.done


class FakeInteraction:
    def __init__(self, n: int) -> None:
        self.id = n
        self.response = FakeResponse()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_work_waits_while_an_acknowledgement_is_pending() -> None:
    lane = WorkLane(size=4)
    waiting = [FakeInteraction(n) for n in range(3)]
    for i in waiting:
        await lane.arrived(i)  # type: ignore[arg-type]
    started: list[int] = []

    async def command(n: int) -> None:
        await lane.enter()
        started.append(n)

    tasks = [asyncio.create_task(command(n)) for n in range(2)]
    await settle()
    assert started == []  # three interactions still wait for their defers
    for i in waiting[:2]:
        i.response.done = True
    await settle()
    assert started == []
    waiting[2].response.done = True
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert started == [0, 1]  # in arrival order


async def test_at_most_size_commands_work_at_once_and_each_gets_a_turn() -> None:
    lane = WorkLane(size=3)
    busy = 0
    most = 0
    order: list[int] = []

    async def command(n: int) -> None:
        nonlocal busy, most
        await lane.enter()
        try:
            busy += 1
            most = max(most, busy)
            order.append(n)
            await asyncio.sleep(0.01)
        finally:
            busy -= 1
            lane.leave()

    await asyncio.wait_for(asyncio.gather(*(command(n) for n in range(20))), 5)
    assert most == 3 and sorted(order) == list(range(20))
    assert order[:3] == [0, 1, 2]


async def test_a_cancelled_waiter_does_not_leak_its_place() -> None:
    lane = WorkLane(size=1)
    blocker = FakeInteraction(1)
    await lane.arrived(blocker)  # type: ignore[arg-type]
    waiter = asyncio.create_task(lane.enter())
    await settle()
    waiter.cancel()
    blocker.response.done = True
    await settle()
    results: list[Any] = []

    async def command() -> None:
        await lane.enter()
        results.append("in")
        lane.leave()

    await asyncio.wait_for(command(), 1)
    assert results == ["in"]


async def test_a_server_that_is_never_quiet_still_gets_its_work_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worklane, "MAX_HOLD", 0.3)
    lane = WorkLane(size=4)
    stuck = FakeInteraction(1)  # never acknowledged (it will expire only after 3 s)
    await lane.arrived(stuck)  # type: ignore[arg-type]
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(lane.enter(), 2)
    assert 0.25 <= asyncio.get_running_loop().time() - started < 1.5
