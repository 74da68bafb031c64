"""SHARD_COUNT and SHARD_IDS: every accepted spelling, and every refusal naming the key."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings

BASE = {"DISCORD_TOKEN": "t", "MJ_API_BASE_URL": "http://api.test", "MJ_API_KEY": "k"}


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("", "", (None, None)),
        ("3", "", (3, None)),
        ("3", "0,1", (3, (0, 1))),
        ("4", "0-3", (4, (0, 1, 2, 3))),
        ("6", "4, 0-1", (6, (0, 1, 4))),
        ("1", "0", (1, (0,))),
    ],
)
def test_accepted_shard_settings(count: str, ids: str, expected: tuple[object, object]) -> None:
    settings = load_settings({**BASE, "SHARD_COUNT": count, "SHARD_IDS": ids}, env_file=None)
    assert (settings.shard_count, settings.shard_ids) == expected


@pytest.mark.parametrize(
    ("count", "ids", "bad_key"),
    [
        ("0", "", "SHARD_COUNT"),
        ("-2", "", "SHARD_COUNT"),
        ("many", "", "SHARD_COUNT"),
        ("10001", "", "SHARD_COUNT"),
        ("", "0,1", "SHARD_IDS"),  # shard ids without the total
        ("2", "0-2", "SHARD_IDS"),  # 2 is not below 2
        ("3", "1,1", "SHARD_IDS"),
        ("3", "2-0", "SHARD_IDS"),
        ("3", "a", "SHARD_IDS"),
        ("3", "0-99999999999", "SHARD_IDS"),  # refused before any range is built
        ("3", "0,,1", "SHARD_IDS"),
    ],
)
def test_refused_shard_settings_name_the_key(count: str, ids: str, bad_key: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({**BASE, "SHARD_COUNT": count, "SHARD_IDS": ids}, env_file=None)
    message = str(refused.value)
    assert f"  {bad_key} " in message
    assert "99999999999" not in message and "many" not in message  # values are never echoed


def test_shard_settings_read_from_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The process environment goes through pydantic-settings' own sources (found broken by the
    # three-process test: "0" was JSON-decoded into an int there, "0,1" refused as bad JSON).
    for key, value in {**BASE, "SHARD_COUNT": "4", "SHARD_IDS": "0,2-3"}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env_file=None)
    assert (settings.shard_count, settings.shard_ids) == (4, (0, 2, 3))
    monkeypatch.setenv("SHARD_IDS", "1")
    assert load_settings(env_file=None).shard_ids == (1,)
