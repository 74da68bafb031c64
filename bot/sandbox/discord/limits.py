"""Discord's REST limits, as the emulator enforces them: rate limits, upload sizes, latency.

Sources (discord/discord-api-docs):

* ``docs/topics/rate-limits.md`` — per-route buckets keyed by a bucket hash plus the
  "top-level resource" of the path (``channel_id``, ``guild_id``, ``webhook_id`` +
  ``webhook_token``); the ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket`` headers
  on responses; 429 bodies ``{message, retry_after, global}`` with ``X-RateLimit-Scope``
  (``user``, ``global``, ``shared``) and ``X-RateLimit-Global``; a global limit of **50
  requests per second per bot**, from which *interaction endpoints* are exempt; and the
  *invalid request* limit (10,000 responses with 401, 403 or 429 per 10 minutes; 429s with
  scope ``shared`` do not count).
* Discord publishes no per-route figures ("should not be hard coded"). The per-channel message
  bucket is a setting, 5 per 5 s by default — the limit commonly observed on
  ``POST /channels/{id}/messages``; other routes get the figures in ``ROUTE_LIMITS``.
* ``docs/reference.md`` (Uploading Files) and ``docs/resources/guild.md`` (premium tiers): the
  bot's own upload limit is the server's, by boost tier 10, 10, 50 and 100 MiB, checked per
  file; an upload over it is ``413`` code 40005 ("Request entity too large").

discord.py (``discord/http.py``, ``HTTPClient.request``) reads these: it keys its buckets on
``X-RateLimit-Bucket`` and the major parameters, sleeps pre-emptively when ``Remaining`` is 0,
and retries a 429 after ``retry_after`` (locking every request on a *global* one) — but a 429
without a ``Via`` header is raised as a Cloudflare ban. Real responses carry ``Via: 1.1
google``; so do the emulator's.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from bot.sandbox.discord.errors import rate_limited

MIB = 1024 * 1024
#: The bot's upload limit by the server's boost tier (premium_tier 0..3).
BOOST_TIER_UPLOAD_LIMITS = (10 * MIB, 10 * MIB, 50 * MIB, 100 * MIB)
#: The largest body the emulator's HTTP server reads (ten files at Nitro's 500 MiB, + JSON).
MAX_REQUEST_BYTES = 10 * 500 * MIB + MIB
GLOBAL_PER_SECOND = 50
VIA = "1.1 google"
#: The routes Discord calls "interaction endpoints": not bound by the global limit.
INTERACTION_ROUTE_PREFIXES = ("/interactions/", "/webhooks/")
#: Path parameters that are top-level resources (a bucket is counted per their values). An
#: interaction's callback is counted per interaction: each gets one, whatever else is going on.
MAJOR_PARAMETERS = (
    "channel_id",
    "guild_id",
    "webhook_id",
    "webhook_token",
    "interaction_id",
    "interaction_token",
)
CHANNEL_MESSAGES = "channel-messages"

#: (limit, period in seconds) of the routes whose figure differs from DEFAULT_ROUTE_LIMIT.
#: Message sends and edits use the per-channel message setting instead (CHANNEL_MESSAGES).
ROUTE_LIMITS: dict[tuple[str, str], tuple[int, float]] = {
    # One reaction per quarter second per channel: the figure every library observes.
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me"): (1, 0.25),
    # Webhook executions (interaction followups included): 5 per 2 s per webhook and token.
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"): (5, 2.0),
    ("POST", "/channels/{channel_id}/messages/{message_id}/threads"): (10, 10.0),
    ("PATCH", "/channels/{channel_id}"): (5, 5.0),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"): (5, 1.0),
    ("PUT", "/applications/{application_id}/commands"): (2, 1.0),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): (2, 1.0),
}
DEFAULT_ROUTE_LIMIT = (50, 1.0)
#: Routes whose bucket is the per-channel message setting: sending, and (a bucket of its own
#: with the same figure) editing.
_MESSAGE_ROUTES = {
    ("POST", "/channels/{channel_id}/messages"): CHANNEL_MESSAGES,
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): CHANNEL_MESSAGES + "-edit",
}


@dataclass
class Bucket:
    """A fixed window, as Discord's: opened by the first request, reset ``period`` later."""

    name: str
    limit: int
    period: float
    remaining: int = 0
    reset_at: float = 0.0  # monotonic

    def refresh(self, now: float) -> None:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.period

    def headers(self, now: float) -> dict[str, str]:
        after = max(0.0, self.reset_at - now)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{time.time() + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
            "X-RateLimit-Bucket": self.name,
        }


