"""Switchable misbehaviour of the Midjourney-proxy simulator.

Tests flip these fields directly on `sim.faults`; each one reproduces an answer a real server gives
(mj-api.md §1, §3, §7). Every field defaults to "off" except `banned_words`, which holds one word so
that the banned-prompt path (code 24) can be exercised without any set-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# new-api's token check (model/token.go ValidateUserToken) and user check (middleware/auth.go).
KeyState = Literal["ok", "exhausted", "expired", "disabled", "user_banned"]


def _default_banned() -> set[str]:
    return {"gore"}


@dataclass
class Faults:
    """Answers the simulator gives instead of the happy path. Mutate freely between requests."""

    # Whole-word, case-insensitive hits answer code 24 (A/plus behaviour; new-api passes it on).
    banned_words: set[str] = field(default_factory=_default_banned)
    # Submits answer "queue full": plus code 23 or the C# proxy's code 9 wording.
    queue_full: bool = False
    queue_full_style: Literal["plus", "csharp"] = "plus"
    # Submits answer code 22 with this many tasks ahead (the aggregator rewrites 22 to 1).
    queue_position: int | None = None
    # Submits answer code 3 "无可用的账号实例".
    no_account: bool = False
    # Every API request is answered with this HTTP status and a plain-text body.
    http_status: int | None = None
    # Aggregator: HTTP 429 with new-api's code-30 body (upstream: a bare 429).
    rate_limited: bool = False
    # The C# proxy's {"success":false,...} envelope at HTTP 200 (action/modal/blend/describe).
    csharp_envelope: bool = False
    # Delay every API answer by this many seconds.
    slow_seconds: float = 0.0
    # Close the socket without answering.
    drop_connection: bool = False
    # HTTP 200 with an HTML body (a captive portal, a misrouted reverse proxy).
    not_json: bool = False
    # Tasks never get past IN_PROGRESS.
    never_finish: bool = False
    # Tasks end in FAILURE with this reason instead of succeeding.
    fail_reason: str | None = None
    # list-by-condition answers this status (404/405), as servers lacking the endpoint do.
    list_by_condition_status: int | None = None
    # Upstream profile, fetch of an unknown id: Java's empty 200 or C#'s 204.
    unknown_id_style: Literal["empty", "204"] = "empty"
    # The final image is random noise, so its PNG is large (tests Discord upload limits).
    noisy_images: bool = False
    # Remix on: variation, pan and reroll go to MODAL and need /submit/modal.
    modal_actions: bool = False
    # Signed attachment links older than this many seconds answer `expired_link_status`
    # (Discord enforces the `ex` of its signed CDN links, mj-api.md §7.5). None: never expire.
    link_ttl_seconds: float | None = None
    expired_link_status: int = 404
    # Aggregator: the key is spent/expired/disabled (401) or its user banned (403), as new-api's
    # middleware answers, in `{"error": {"message", "type"}}`.
    key_state: KeyState = "ok"
    # Aggregator: no enabled channel serves the model (new-api's distributor: HTTP 503).
    no_channel: bool = False
    # Aggregator: the proxy behind it cannot be reached; submits answer HTTP 400 code 5
    # `do_request_failed` (new-api service.DoMidjourneyHttpRequest), reads still work.
    upstream_down: bool = False
    # notifyHook at least once, as real proxies deliver it: some callbacks sent twice, all of
    # them after a random delay (so out of order), some never (mj-api.md §5: no retries).
    at_least_once_callbacks: bool = False
    callback_duplicate_rate: float = 0.3
    callback_drop_rate: float = 0.2
    callback_max_delay: float = 0.2
