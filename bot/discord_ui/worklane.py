"""Acknowledge first: the lane every command's post-defer work waits in.

discord.py runs each application command in its own task on the one event loop
(`CommandTree._from_interaction` creates it; https://github.com/Rapptz/discord.py, file
discord/app_commands/tree.py). Nothing orders those tasks: in a burst, the early commands'
downloads, database writes and submits run between the later commands' defers, and push
their acknowledgements back (issue 12: p99 1.77× a bare bot's for 200 /imagine with 1 MB
images). Discord gives an interaction 3 seconds to be acknowledged
(https://discord.com/developers/docs/interactions/receiving-and-responding).

The lane, per client:
- sees every interaction arrive (an `on_interaction` listener) and keeps those not yet
  acknowledged (`interaction.response.is_done()` false, and younger than 3 s);
- admits post-defer work only while none is waiting for its acknowledgement and none arrived
  in the last QUIET seconds (a burst is served first), or once the oldest waiting command has
  waited MAX_HOLD (so a server that is never quiet still gets its work done), and at most
  `size` commands at once; a command holds its place until its task ends, or HOLD_LIMIT
  seconds at most (its last steps may wait on Discord's rate limits);
- admits in arrival order (FIFO), so no command starves.

A command calls `await after_defer(interaction)` right after its defer; that is all the wiring a
cog needs. `attach(client)` creates the client's lane and its listener (the composition root).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import weakref
from typing import Any

import discord
from discord.ext import commands

log = logging.getLogger(__name__)

#: Commands doing post-defer work at once.
LANE_SIZE = 24
#: A command gives its place back after this long even if it has not ended: its last steps
#: (reply, thread, status message) may wait seconds on Discord's rate limits (thread creation:
#: a few per channel per several seconds), and must not hold back the next commands' submits.
HOLD_LIMIT = 2.0
#: How often the lane looks again while acknowledgements are pending (seconds).
RECHECK = 0.005
#: Interactions not acknowledged after this long have expired; the lane stops waiting for them.
ACK_WINDOW = 3.0
#: Work starts only once no interaction has arrived for this long: within a burst the next
#: interaction is usually already on its way, and the work would slow its acknowledgement.
QUIET = 0.15
#: But no command waits longer than this for a quiet moment (a busy server may never have one):
#: past it, the oldest waiting command goes whatever is pending.
MAX_HOLD = 1.0


class WorkLane:
    """Admits post-defer work in arrival order, never while an acknowledgement is pending."""

    def __init__(self, size: int = LANE_SIZE) -> None:
        self.size = size
        self._running = 0
        # (admission, monotonic time it began waiting), oldest first
        self._queue: collections.deque[tuple[asyncio.Future[None], float]] = collections.deque()
        self._unacked: dict[int, tuple[discord.Interaction[Any], float]] = {}
        self._pump: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._last_arrival = float("-inf")

    async def arrived(self, interaction: discord.Interaction[Any]) -> None:
        """An interaction arrived (the client's `on_interaction`): wait for its defer first."""
        self._last_arrival = time.monotonic()
        if not interaction.response.is_done():
            self._unacked[interaction.id] = (interaction, self._last_arrival)

    def busy(self) -> float:
        """Seconds to hold work back: while acknowledgements are pending, or interactions are
        still arriving (0: work may start)."""
        if self.pending_acks():
            return RECHECK
        return max(0.0, self._last_arrival + QUIET - time.monotonic())

    def pending_acks(self) -> int:
        """Interactions that arrived, are not acknowledged, and have not expired."""
        now = time.monotonic()
        for key, (interaction, at) in list(self._unacked.items()):
            if interaction.response.is_done() or now - at > ACK_WINDOW:
                del self._unacked[key]
        return len(self._unacked)

    async def enter(self) -> None:
        """Wait for a place; the caller must `leave()` once its work is done."""
        if not self._queue and self._running < self.size and self.busy() == 0:
            self._running += 1
            return
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((admitted, time.monotonic()))
        self._start_pump()
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():
                self.leave()  # admitted just as it was cancelled: give the place back
            raise

    def leave(self) -> None:
        """Give a place back."""
        self._running -= 1
        self._kick.set()

    def _start_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._admit(), name="mjcord work lane")

    async def _admit(self) -> None:
        while self._queue:
            waited = time.monotonic() - self._queue[0][1]
            if (hold := self.busy()) > 0 and waited < MAX_HOLD:
                await asyncio.sleep(min(hold, MAX_HOLD - waited))
                continue
            while self._queue and self._running < self.size:
                waiter, _ = self._queue.popleft()
                if waiter.done():  # its command was cancelled while it waited
                    continue
                self._running += 1
                waiter.set_result(None)
            if self._queue:
                self._kick.clear()
                await self._kick.wait()


_lanes: weakref.WeakKeyDictionary[discord.Client, WorkLane] = weakref.WeakKeyDictionary()


def attach(client: discord.Client, size: int = LANE_SIZE) -> WorkLane:
    """Give `client` its lane and let it see every interaction arrive."""
    lane = _lanes.get(client)
    if lane is None:
        lane = _lanes[client] = WorkLane(size)
        if isinstance(client, commands.Bot | commands.AutoShardedBot):
            client.add_listener(lane.arrived, "on_interaction")
    return lane


async def after_defer(interaction: discord.Interaction[Any]) -> None:
    """Wait until this command's post-defer work may run (see the module docstring); its place
    is given back when the command's task ends."""
    lane = attach(interaction.client)
    await lane.enter()
    task = asyncio.current_task()
    if task is None:  # not in a task (cannot happen in discord.py's dispatch): no hold
        lane.leave()
        return
    given_back = False

    def give_back(*_: object) -> None:
        nonlocal given_back
        if not given_back:
            given_back = True
            lane.leave()

    task.add_done_callback(give_back)
    asyncio.get_running_loop().call_later(HOLD_LIMIT, give_back)
