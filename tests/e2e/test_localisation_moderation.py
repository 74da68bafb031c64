"""Moderation and /quota in the reader's language, end to end (the real bot and discord.py
against the Discord emulator): refusals and /quota in the member's locale, /mod answers in the
moderator's, the log channel in the server's, and /mod language choosing what the whole channel
reads (surviving a restart) while private answers stay in each member's own language."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Application
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import wait_finish
from tests.e2e.test_moderation import (
    MANAGE_GUILD,
    custom_ids,
    imagine_refused,
    log_posts,
    mod,
    run,
)

# member locale → (the banned-word refusal, /quota's made line, /quota's left-today line)
MEMBER_WORDS = {
    "ja": (
        "プロンプトにこのサーバーで許可されていない「gore」が含まれています。",
        "過去24時間に 0 枚の画像を作成しました（直近1時間は 0 枚）。",
        "本日の残りは 5 枚です（5 枚中）。",
    ),
    "de": (
        "Dein Prompt enthält „gore“, was dieser Server nicht erlaubt",
        "Du hast in den letzten 24 Stunden 0 Bilder erstellt (0 in der letzten Stunde).",
        "Du hast heute noch 5 Bilder (von 5).",
    ),
    "ru": (
        "Ваш запрос содержит «gore», что запрещено на этом сервере",
        "За последние 24 часа вы создали 0 изображений (0 за последний час).",
        "Сегодня у вас осталось 5 изображений (из 5).",
    ),
    "zh-TW": (
        "你的提示詞包含本伺服器不允許的「gore」",
        "過去 24 小時你生成了 0 張圖片（最近一小時 0 張）。",
        "你今天還剩 5 張（共 5 張）。",
    ),
}


@pytest.mark.parametrize("locale", sorted(MEMBER_WORDS))
async def test_a_refusal_and_quota_answer_the_member_in_their_language(
    emu: DiscordEmulator, sim: MjProxySimulator, app: Application, locale: str
) -> None:
    refusal_words, made_words, left_words = MEMBER_WORDS[locale]
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    member = emu.add_user("member")
    emu.user_locales[member] = locale
    assert "now refused" in await mod(emu, moderator, "terms add", term="gore")
    assert "5 per day" in await mod(emu, moderator, "limits default", per_day=5)
    refusal = await imagine_refused(emu, member, "so much GORE")
    assert refusal_words in refusal
    assert sim.requests_to("/mj/submit/imagine") == []
    quota = (await run(emu, "quota", None, member)).split("\n")
    assert quota == [made_words, left_words]


async def test_mod_answers_and_refusals_are_in_the_moderators_language(
    emu: DiscordEmulator, app: Application
) -> None:
    moderator = emu.add_user("modo", permissions=MANAGE_GUILD)
    emu.user_locales[moderator] = "fr"
    member = emu.add_user("minji")
    emu.user_locales[member] = "ko"
    said = await mod(emu, moderator, "limits default", per_day=5, per_hour=2)
    assert said == "Le quota de tous est désormais 5 par jour, 2 par heure."
    said = await mod(emu, moderator, "strikes", limit=2, window_hours=24, ban="12h")
    assert said == "2 avertissements en 1 jour entraînent un bannissement de 12 heures."
    said = await mod(emu, moderator, "ban", member=member, reason="spam", duration="soon")
    assert said.startswith("duration doit ressembler à 30m, 12h, 7d ou 2w")
    assert "Personne n'est banni" in await mod(emu, moderator, "bans")
    # A member who does not moderate is refused in their own language.
    refused = await mod(emu, member, "bans")
    assert refused == "/mod는 모더레이터(서버 관리 권한 또는 모더레이터 역할)만 사용할 수 있습니다."


async def test_the_log_channel_reads_the_servers_language_and_the_member_their_own(
    emu: DiscordEmulator, bots: Running
) -> None:
    emu.guild_locales[emu.guild_id] = "de"  # Discord's server setting, read when it connects
    await bots.start()
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    member = emu.add_user("akiko")
    emu.user_locales[member] = "ja"
    log = emu.add_channel("mod-log")
    await mod(emu, moderator, "logchannel", channel=log)
    await mod(emu, moderator, "terms add", term="gore")
    refusal = await imagine_refused(emu, member, "gore everywhere")
    assert "「gore」が含まれています" in refusal  # only she sees it: Japanese
    await emu.wait_for(lambda: bool(log_posts(emu, log, "⛔ Abgelehnt")), timeout=10)
    (entry,) = log_posts(emu, log, "⛔ Abgelehnt")
    embed = entry["embeds"][0]
    names = {f["name"]: f["value"] for f in embed["fields"]}
    assert names["Anfragende Person"] == f"<@{member}>" and names["Regel"] == "term"
    assert names["Detail"].startswith("Dein Prompt enthält „gore“")
    labels = [c["label"] for row in entry["components"] for c in row["components"]]
    assert labels == ["Anfragenden sperren"]
    assert custom_ids(entry)[0].startswith("mjmod:ban:")
    # The moderators' own change was logged in German too.
    assert log_posts(emu, log, "🛠️ Moderatoraktion: term_add")


async def _public_job(emu: DiscordEmulator, user: int, prompt: str) -> tuple[str, str, str]:
    """An accepted /imagine: its public reply, final status and finish post, as posted."""
    before = {m["id"] for m in emu.messages(emu.channel_id)}
    await emu.slash_command("imagine", {"prompt": prompt}, user_id=user)

    def reply() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in emu.messages(emu.channel_id)
                if m["id"] not in before
                and m.get("interaction_metadata")
                and not m.get("flags", 0) & 128
            ),
            None,
        )

    await emu.wait_for(lambda: reply() is not None, timeout=10, what="the public reply")
    posted = reply()
    assert posted is not None
    thread = int(posted["id"])
    final = await wait_finish(emu, thread)
    status_id = int(emu.messages(thread)[0]["id"])
    await emu.wait_for(
        lambda: "✅" in (emu.message(status_id) or {}).get("content", ""), what="the last status"
    )
    status = (emu.message(status_id) or {}).get("content", "")
    return str(posted["content"]), str(status), str(final["content"])


async def test_mod_language_sets_what_the_channel_reads_and_private_answers_stay_the_members(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    await bots.start()
    moderator = emu.add_user("mod", permissions=MANAGE_GUILD)
    emu.user_locales[moderator] = "de"
    member = emu.add_user("camille")
    emu.user_locales[member] = "fr"
    log = emu.add_channel("mod-log")
    await mod(emu, moderator, "logchannel", channel=log)
    said = await mod(emu, moderator, "language", language="ja")
    assert said == "Antworten, Status, fertige Bilder und der Log-Kanal sind jetzt auf 日本語."
    reply, status, finish = await _public_job(emu, member, "a lighthouse at dusk")
    assert "モード: Midjourney · リクエスト:" in reply and "a lighthouse at dusk" in reply
    assert "✅ 完了" in status
    assert "画像ができました。" in finish
    # The moderators' log channel reads the chosen language too.
    await emu.wait_for(lambda: bool(log_posts(emu, log, "🎨 投稿")), timeout=10)
    posted = log_posts(emu, log, "🎨 投稿")[0]["embeds"][0]
    assert "依頼者" in {f["name"] for f in posted["fields"]}
    # What only the member sees stays French.
    await mod(emu, moderator, "terms add", term="gore")
    refusal = await imagine_refused(emu, member, "gore")
    assert refusal.startswith("Votre prompt contient « gore »")
    # The choice is stored: a restarted bot still speaks Japanese in the channel.
    await bots.stop_all()
    bots.apps.clear()
    await bots.start()
    reply, status, finish = await _public_job(emu, member, "a harbour")
    assert "モード: Midjourney · リクエスト:" in reply and "✅ 完了" in status
    # Back to Discord's server setting (English here).
    said = await mod(emu, moderator, "language", language="discord")
    assert "folgen jetzt der Serversprache" in said
    reply, status, finish = await _public_job(emu, member, "a fox")
    assert "Mode: Midjourney · requested by" in reply
    assert "your image is ready." in finish
