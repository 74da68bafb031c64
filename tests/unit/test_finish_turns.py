"""Finish calls taking turns for the Discord budget: all go, in arrival order, never over the
window, a busy channel holding back only its own calls, a cancelled caller holding back none."""

from __future__ import annotations

import asyncio
import bisect
import time

from bot.discord_ui.budget import EditBudget
from bot.discord_ui.finish_turns import FinishTurns


def most_in_any_window(times: list[float], span: float) -> int:
    ordered = sorted(times)
    return max(
        (bisect.bisect_right(ordered, t + span - 1e-9) - i for i, t in enumerate(ordered)),
        default=0,
    )


async def run_callers(turns: FinishTurns, channels: list[int]) -> list[tuple[int, float]]:
    """Each channel id is one caller, arriving in list order; (caller, when it went)."""
    went: list[tuple[int, float]] = []

    async def caller(n: int, channel_id: int) -> None:
        await turns.take(channel_id)
        went.append((n, time.monotonic()))

    tasks = []
    for n, channel_id in enumerate(channels):
        tasks.append(asyncio.create_task(caller(n, channel_id)))
        await asyncio.sleep(0)  # arrival order is creation order
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    return went


async def test_every_caller_goes_in_arrival_order_within_the_window() -> None:
    budget = EditBudget(limit=5, window=0.1, reserve=1, channel_limit=100)
    turns = FinishTurns(budget)

    went = await run_callers(turns, list(range(30)))

    assert [n for n, _ in went] == list(range(30))
    assert most_in_any_window([t for _, t in went], 0.1) <= 5
    # 30 calls at 5 per 0.1 s need 0.5 s and no more than a little over it.
    assert went[-1][1] - went[0][1] < 0.8
    assert turns.waiting == 0


async def test_a_busy_channel_holds_back_only_its_own_calls() -> None:
    budget = EditBudget(limit=45, window=0.1, reserve=1, channel_limit=2, channel_window=0.5)
    turns = FinishTurns(budget)

    went = await run_callers(turns, [7, 7, 7, 7, 8, 8])

    order = [n for n, _ in went]
    # Channel 7 allows two calls per 0.5 s: channel 8's two go before 7's third and fourth.
    assert order[:4] == [0, 1, 4, 5]
    assert sorted(order[4:]) == [2, 3]
    sevens = [t for n, t in went if n < 4]
    assert most_in_any_window(sevens, 0.5) <= 2


async def test_a_cancelled_caller_holds_back_nobody() -> None:
    budget = EditBudget(limit=1, window=0.2, reserve=0, channel_limit=100)
    turns = FinishTurns(budget)
    await turns.take(1)  # the window is full for 0.2 s
    went: list[str] = []

    async def caller(name: str) -> None:
        await turns.take(2)
        went.append(name)

    first = asyncio.create_task(caller("cancelled"))
    second = asyncio.create_task(caller("second"))
    await asyncio.sleep(0.05)
    first.cancel()
    await asyncio.wait_for(second, 2)

    assert went == ["second"]
    assert turns.waiting == 0


async def test_a_caller_woken_then_cancelled_passes_its_turn_on() -> None:
    budget = EditBudget(limit=1, window=0.1, reserve=0, channel_limit=100)
    turns = FinishTurns(budget)
    await turns.take(1)
    went: list[str] = []

    async def caller(name: str) -> None:
        await turns.take(2)
        went.append(name)

    first = asyncio.create_task(caller("first"))
    second = asyncio.create_task(caller("second"))
    await asyncio.sleep(0)
    # Cancelled at the moment its turn comes: the window's end wakes it, the cancel lands first.
    loop = asyncio.get_running_loop()
    loop.call_at(loop.time() + 0.1, first.cancel)
    await asyncio.wait_for(second, 2)

    assert "second" in went
    assert turns.waiting == 0
