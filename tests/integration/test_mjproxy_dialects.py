"""The simulator's faithful edges, with a plain aiohttp client: the classic (Java 2.x) profile,
expiring links, new-api's middleware answers, and callbacks delivered at least once.

Each expectation cites where the real server does it (mj-api.md and the servers' source).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.sandbox.mjproxy import MjProxySimulator
from tests.integration.test_mjproxy_simulator import KEY, Api, start


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


@pytest.fixture
async def classic(session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    sim = await start("classic")
    try:
        yield Api(sim, session)
    finally:
        await sim.stop()


# --- classic: the Java midjourney-proxy 2.x -----------------------------------------------------


async def test_classic_task_shape_has_no_buttons_and_javas_nulls(classic: Api) -> None:
    task_id = await classic.imagine("a pig")
    queued = await classic.fetch(task_id)
    # Task.java: progress is null until start(); no buttons field at all.
    assert queued["status"] == "NOT_START" and queued["progress"] is None
    assert queued["imageUrl"] is None and "buttons" not in queued
    classic.sim.complete(task_id)
    done = await classic.fetch(task_id)
    assert set(done) == {
        "id",
        "properties",
        "action",
        "status",
        "prompt",
        "promptEn",
        "description",
        "state",
        "submitTime",
        "startTime",
        "finishTime",
        "imageUrl",
        "progress",
        "failReason",
    }
    assert done["properties"]["messageHash"] == classic.sim.tasks[task_id].job_hash


async def test_classic_has_no_action_modal_or_mode_routes(classic: Api) -> None:
    for path in ("/mj/submit/action", "/mj/submit/modal", "/mj-relax/mj/submit/imagine"):
        status, body = await classic.post(path, {"taskId": "1", "customId": "x", "prompt": "p"})
        # Spring Boot's default error JSON.
        assert status == 404 and body["error"] == "Not Found" and body["path"] == path


async def test_classic_wrong_key_is_a_bare_401(classic: Api) -> None:
    status, body = await classic.call(
        "POST", "/mj/submit/imagine", {"prompt": "x"}, headers={"mj-api-secret": "nope"}
    )
    assert (status, body) == (401, None)
    status, _ = await classic.call(
        "POST", "/mj/submit/imagine", {"prompt": "x"}, headers={"Authorization": KEY}
    )
    assert status == 401  # only mj-api-secret counts (ApiAuthorizeInterceptor)


async def test_classic_change_and_simple_change(classic: Api) -> None:
    grid = await classic.imagine("a pig")
    post = classic.post
    assert (await post("/mj/submit/change", {"action": "UPSCALE"}))[1]["description"] == (
        "taskId不能为空"
    )
    assert (await post("/mj/submit/change", {"taskId": grid}))[1]["description"] == "action参数错误"
    status, body = await post("/mj/submit/change", {"taskId": grid, "action": "ZOOM"})
    assert status == 400 and body["error"] == "Bad Request"  # not a TaskAction: Jackson fails
    status, body = await post("/mj/submit/change", {"taskId": "17", "action": "UPSCALE"})
    assert (status, body["code"], body["description"]) == (200, 3, "关联任务不存在或已失效")
    body = (await post("/mj/submit/change", {"taskId": grid, "action": "UPSCALE", "index": 1}))[1]
    assert (body["code"], body["description"]) == (4, "关联任务状态错误")
    classic.sim.complete(grid)
    body = (await post("/mj/submit/change", {"taskId": grid, "action": "UPSCALE", "index": 2}))[1]
    assert body["code"] == 1
    up = body["result"]
    assert classic.sim.tasks[up].description == f"/up {grid} U2"
    classic.sim.complete(up)
    body = (await post("/mj/submit/change", {"taskId": up, "action": "VARIATION", "index": 1}))[1]
    assert (body["code"], body["description"]) == (4, "关联任务不允许执行变化")
    for content, action in ((f"{grid} v3", "VARIATION"), (f"{grid} R", "REROLL")):
        body = (await post("/mj/submit/simple-change", {"content": content}))[1]
        assert body["code"] == 1 and classic.sim.tasks[body["result"]].action == action
    for bad in (f"{grid} U5", f"{grid}", f"{grid} X1", 7):
        body = (await post("/mj/submit/simple-change", {"content": bad}))[1]
        assert (body["code"], body["description"]) == (4, "content参数错误")


async def test_task_list_and_queue_where_the_servers_have_them(
    session: aiohttp.ClientSession,
) -> None:
    for profile in ("aggregator", "upstream", "classic"):
        sim = await start(profile)
        try:
            api = Api(sim, session)
            first = await api.imagine("one")
            await asyncio.sleep(0.002)
            second = await api.imagine("two")
            sim.complete(first)
            listed = await api.call("GET", "/mj/task/list")
            queued = await api.call("GET", "/mj/task/queue")
            if profile == "aggregator":  # new-api routes neither
                assert listed[0] == queued[0] == 404
                continue
            assert listed[0] == 200 and [t["id"] for t in listed[1]] == [second, first]
            if profile == "upstream":  # the C# proxy commented its queue out
                assert queued[0] == 404
            else:
                assert queued[0] == 200 and [t["id"] for t in queued[1]] == [second]
        finally:
            await sim.stop()


def test_the_command_line_serves_the_classic_profile() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.sandbox.mjproxy", "--profile", "classic", "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")

        async def probe() -> tuple[int, Any]:
            async with (
                aiohttp.ClientSession() as s,
                s.post(f"{base}/mj/submit/action", json={}, headers={"mj-api-secret": KEY}) as resp,
            ):
                return resp.status, await resp.json()

        status, body = asyncio.run(probe())
        assert status == 404 and body["path"] == "/mj/submit/action"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- links that expire ----------------------------------------------------------------------------


@pytest.mark.parametrize("expired_status", [404, 403])
async def test_image_links_expire(session: aiohttp.ClientSession, expired_status: int) -> None:
    for profile in ("upstream", "aggregator"):
        sim = await start(profile)
        try:
            api = Api(sim, session)
            task_id = await api.imagine()
            sim.complete(task_id)
            url = (await api.fetch(task_id))["imageUrl"]
            async with session.get(url) as resp:
                assert resp.status == 200
            sim.faults.link_ttl_seconds = 0.0
            sim.faults.expired_link_status = expired_status
            await asyncio.sleep(0.01)
            assert (await api.fetch(task_id))["imageUrl"] == url  # the server keeps the old link
            async with session.get(url) as resp:
                assert resp.status == expired_status
                body = await resp.text()
            if profile == "aggregator":
                # RelayMidjourneyImage relays the upstream's status and body as `error`.
                assert "no longer available" in body and body.startswith("{")
        finally:
            await sim.stop()


# --- new-api's middleware ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status", "words"),
    [
        ("exhausted", 401, "该令牌额度已用尽"),
        ("expired", 401, "该令牌已过期"),
        ("disabled", 401, "该令牌状态不可用"),
        ("user_banned", 403, "用户已被封禁"),
    ],
)
async def test_new_api_key_checks(
    session: aiohttp.ClientSession, state: str, status: int, words: str
) -> None:
    sim = await start("aggregator")
    try:
        sim.faults.key_state = state  # type: ignore[assignment]
        got, body = await Api(sim, session).post("/mj/submit/imagine", {"prompt": "x"})
        assert got == status and body["error"]["type"] == "new_api_error"
        assert body["error"]["message"].startswith(words + " (request id: ")
    finally:
        await sim.stop()


async def test_new_api_without_a_channel_or_upstream(session: aiohttp.ClientSession) -> None:
    sim = await start("aggregator")
    try:
        api = Api(sim, session)
        known = await api.imagine()
        sim.faults.no_channel = True
        status, body = await api.post("/mj/submit/imagine", {"prompt": "x"})
        assert status == 503 and "mj_imagine 无可用渠道" in body["error"]["message"]
        assert (await api.fetch(known))["id"] == known  # fetch chooses no channel
        sim.faults.no_channel, sim.faults.upstream_down = False, True
        status, body = await api.post("/mj/submit/imagine", {"prompt": "x"})
        assert (status, body) == (
            400,
            {"description": "do_request_failed ", "type": "upstream_error", "code": 5},
        )
    finally:
        await sim.stop()


# --- callbacks, at least once --------------------------------------------------------------------


async def test_callbacks_at_least_once_duplicate_reorder_and_drop(
    session: aiohttp.ClientSession,
) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sim = MjProxySimulator(profile="upstream", api_key=KEY, auto_advance=False, seed=7)
    await sim.start()
    try:
        sim.faults.at_least_once_callbacks = True
        sim.faults.callback_max_delay = 0.05
        api = Api(sim, session)
        ids = [await api.imagine(f"pig {i}", notifyHook=url) for i in range(6)]
        for _ in range(10):
            sim.advance()
        # Quiet for three times the longest delay, every send answered: all delivered.
        last, quiet = -1, 0
        while quiet < 15:
            await asyncio.sleep(0.01)
            done = len(received) == len(sim.callbacks)
            quiet = quiet + 1 if done and len(received) == last else 0
            last = len(received)
        keys = Counter((b["id"], b["status"], b["progress"]) for b in received)
        assert any(n > 1 for n in keys.values())  # some twice
        assert sim.dropped_callbacks  # some never
        order = [(b["id"], b["status"], b["progress"]) for b in received]
        per_task = {i: [o for o in order if o[0] == i] for i in ids}
        ranks = {"SUBMITTED": 0, "IN_PROGRESS": 1, "SUCCESS": 2}

        def rank(o: tuple[str, str, str]) -> tuple[int, int]:
            return ranks[o[1]], int(o[2].rstrip("%") or 0)

        assert any(
            [rank(o) for o in seq] != sorted(rank(o) for o in seq) for seq in per_task.values()
        )  # some out of order
    finally:
        await sim.stop()
        await runner.cleanup()
