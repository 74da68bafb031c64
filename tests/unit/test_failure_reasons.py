"""What a member reads when a task fails: the plain sentence, the offending flag named, and the
service's own words shown inert (core's failure_messages, rendered by render.failure_text)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.errors import REASON_LIMIT, is_banned_content, shown_reason
from bot.discord_ui.render import failure_text as describe_failure


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        (
            "[Invalid parameter] Unrecognized parameter(s): `--zzfail`",
            "Midjourney does not recognise `--zzfail`.",
        ),
        (
            "[Invalid parameter] Unrecognized parameter(s): --zz --yy",
            "Midjourney does not recognise `--zz`, `--yy`.",
        ),
        ("[Invalid parameter] Invalid value for --ar 9:0", "rejected the value of `--ar`"),
        ("[Invalid parameter] Invalid value", "Check flags like --ar or --v."),
        ("[Banned prompt detected] Sorry!", "content rules"),
        ("任务超时", "took too long"),
        ("取消任务", "cancelled"),
        ("获取渠道信息失败，请联系管理员，渠道ID：3", "internal error"),
        ("something odd", "could not make this image"),
    ],
)
def test_each_reason_reads_as_a_sentence_and_the_services_words(reason: str, sentence: str) -> None:
    text = describe_failure(reason)
    first, said = text.split("\n")
    assert sentence in first
    assert said == "The image service said: " + shown_reason(reason)


def test_our_own_reasons_and_empty_ones_are_just_a_sentence() -> None:
    assert describe_failure("The bot restarted.") == "The bot restarted."
    assert describe_failure("") == "The image service could not make this image. Please try again."


def test_a_banned_reason_is_still_a_strike_and_others_are_not() -> None:
    assert is_banned_content("[Banned prompt detected] Sorry!")
    assert not is_banned_content("[Invalid parameter] Unrecognized parameter(s): --banned")


@given(st.text(max_size=600))
def test_the_services_words_are_always_one_inert_bounded_code_span(reason: str) -> None:
    shown = shown_reason(reason)
    if not shown:
        # Nothing to show: nothing printable but white space (hypothesis found "\x1b \x1b").
        assert not any(c.isprintable() and not c.isspace() for c in reason)
        return
    inner = shown[1:-1]
    assert shown[0] == shown[-1] == "`" and "`" not in inner  # nothing can leave the span
    assert "\n" not in shown and len(inner) <= REASON_LIMIT
    assert not re.search(r"@(?!\u200b)", inner)  # no @everyone, no <@id>
    assert all(c.isprintable() or c == "\u200b" for c in inner)


@given(st.text(max_size=300))
def test_describe_failure_never_raises_and_keeps_its_shape(reason: str) -> None:
    text = describe_failure(reason)
    assert text and text.count("\n") <= 1


@pytest.mark.parametrize(
    ("limit", "locale", "sentence"),
    [
        ("3 seconds", "en-US", "The image service did not finish this job within 3 seconds."),
        ("1 second", "en-US", "The image service did not finish this job within 1 second."),
        ("3 seconds", "ru", "Сервис изображений не завершил это задание за 3 секунды."),
        ("21 minutes", "ru", "Сервис изображений не завершил это задание за 21 минуту."),
        ("5 minutes", "de", "Der Bilddienst hat diesen Auftrag nicht innerhalb von 5 Minuten"),
        ("10 minutes", "ja", "画像サービスは 10 分以内にこのジョブを完了しませんでした。"),
    ],
)
def test_the_time_limit_is_said_with_each_languages_plural(
    limit: str, locale: str, sentence: str
) -> None:
    # The tracker's own reason (bot.core.tracking), as the ledger keeps it.
    reason = f"The image service did not finish this job within {limit}."
    assert describe_failure(reason, locale).startswith(sentence)
