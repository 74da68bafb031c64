"""The one reader of the environment and `.env`.

`load_settings()` returns a typed, validated `Settings` or raises `SettingsError` whose message
names every bad key and what it expects. Secrets are `SecretStr`: they never print.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    AnyUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# What each key expects, in the words of the start-up error message.
EXPECTED = {
    "DISCORD_TOKEN": "the bot token from the Discord developer portal",
    "DISCORD_API_BASE_URL": "an http(s) URL such as https://discord.com/api/v10",
    "DISCORD_GATEWAY_URL": "a ws(s) URL such as wss://gateway.discord.gg/",
    "DEV_GUILD_ID": "a Discord server id (digits), or empty",
    "MJ_API_BASE_URL": "the image API's root URL, e.g. https://api.example.com or "
    "https://api.example.com/mj-relax",
    "MJ_API_KEY": "the image API key",
    "MJ_AUTH_STYLE": "'bearer' or 'mj-api-secret'",
    "DATABASE_URL": "sqlite:///path/to/file.db or postgresql://user:pass@host/db",
    "PORT": "a TCP port number (1-65535)",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "MJ_POLL_INTERVAL": "seconds between polls, a number above 0 (fractions allowed)",
    "MJ_TASK_TIMEOUT": "minutes after which an unfinished job fails, a number above 0",
    "GUILD_READY_TIMEOUT": "seconds to wait for servers after connecting, 0 or more (e.g. 2)",
    "MJ_CHUNK_SIZE": "task ids per list-by-condition request, 1-1000",
    "MAX_REFERENCE_MB": "the largest reference image in MB, a number above 0",
    "MAX_REFERENCE_MEGAPIXELS": "the most pixels a reference image may have, in millions, "
    "a number above 0 (e.g. 50)",
    "PUBLIC_BASE_URL": "the bot's public http(s) URL for API callbacks "
    "(e.g. https://mjcord.example.com), or empty to poll only",
    "WEBHOOK_SECRET": "at least 16 characters of letters, digits, '-' or '_' "
    "(required when PUBLIC_BASE_URL is set)",
    "SHARD_COUNT": "the total number of Discord shards across all bot processes, 1-10000, "
    "or empty to let Discord choose (one process)",
    "SHARD_IDS": "the shards this process runs, like 0,1 or 0-3, each below SHARD_COUNT "
    "(requires SHARD_COUNT), or empty for all of them",
}


class SettingsError(Exception):
    """The configuration is incomplete or malformed; the message names every bad key."""


class Settings(BaseSettings):
    """Every setting of the bot. Field names are the environment keys in lower case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    discord_token: SecretStr = Field(min_length=1)
    discord_api_base_url: AnyHttpUrl = AnyHttpUrl("https://discord.com/api/v10")
    discord_gateway_url: AnyUrl = AnyUrl("wss://gateway.discord.gg/")
    dev_guild_id: int | None = None
    mj_api_base_url: AnyHttpUrl
    mj_api_key: SecretStr = Field(min_length=1)
    mj_auth_style: Literal["bearer", "mj-api-secret"] = "bearer"
    database_url: str = "sqlite:///./data/mjcord.db"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mj_poll_interval: Annotated[float, Field(gt=0)] = 3.0
    mj_task_timeout: Annotated[float, Field(gt=0)] = 15.0
    mj_chunk_size: Annotated[int, Field(ge=1, le=1000)] = 100
    # discord.py's own default: after the gateway's READY, it counts the bot ready only once no
    # server has arrived for this long, and the tracker starts then (the test harnesses that
    # restart the bot many times lower it; one test server arrives at once).
    guild_ready_timeout: Annotated[float, Field(ge=0, le=60)] = 2.0
    max_reference_mb: Annotated[float, Field(gt=0)] = 10.0
    max_reference_megapixels: Annotated[float, Field(gt=0)] = 50.0
    public_base_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    shard_count: Annotated[int, Field(ge=1, le=10000)] | None = None
    # NoDecode: from the environment "0,1" is our own list syntax, not JSON for a tuple.
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None, validate_default=True
    )

    @field_validator("dev_guild_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shard_count", mode="before")
    @classmethod
    def _blank_count(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: object) -> object:
        """`0,1`, `0-3` or a mix (`0-2,5`) into a tuple; blank means every shard."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        ids: list[int] = []
        for part in value.replace(" ", "").split(","):
            first, dash, last = part.partition("-")
            if not first.isdigit() or (dash and not last.isdigit()):
                raise ValueError("not a list of shard numbers")
            if int(last or first) > 10000:  # SHARD_COUNT's own cap; no huge ranges built
                raise ValueError("shard number too large")
            ids.extend(range(int(first), int(last) + 1) if dash else [int(first)])
        return tuple(ids)

    @field_validator("shard_ids")
    @classmethod
    def _shards_in_range(
        cls, value: tuple[int, ...] | None, info: ValidationInfo
    ) -> tuple[int, ...] | None:
        if value is None:
            return None
        count = info.data.get("shard_count")
        if count is None:
            raise ValueError("requires SHARD_COUNT")
        if not value or len(set(value)) != len(value) or not all(0 <= i < count for i in value):
            raise ValueError("shard numbers must be distinct and below SHARD_COUNT")
        return tuple(sorted(value))

    @field_validator("public_base_url", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_secret")
    @classmethod
    def _callback_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # It is part of the callback URL's path: URL-safe, and long enough not to be guessed.
        if value is None:
            if info.data.get("public_base_url") is not None:
                raise PydanticCustomError("missing", "required when PUBLIC_BASE_URL is set")
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", value.get_secret_value()):
            raise ValueError("too short or not URL-safe")
        return value

    @field_validator("mj_auth_style", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("discord_gateway_url")
    @classmethod
    def _websocket_scheme(cls, value: AnyUrl) -> AnyUrl:
        if value.scheme not in ("ws", "wss"):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("unsupported database")
        return value

    @property
    def discord_api_base(self) -> str:
        """The REST base without a trailing slash, as discord.py's Route.BASE wants it."""
        return str(self.discord_api_base_url).rstrip("/")

    @property
    def mj_base(self) -> str:
        """The image API root without a trailing slash."""
        return str(self.mj_api_base_url).rstrip("/")

    @property
    def callback_url(self) -> str | None:
        """The notifyHook sent with every submit, or None when callbacks are off."""
        if self.public_base_url is None or self.webhook_secret is None:
            return None
        base = str(self.public_base_url).rstrip("/")
        return f"{base}/mj/callback/{self.webhook_secret.get_secret_value()}"

    @property
    def max_reference_bytes(self) -> int:
        """MAX_REFERENCE_MB in bytes."""
        return int(self.max_reference_mb * 1024 * 1024)

    @property
    def max_reference_pixels(self) -> int:
        """MAX_REFERENCE_MEGAPIXELS in pixels (width × height)."""
        return int(self.max_reference_megapixels * 1_000_000)


def load_settings(
    env: Mapping[str, str] | None = None, *, env_file: str | None = ".env"
) -> Settings:
    """Read and validate the settings from the environment (or `env`) and `env_file`.

    Raises SettingsError naming every missing or malformed key, never echoing a value.
    """
    try:
        if env is None:
            return Settings(_env_file=env_file)  # type: ignore[call-arg]
        values: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.upper() in EXPECTED}
        return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = ["The bot cannot start; fix these settings (in the environment or .env):"]
    seen: set[str] = set()
    for error in exc.errors():
        key = str(error["loc"][0]).upper() if error["loc"] else "?"
        if key in seen:
            continue
        seen.add(key)
        problem = "is missing" if error["type"] == "missing" else "is not valid"
        lines.append(f"  {key} {problem}: expected {EXPECTED.get(key, 'a valid value')}")
    return "\n".join(lines)
