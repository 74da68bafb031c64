"""Rendering a core Message in a locale: the translation or the English key, parameters turned
into Discord markup here only, each locale's own plural forms, and a broken translation never
breaking the sentence."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.core.jobs import Button
from bot.core.messages import ChannelRefs, Code, Option, Stamp, UserRef, msg, plural_msg
from bot.discord_ui.i18n.catalog import Catalogues
from bot.discord_ui.i18n.render import MAX_CODE, code_span, render
from bot.discord_ui.render import button_face

LIMIT = "The limit is {limit} MB for {file}."
USED = ("You have made {count} image today.", "You have made {count} images today.")
CATALOGUES = Catalogues(
    "messages",
    {
        "ja": {
            (None, LIMIT): "{file} の上限は {limit} MB です。",
            (None, USED[0]): ("今日は {count} 枚作成しました。",),
        },
        "ru": {
            (None, USED[0]): (
                "Сегодня вы создали {count} изображение.",
                "Сегодня вы создали {count} изображения.",
                "Сегодня вы создали {count} изображений.",
            )
        },
        "de": {(None, LIMIT): "Das Limit ist {limit} MB für {missing}."},
    },
)


def test_a_translated_message_is_rendered_in_the_locale() -> None:
    text = render(msg(LIMIT, limit=10, file=Code("cat.png")), "ja", CATALOGUES)
    assert text == "`cat.png` の上限は 10 MB です。"


def test_an_untranslated_locale_gets_the_english_key() -> None:
    assert render(msg(LIMIT, limit=10, file=Code("a.png")), "fr", CATALOGUES) == (
        "The limit is 10 MB for `a.png`."
    )


def test_a_translation_with_a_wrong_placeholder_falls_back_to_english() -> None:
    text = render(msg(LIMIT, limit=10, file=Code("a.png")), "de", CATALOGUES)
    assert text == "The limit is 10 MB for `a.png`."


def test_each_locale_picks_its_own_plural_form() -> None:
    def made(n: int, locale: str) -> str:
        return render(plural_msg(*USED, n), locale, CATALOGUES)

    assert [made(n, "ru") for n in (1, 3, 5, 21, 11)] == [
        "Сегодня вы создали 1 изображение.",
        "Сегодня вы создали 3 изображения.",
        "Сегодня вы создали 5 изображений.",
        "Сегодня вы создали 21 изображение.",
        "Сегодня вы создали 11 изображений.",
    ]
    assert made(1, "en-US") == "You have made 1 image today."
    assert made(2, "en-US") == "You have made 2 images today."
    assert made(7, "ja") == "今日は 7 枚作成しました。"


def test_markup_parameters_become_discord_markup() -> None:
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    text = render(msg("{who}: next {when}", who=UserRef(42), when=Stamp(at)), "en-US")
    assert text == f"<@42>: next <t:{int(at.timestamp())}:R>"


@given(st.text())
def test_a_code_span_is_inert_whatever_the_text(text: str) -> None:
    span = code_span(text)
    inner = span[1:-1]
    assert span.startswith("`") and span.endswith("`") and "`" not in inner
    assert "\n" not in span and len(inner) <= MAX_CODE


def test_an_option_is_named_as_the_members_client_shows_it() -> None:
    message = msg("{option}: {file} is empty.", option=Option("image1"), file=Code("a.png"))
    assert render(message, "en-US") == "image1: `a.png` is empty."
    assert render(message, "ja").startswith("画像1: `a.png`")
    assert message.plain() == "image1: `a.png` is empty."  # the log's English


def test_worded_buttons_follow_the_locale_and_u1_v1_stay() -> None:
    strong = Button("MJ::JOB::high_variation::1::abc", "Vary (Strong)", "🪄", 2)
    zoom = Button("MJ::Outpaint::50::1::abc", "Zoom Out 2x", "🔍", 2)
    u1 = Button("MJ::JOB::upsample::1::abc", "U1", "", 2)
    reroll = Button("MJ::JOB::reroll::0::abc::SOLO", "", "🔄", 2)
    assert button_face(strong, "en-US") == ("Vary (Strong)", "🪄")  # Midjourney's own spelling
    assert button_face(zoom, "en-US") == ("Zoom Out 2x", "🔍")
    assert button_face(strong, "fr") == ("Varier (fort)", "🪄")
    assert button_face(zoom, "ja") == ("2倍ズームアウト", "🔍")
    assert button_face(u1, "ru") == ("U1", None) and button_face(reroll, "de") == (None, "🔄")


def test_a_message_inside_a_message_is_rendered_in_the_same_locale() -> None:
    catalogues = Catalogues(
        "messages",
        {
            "ru": {
                (None, "Wait {span} in {channels}."): "Подождите {span} в {channels}.",
                (None, "{count} hour"): ("{count} час", "{count} часа", "{count} часов"),
            }
        },
    )
    wait = msg(
        "Wait {span} in {channels}.",
        span=plural_msg("{count} hour", "{count} hours", 5),
        channels=ChannelRefs((1, 2)),
    )
    assert render(wait, "ru", catalogues) == "Подождите 5 часов в <#1>, <#2>."
    assert render(wait, "de", catalogues) == "Wait 5 hours in <#1>, <#2>."
    assert wait.plain() == "Wait 5 hours in <#1>, <#2>."
