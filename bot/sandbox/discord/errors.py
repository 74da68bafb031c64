"""Discord's error bodies: ``{"message", "code"}`` (plus ``errors`` for 50035)."""

from __future__ import annotations

import math
from typing import Any


class DiscordHTTPError(Exception):
    """Raised by a route handler; the pipeline turns it into Discord's JSON error response."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            out["errors"] = self.errors
        out.update(self.extra)
        return out


def invalid_form(field: str, code: str, message: str) -> DiscordHTTPError:
    """50035 Invalid Form Body with Discord's nested ``errors`` layout for one field."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        if part != "_root":
            node = {part: node}
    return DiscordHTTPError(400, 50035, "Invalid Form Body", errors=node)


def unknown_channel() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10003, "Unknown Channel")


def unknown_message() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10008, "Unknown Message")


def unknown_interaction() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10062, "Unknown interaction")


def unknown_webhook() -> DiscordHTTPError:
    return DiscordHTTPError(404, 10015, "Unknown Webhook")


def invalid_webhook_token() -> DiscordHTTPError:
    return DiscordHTTPError(401, 50027, "Invalid Webhook Token")


def missing_permissions() -> DiscordHTTPError:
    return DiscordHTTPError(403, 50013, "Missing Permissions")


def rate_limited(
    retry_after: float, *, is_global: bool = False, code: int = 0, scope: str | None = None
) -> DiscordHTTPError:
    """A 429 as Discord sends it (docs/topics/rate-limits.md); the pipeline adds ``Via``.

    ``scope`` is ``user`` (a per-route bucket), ``global`` or ``shared`` (a per-resource limit,
    which Discord does not count as an invalid request).
    """
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": scope or ("global" if is_global else "user"),
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return DiscordHTTPError(
        429,
        code,
        "You are being rate limited.",
        headers=headers,
        extra={"retry_after": retry_after, "global": is_global},
    )


def thread_archived() -> DiscordHTTPError:
    return DiscordHTTPError(
        400,
        50083,
        "Tried to perform an operation on an archived thread, such as editing a message or "
        "adding a user to the thread",
    )


def thread_locked() -> DiscordHTTPError:
    return DiscordHTTPError(400, 160005, "Thread is locked")


def too_many_active_threads() -> DiscordHTTPError:
    return DiscordHTTPError(400, 160006, "Maximum number of active threads reached")


def entity_too_large() -> DiscordHTTPError:
    return DiscordHTTPError(413, 40005, "Request entity too large")
