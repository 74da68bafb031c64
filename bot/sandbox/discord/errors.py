"""Discord's error bodies: ``{"message", "code"}`` (plus ``errors`` for 50035)."""

from __future__ import annotations

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


def rate_limited(retry_after: float, *, is_global: bool = False, code: int = 0) -> DiscordHTTPError:
    # discord.py treats a 429 without a Via header as a Cloudflare ban, so send it as Discord does.
    headers = {
        "Retry-After": str(max(1, round(retry_after))),
        "Via": "1.1 google",
        "X-RateLimit-Scope": "global" if is_global else "user",
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
