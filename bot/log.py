"""Logging set-up: one format, configured once, with secrets redacted from every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Discord bot tokens, bearer keys and interaction (webhook) tokens in a URL that might slip
# into a message from a library.
_TOKEN_SHAPES = re.compile(
    r"(?:[MN][A-Za-z\d]{23,25}\.[\w-]{6}\.[\w-]{27,38})|(?:(?<=Bearer )[^\s'\"]+)|(?:sk-[\w-]{8,})"
    r"|(?:(?<=/webhooks/)\d+/[\w.-]+)"
)


class RedactingFilter(logging.Filter):
    """Replaces known secrets, and anything shaped like a token or key, with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return `text` with every secret masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _TOKEN_SHAPES.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redact it, and keep the record."""
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


def configure(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once: a stream handler with redaction. Safe to call again."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mjcord", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    handler._mjcord = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # discord.py is chatty at INFO about gateway internals; keep its warnings.
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("alembic").setLevel(logging.WARNING)
