"""`python -m bot`'s command line: the sync command and its --guild option."""

from __future__ import annotations

import pytest

from bot.__main__ import main


def test_sync_is_a_command_with_a_guild_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "sync" in out and "--guild ID" in out


@pytest.mark.parametrize("argv", [["run", "--guild", "1"], ["check", "--guild", "1"]])
def test_guild_goes_with_sync_only(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert "--guild goes with the sync command" in capsys.readouterr().err


def test_a_guild_must_be_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sync", "--guild", "general"])
    assert done.value.code == 2
    assert "invalid int value" in capsys.readouterr().err