@dataclass
class Limits:
    """The emulator's REST limits and their counters (one per emulated Discord).

    ``rate_limits=False`` switches rate limiting off (no buckets, no headers, no global limit);
    a test that needs that must say so. Everything else here is always enforced.
    """

    rate_limits: bool = True
    global_per_second: int = GLOBAL_PER_SECOND
    #: The per-channel message bucket (sends; edits have their own): (limit, period seconds).
    channel_messages: tuple[int, float] = (5, 5.0)
    #: REST round trip in seconds: half before the request is handled, half on the way back.
    rest_delay: float = 0.0
    #: The server's boost tier (premium_tier): sets the bot's per-file upload limit.
    boost_tier: int = 0
    #: Members' own upload limits (Nitro), user id -> bytes; reported to the bot in interactions.
    member_upload_limits: dict[int, int] = field(default_factory=dict)
    #: Seconds a thread may stay inactive before it archives; None: its auto_archive_duration.
    thread_archive_after: float | None = None
    #: Active threads a server may hold at once (Discord's cap for a guild).
    max_active_threads: int = 1000
    #: Thread id -> monotonic time of its last activity (threads.py keeps it).
    thread_activity: dict[int, float] = field(default_factory=dict)
    #: How long an enforced nonce is remembered ("the past few minutes").
    nonce_window: float = 300.0

    #: Responses Discord counts as invalid (401, 403, 429 except scope shared), by status.
    invalid: Counter[int] = field(default_factory=Counter)
    #: Every 429 the emulator sent: (method, route template, scope).
    rate_limited: list[tuple[str, str, str]] = field(default_factory=list)
    _buckets: dict[tuple[str, tuple[str, ...]], Bucket] = field(default_factory=dict)
    _global: deque[float] = field(default_factory=deque)
    _promised: list[float] = field(default_factory=list)

    # -- uploads ----------------------------------------------------------------------------

    @property
    def upload_limit(self) -> int:
        """The bot's per-file upload limit in this server (its boost tier's)."""
        return BOOST_TIER_UPLOAD_LIMITS[self.boost_tier]

    def attachment_size_limit(self, user_id: int) -> int:
        """What a member may upload: the larger of their own (Nitro) limit and the server's."""
        return max(self.upload_limit, self.member_upload_limits.get(user_id, 0))

    @property
    def invalid_requests(self) -> int:
        return sum(self.invalid.values())

    # -- rate limits ------------------------------------------------------------------------

    def admit(
        self, method: str, template: str, params: dict[str, str], *, authenticated: bool
    ) -> dict[str, str]:
        """Count one request; the rate-limit headers for its response, or raise a 429."""
        if not self.rate_limits:
            return {}
        now = time.monotonic()
        exempt = template.startswith(INTERACTION_ROUTE_PREFIXES)
        if authenticated and not exempt:
            window = self._global
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.global_per_second:
                self.rate_limited.append((method, template, "global"))
                raise rate_limited(round(self._global_retry(now), 3), is_global=True)
        bucket = self._bucket(method, template, params)
        bucket.refresh(now)
        if bucket.remaining <= 0:
            self.rate_limited.append((method, template, "user"))
            error = rate_limited(round(max(bucket.reset_at - now, 0.001), 3))
            error.headers.update(bucket.headers(now))
            raise error
        bucket.remaining -= 1
        if authenticated and not exempt:
            self._global.append(now)
        return bucket.headers(now)

    def _global_retry(self, now: float) -> float:
        """When a globally limited request may come back: the n-th one turned away while the
        window is full is sent to the moment the n-th oldest call leaves it, so the callers
        told to retry (discord.py sleeps ``retry_after`` and retries, 5 tries in all) find a
        slot each rather than all returning to the same one."""
        promised = [at for at in self._promised if at > now]
        window = self._global
        n = len(promised)
        at = window[n] + 1.005 if n < len(window) else max(promised) + 1.0
        self._promised = [*promised, at]
        return max(0.001, at - now)

    def _bucket(self, method: str, template: str, params: dict[str, str]) -> Bucket:
        if (method, template) in _MESSAGE_ROUTES:
            name = _MESSAGE_ROUTES[(method, template)]
            limit, period = self.channel_messages
        else:
            name = hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]
            limit, period = ROUTE_LIMITS.get((method, template), DEFAULT_ROUTE_LIMIT)
        major = tuple(params.get(p, "") for p in MAJOR_PARAMETERS)
        key = (name, major)
        bucket = self._buckets.get(key)
        if bucket is None or (bucket.limit, bucket.period) != (limit, period):
            bucket = self._buckets[key] = Bucket(name, limit, period)
        return bucket

    def record_response(self, status: int, headers: dict[str, str]) -> None:
        """Count the invalid responses (Discord's Cloudflare-ban counter)."""
        if status in (401, 403) or (status == 429 and headers.get("X-RateLimit-Scope") != "shared"):
            self.invalid[status] += 1
