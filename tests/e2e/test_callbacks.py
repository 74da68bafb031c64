"""API callbacks end to end: the `upstream` simulator POSTs notifyHook callbacks to the real bot's
web server; the bot treats each as a hint and reads the task from the API before acting.

Polling is made slow (MJ_POLL_INTERVAL=30, so 150 s with callbacks on) and the bot is never woken
otherwise, so a post that appears within seconds got there through a callback.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import pytest

from bot.app import Application
from bot.core.jobs import JobStatus
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port
from tests.e2e.conftest import Running
from tests.e2e.test_imagine import finish_posts, wait_finish

pytestmark = pytest.mark.parametrize("profile", ["upstream"], indirect=True)

SECRET = "callback-secret-0123456789"


async def start_with_callbacks(bots: Running) -> tuple[Application, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = await bots.start(
        PORT=str(port), PUBLIC_BASE_URL=base, WEBHOOK_SECRET=SECRET, MJ_POLL_INTERVAL="30"
    )
    return app, base


async def imagine_and_wait_for_task(emu: DiscordEmulator, sim: MjProxySimulator) -> str:
    alice = emu.add_user("alice")
    await emu.slash_command("imagine", {"prompt": "a harbour at dawn"}, user_id=alice)
    await emu.wait_for(lambda: bool(sim.tasks), timeout=10, what="the submit")
    return next(iter(sim.tasks))


def all_finish_posts(emu: DiscordEmulator) -> list[dict[str, Any]]:
    channels = [emu.channel_id, *(int(t["id"]) for t in emu.threads())]
    return [m for c in channels for m in finish_posts(emu, c)]


def fetches_of(sim: MjProxySimulator, task_id: str) -> list[Any]:
    return sim.requests_to(f"/mj/task/{task_id}/fetch")


async def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as resp,
    ):
        return resp.status, await resp.text()


async def test_a_callback_gets_the_image_posted_long_before_the_next_poll(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    _, base = await start_with_callbacks(bots)
    started = time.monotonic()
    task_id = await imagine_and_wait_for_task(emu, sim)

    (submit,) = sim.requests_to("/mj/submit/imagine")
    assert submit.json["notifyHook"] == f"{base}/mj/callback/{SECRET}"
    thread = await _thread(emu)
    final = await wait_finish(emu, thread, timeout=15)

    assert time.monotonic() - started < 15  # the next poll is 150 s away
    assert final["attachments"][0]["filename"].startswith(f"mjcord-{task_id}")
    assert sim.callbacks and all(c.get("status") in (200, 202) for c in sim.callbacks)
    assert any(c["body"]["status"] == "SUCCESS" for c in sim.callbacks)
    # The bot read the task from the API rather than trusting the callback body.
    assert fetches_of(sim, task_id)
    assert len(all_finish_posts(emu)) == 1


async def test_a_wrong_secret_gets_404_and_changes_nothing(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.auto_advance = False
    app, base = await start_with_callbacks(bots)
    task_id = await imagine_and_wait_for_task(emu, sim)
    await asyncio.sleep(0.3)  # let the submit's own traffic settle
    api_before, discord_before = len(sim.requests), len(emu.requests)
    forged = sim_task_json(sim, task_id, status="SUCCESS")

    for wrong in ("x" * len(SECRET), SECRET[:-1], SECRET + "0", SECRET.upper()):
        status, text = await post(f"{base}/mj/callback/{wrong}", forged)
        assert (status, text) == (404, "404: Not Found")
    unknown_route = await post(f"{base}/mj/nothing-here", forged)
    assert unknown_route == (404, "404: Not Found")  # indistinguishable from a missing route

    await asyncio.sleep(0.5)
    assert len(sim.requests) == api_before  # no look-up of the task
    assert len(emu.requests) == discord_before  # nothing shown
    assert all_finish_posts(emu) == []
    assert app.web is not None and app.web.callback_counts.get("bad_secret") == 4


async def test_a_forged_success_the_api_does_not_confirm_posts_nothing(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.auto_advance = False
    app, base = await start_with_callbacks(bots)
    task_id = await imagine_and_wait_for_task(emu, sim)
    sim.advance(task_id)  # SUBMITTED at the API: not finished
    await asyncio.sleep(0.3)
    forged = sim_task_json(sim, task_id, status="SUCCESS")

    status, _ = await post(f"{base}/mj/callback/{SECRET}", forged)

    assert status == 202
    await emu.wait_for(lambda: bool(fetches_of(sim, task_id)), timeout=5, what="a fetch")
    await asyncio.sleep(0.5)
    assert all_finish_posts(emu) == []
    assert app.storage is not None
    job = await app.storage.jobs.by_task_id(task_id)
    assert job is not None and not job.finished and job.image_url is None

    # The real thing still works: the API finishes the task and its own callback gets it posted.
    sim.complete(task_id)
    final = await wait_finish(emu, await _thread(emu), timeout=10)
    assert "evil.example" not in str(final)
    job = await app.storage.jobs.by_task_id(task_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED


async def test_bad_callback_bodies_are_rejected_and_unknown_tasks_ignored(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    sim.auto_advance = False
    app, base = await start_with_callbacks(bots)
    url = f"{base}/mj/callback/{SECRET}"

    assert (await post(url, os.urandom(200 * 1024)))[0] == 413
    assert (await post(url, b"<html>not json</html>", "text/html"))[0] == 400
    assert (await post(url, b'["a list"]'))[0] == 400
    assert (await post(url, b'{"status": "SUCCESS"}'))[0] == 400
    assert await post(url, b'{"id": "1730621718151844", "status": "SUCCESS"}') == (
        200,
        '{"ignored": true}',
    )
    await asyncio.sleep(0.3)
    assert sim.requests_to("/mj/task/1730621718151844/fetch") == []
    assert app.web is not None
    assert app.web.callback_counts == {"too_large": 1, "bad_body": 3, "ignored": 1}


def sim_task_json(sim: MjProxySimulator, task_id: str, *, status: str) -> bytes:
    """A callback body shaped like the real one, claiming what the test wants."""
    import json

    from bot.sandbox.mjproxy.tasks import upstream_json

    body = upstream_json(sim.tasks[task_id])
    body.update(
        status=status, progress="100%", imageUrl="https://evil.example/forged.png", buttons=[]
    )
    return json.dumps(body).encode()


async def _thread(emu: DiscordEmulator) -> int:
    await emu.wait_for(lambda: bool(emu.threads()), timeout=10, what="the job's thread")
    return int(emu.threads()[-1]["id"])


async def healthz(app: Application) -> tuple[int, dict[str, Any]]:
    assert app.web is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.web.port}/healthz") as resp,
    ):
        return resp.status, await resp.json()


async def test_healthz_reports_gateway_database_and_last_api_success(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    app = await bots.start()
    await imagine_and_wait_for_task(emu, sim)
    await emu.wait_for(
        lambda: app.tracker is not None and app.tracker.last_api_success is not None,
        timeout=5,
        what="a successful poll",
    )

    status, body = await healthz(app)

    assert status == 200
    assert body["status"] == "ok" and body["gateway"] is True and body["database"] is True
    assert body["last_api_success"] and body["last_api_success"].endswith("+00:00")
    assert body["tracked_jobs"] in (0, 1) and body["cycle_seconds"] > 0


async def test_healthz_is_503_when_the_database_is_gone(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running, db_url: str
) -> None:
    app = await bots.start()
    path = db_url.removeprefix("sqlite:///")
    os.replace(path, path + ".moved")
    os.mkdir(path)  # nothing can open a database file here any more
    assert app.storage is not None
    await app.storage.engine.dispose()  # drop pooled connections to the old file

    status, body = await healthz(app)

    assert status == 503 and body["database"] is False and body["gateway"] is True
    assert body["status"] == "degraded"


async def test_healthz_is_503_when_the_gateway_is_down(
    emu: DiscordEmulator, sim: MjProxySimulator, bots: Running
) -> None:
    app = await bots.start()
    assert app.bot is not None
    await app.bot.close()

    status, body = await healthz(app)

    assert status == 503 and body["gateway"] is False and body["database"] is True
