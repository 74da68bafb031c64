import logging

import pytest

from bot.log import RedactingFilter
from bot.settings import SettingsError, load_settings

GOOD = {
    "DISCORD_TOKEN": "tok",
    "MJ_API_BASE_URL": "https://api.example.com/mj-relax/",
    "MJ_API_KEY": "sk-abcdefgh12345678",
}


def test_good_settings_with_defaults() -> None:
    s = load_settings(GOOD, env_file=None)
    assert s.mj_base == "https://api.example.com/mj-relax"
    assert s.discord_api_base == "https://discord.com/api/v10"
    assert s.mj_auth_style == "bearer" and s.database_url.startswith("sqlite:///")
    assert "sk-abcdefgh12345678" not in repr(s)


def test_every_bad_key_is_named_once_without_its_value() -> None:
    env = {
        "MJ_API_BASE_URL": "ftp://x",
        "MJ_API_KEY": "sk-secret-value",
        "PORT": "99999",
        "MJ_AUTH_STYLE": "basic",
        "DATABASE_URL": "mysql://x",
        "MJ_TASK_TIMEOUT": "zero",
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(env, env_file=None)
    text = str(caught.value)
    for key in (
        "DISCORD_TOKEN",
        "MJ_API_BASE_URL",
        "PORT",
        "MJ_AUTH_STYLE",
        "DATABASE_URL",
        "MJ_TASK_TIMEOUT",
    ):
        assert text.count(key) == 1, key
    assert "sk-secret-value" not in text and "mysql" not in text


def test_case_and_blank_values_are_forgiven() -> None:
    s = load_settings(
        {**GOOD, "MJ_AUTH_STYLE": "MJ-API-SECRET", "LOG_LEVEL": "debug", "DEV_GUILD_ID": " "},
        env_file=None,
    )
    assert s.mj_auth_style == "mj-api-secret" and s.log_level == "DEBUG" and s.dev_guild_id is None


def test_log_lines_never_carry_secrets() -> None:
    token = "MTAxMjM0NTY3ODkwMTIzNDU2.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789"
    redact = RedactingFilter(["my-api-key-1234"])
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "key=%s token=%s auth=%s",
        ("my-api-key-1234", token, "Bearer sk-live-abcdefgh123"),
        None,
    )
    redact.filter(record)
    message = record.getMessage()
    assert "my-api-key-1234" not in message and token not in message and "sk-live" not in message
    assert message.count("***") == 3
