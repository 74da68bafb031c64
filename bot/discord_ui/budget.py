"""The bot's Discord request budget: sliding windows, one for the bot and one per channel.

Discord allows a bot 50 requests per second across all routes (its *global* limit), and each
route bucket (messages in one channel, say) a few more per few seconds; going over earns 429s
and, repeated, a temporary ban (https://discord.com/developers/docs/topics/rate-limits). A
token bucket that refills lets a burst of `burst` calls go on top of the steady rate, so one
second can hold more than the rate (issue 12 measured 55–56). A sliding window cannot: no span
of `window` seconds ever holds more than `limit` calls, whenever they were booked.

Every call is booked at the moment it is sent (`take`), never ahead: a call booked for later
and then sent late (a busy event loop) would break the window for the calls around it. A
finish post waits only for the windows themselves (`finish_wait`) and is never refused; a
progress edit goes only while the window holds fewer than `limit - reserve` calls, so a finish
arriving under load finds room at once (and the presenter sends no progress edit while a finish
is being posted). Pure: time is passed in.
"""

from __future__ import annotations

from collections import deque

#: Discord's global limit is 50/s; the bot stays at LIMIT in any window of this many seconds,
#: so that what reaches Discord stays at 45 in any second. The extra 20 ms absorbs the usual
#: jitter between booking a call and its arrival (1-5 ms measured, issue 12); the one call short
#: of 45 absorbs a call held back longer, by a stalled event loop (a garbage collection, a long
#: callback: 25-120 ms measured), which would otherwise arrive bunched with the calls after it.
WINDOW_SECONDS = 1.02
LIMIT = 44
#: Spread calls at this fraction of the average gap (see SlidingWindow).
SPREAD = 0.9


class SlidingWindow:
    """At most `limit` calls in any half-open span of `span` seconds.

    Calls are booked in time order (each at or after the previous one), and each at least
    `span` after the call `limit` places before it: any `limit + 1` consecutive calls then
    span at least `span` seconds, so no window of `span` seconds holds more than `limit`.
    With `spread`, calls are also at least SPREAD × `span / limit` apart: a burst goes out
    evenly instead of all at once, so a little jitter on the way cannot crowd one second (the
    gap is a little shorter than the average, so that callers waking late do not lose slots).
    """

    __slots__ = ("gap", "limit", "span", "times")

    def __init__(self, limit: int, span: float, *, spread: bool = False) -> None:
        if limit < 1 or span <= 0:
            raise ValueError("a window needs a positive limit and span")
        self.limit = limit
        self.span = span
        self.gap = SPREAD * span / limit if spread else 0.0
        self.times: deque[float] = deque()

    def earliest(self, now: float, limit: int | None = None) -> float:
        """The first time at or after `now` a call can be booked with at most `limit` (default
        the window's own) calls in any span, counting every call booked so far."""
        cap = self.limit if limit is None else min(limit, self.limit)
        times = self.times
        while times and times[0] <= now - self.span:
            times.popleft()
        at = max(now, times[-1] + self.gap) if times else now
        if len(times) >= cap:
            at = max(at, times[-cap] + self.span)
        return at

    def book(self, at: float) -> None:
        """Record a call at `at` (from `earliest`)."""
        self.times.append(at)
        while len(self.times) > self.limit:
            self.times.popleft()

    def idle(self, now: float) -> bool:
        """True when no call of this window counts any more."""
        return not self.times or self.times[-1] <= now - self.span


class EditBudget:
    """The bot-wide window and one window per channel (see the module docstring).

    `progress_wait` and `channel_wait` say how long a progress edit must wait, `finish_wait` how
    long a finish call must; at 0 the caller books the call with `take` and sends it at once.
    With `spread` (the default) bot-wide calls are at least `window / limit` apart.
    """

    # `reserve`: status edits leave 34 of the 44 to finish posts and to the commands' own calls
    # (replies, threads, status messages), which do not pass through this budget. 10 progress
    # edits a second keep a busy server's few dozen running jobs moving every few seconds; at
    # thousands each status message moves every few minutes at 10 or at 20 a second alike, and
    # each edit costs the bot about 1.5 ms of CPU (issue 12: at 10,000 moving jobs, 20 edits a
    # second were 3% of a core, 30% of the tracker's whole budget).
    def __init__(
        self,
        *,
        limit: int = LIMIT,
        window: float = WINDOW_SECONDS,
        reserve: int = 34,
        channel_limit: int = 5,
        channel_window: float = 5.0,
        channel_reserve: int = 1,
        spread: bool = True,
    ) -> None:
        if not 0 <= reserve < limit or not 0 <= channel_reserve < channel_limit:
            raise ValueError("a reserve must leave room below its limit")
        self.limit, self.reserve = limit, reserve
        self.channel_limit, self.channel_window = channel_limit, channel_window
        self.channel_reserve = channel_reserve
        self._global = SlidingWindow(limit, window, spread=spread)
        self._channels: dict[int, SlidingWindow] = {}
        self._tidy_above = 1000

    def progress_wait(self, now: float) -> float:
        """Seconds until a progress edit may go, bot-wide (0: now)."""
        return self._global.earliest(now, self.limit - self.reserve) - now

    def channel_wait(self, channel_id: int, now: float) -> float:
        """Seconds until a progress edit may go in this channel (0: now)."""
        window = self._channels.get(channel_id)
        if window is None:
            return 0.0
        return window.earliest(now, self.channel_limit - self.channel_reserve) - now

    def bot_wait(self, now: float) -> float:
        """Seconds until a finish call fits the bot-wide window, whatever its channel (0: now)."""
        return self._global.earliest(now) - now

    def finish_wait(self, channel_id: int, now: float) -> float:
        """Seconds until a finish call fits both windows, reserve included (0: now)."""
        window = self._channels.get(channel_id)
        at = self._global.earliest(now)
        if window is not None:
            at = max(at, window.earliest(now))
        return at - now

    def take(self, channel_id: int, now: float) -> None:
        """Book a call sent now (after its wait said 0)."""
        self._global.book(now)
        self._channel(channel_id, now).book(now)

    def _channel(self, channel_id: int, now: float) -> SlidingWindow:
        window = self._channels.get(channel_id)
        if window is None:
            if len(self._channels) > self._tidy_above:
                # Threads come and go: forget windows whose calls no longer count.
                for idle in [c for c, w in self._channels.items() if w.idle(now)]:
                    del self._channels[idle]
                self._tidy_above = max(1000, 2 * len(self._channels))
            window = self._channels[channel_id] = SlidingWindow(
                self.channel_limit, self.channel_window
            )
        return window
