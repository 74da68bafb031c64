"""Smoke tests of the Midjourney-proxy simulator itself, with a plain aiohttp client.

They pin the wire behaviour other tests rely on (mj-api.md §1–§5): the two profiles' auth,
envelopes, code rewrites, task shapes, images and callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.sandbox.mjproxy import MjProxySimulator

KEY = "sk-test"
PROFILES = ["aggregator", "upstream"]


def auth(profile: str, key: str = KEY) -> dict[str, str]:
    if profile == "aggregator":
        return {"Authorization": f"Bearer {key}"}
    return {"mj-api-secret": key}


class Api:
    """A thin JSON client bound to one simulator and profile."""

    def __init__(self, sim: MjProxySimulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session
        self.headers = auth(sim.profile)

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method,
            self.sim.base_url + path,
            json=body,
            headers=self.headers if headers is None else headers,
        ) as resp:
            raw = await resp.read()
            try:
                return resp.status, await resp.json(content_type=None) if raw else None
            except ValueError:
                return resp.status, raw

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        return await self.call("POST", path, body)

    async def fetch(self, task_id: str) -> Any:
        status, body = await self.call("GET", f"/mj/task/{task_id}/fetch")
        assert status == 200, body
        return body

    async def imagine(self, prompt: str = "a pig", **extra: Any) -> str:
        status, body = await self.post("/mj/submit/imagine", {"prompt": prompt, **extra})
        assert status == 200 and body["code"] == 1, body
        return str(body["result"])

    async def image(self, url: str) -> Image.Image:
        async with self.session.get(url) as resp:
            assert resp.status == 200, await resp.text()
            image = Image.open(io.BytesIO(await resp.read()))
            image.load()
            return image


async def start(profile: str, **kw: Any) -> MjProxySimulator:
    kw.setdefault("auto_advance", False)
    kw.setdefault("step_seconds", 0.02)
    sim = MjProxySimulator(profile=profile, api_key=KEY, **kw)  # type: ignore[arg-type]
    await sim.start()
    return sim


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


@pytest.fixture(params=PROFILES)
async def api(request: pytest.FixtureRequest, session: aiohttp.ClientSession) -> AsyncIterator[Api]:
    sim = await start(request.param)
    try:
        yield Api(sim, session)
    finally:
        await sim.stop()


async def test_a_job_runs_on_the_clock_to_success_with_a_grid_and_buttons(
    session: aiohttp.ClientSession,
) -> None:
    for profile in PROFILES:
        async with MjProxySimulator(profile=profile, step_seconds=0.01, image_px=64) as sim:  # type: ignore[arg-type]
            api = Api(sim, session)
            task_id = await api.imagine("a lighthouse --v 6.1", state="s1")
            assert len(task_id) == 16 and task_id.isdigit()
            statuses = []
            for _ in range(200):
                task = await api.fetch(task_id)
                statuses.append((task["status"], task["progress"]))
                if task["status"] == "SUCCESS":
                    break
                await asyncio.sleep(0.01)
            assert task["status"] == "SUCCESS" and task["progress"] == "100%"
            assert task["state"] == "s1" and task["finishTime"] > 0
            # What a client polls is the lifecycle so far, never out of order (a loaded machine
            # polls more coarsely, so which steps it sees varies; the clock ran each of them).
            order = ["", "NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS"]
            seen = [(order.index(s), int(p.rstrip("%") or 0)) for s, p in statuses]
            assert seen == sorted(seen), statuses
            stepped = [(snap["status"], snap["progress"]) for _, snap in sim.tasks[task_id].history]
            assert ("IN_PROGRESS", "46%") in stepped and stepped[-1] == ("SUCCESS", "100%")
            labels = [b["label"] for b in task["buttons"]]
            assert labels == ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]
            assert task["buttons"][4]["emoji"] == "🔄"
            assert task["properties"]["finalPrompt"]
            image = await api.image(task["imageUrl"])
            assert image.format == "PNG" and image.size == (64, 64)
            # Four coloured quadrants.
            corners = {image.getpixel((8, 8)), image.getpixel((56, 8)), image.getpixel((8, 56))}
            assert len(corners) == 3
            if profile == "aggregator":
                assert task["imageUrl"] == f"{sim.base_url}/mj/image/{task_id}"
                assert (task["customId"], task["botType"], task["maskBase64"]) == ("", "", "")
                assert set(task["properties"]) == {"finalPrompt", "finalZhPrompt"}
            else:
                assert "/attachments/" in task["imageUrl"] and "&hm=" in task["imageUrl"]
                assert task["properties"]["discordInstanceId"]


async def test_the_aggregator_shows_an_empty_status_until_its_first_poll(
    session: aiohttp.ClientSession,
) -> None:
    sim = await start("aggregator", poll_granularity=0.3)
    try:
        api = Api(sim, session)
        task_id = await api.imagine()
        first = await api.fetch(task_id)
        assert (first["status"], first["progress"], first["buttons"]) == ("", "0%", None)
        # new-api builds /mj/image/<id> only once the upstream task has an image.
        assert first["description"] == "Submit success" and first["imageUrl"] == ""
        sim.complete(task_id)
        assert (await api.fetch(task_id))["status"] in ("", "NOT_START")  # not polled yet
        await asyncio.sleep(0.35)
        done = await api.fetch(task_id)
        assert done["status"] == "SUCCESS" and done["description"] == "Submit success"
    finally:
        await sim.stop()


async def test_failure_shapes(api: Api) -> None:
    task_id = await api.imagine()
    api.sim.fail(task_id, "任务超时")
    task = await api.fetch(task_id)
    assert task["status"] == "FAILURE" and task["failReason"] == "任务超时"
    assert task["progress"] == ("100%" if api.sim.profile == "aggregator" else "")


async def test_code_22_and_the_aggregator_rewrite(api: Api) -> None:
    api.sim.faults.queue_position = 2
    status, body = await api.post("/mj/submit/imagine", {"prompt": "a pig"})
    assert status == 200 and body["description"] == "排队中，前面还有2个任务"
    assert body["properties"]["numberOfQueues"] == 2
    assert body["code"] == (1 if api.sim.profile == "aggregator" else 22)
    assert body["result"] in api.sim.tasks


async def test_code_24_names_the_banned_word(api: Api) -> None:
    status, body = await api.post("/mj/submit/imagine", {"prompt": "So much GORE here"})
    assert (status, body["code"], body["description"]) == (200, 24, "可能包含敏感词")
    assert body["properties"]["bannedWord"] == "gore" and body["result"] is None
    # Whole words only.
    assert (await api.post("/mj/submit/imagine", {"prompt": "gorect"}))[1]["code"] == 1


@pytest.mark.parametrize(
    ("style", "code", "text"),
    [("plus", 23, "队列已满，请稍后尝试"), ("csharp", 9, "提交失败，队列已满，请稍后重试")],
)
async def test_queue_full(api: Api, style: str, code: int, text: str) -> None:
    api.sim.faults.queue_full = True
    api.sim.faults.queue_full_style = style  # type: ignore[assignment]
    status, body = await api.post("/mj/submit/imagine", {"prompt": "a pig"})
    assert (status, body["code"], body["description"]) == (200, code, text)
    assert api.sim.tasks == {}


async def test_validation(api: Api) -> None:
    aggregator = api.sim.profile == "aggregator"
    status, body = await api.post("/mj/submit/imagine", {"prompt": "  "})
    # new-api writes `fmt.Sprintf("%s %s", Description, Result)`: a trailing space.
    if aggregator:
        assert (status, body) == (
            400,
            {"description": "prompt_is_required ", "type": "upstream_error", "code": 4},
        )
    else:
        assert (status, body["code"], body["description"]) == (200, 4, "prompt不能为空")
    png = base64.b64encode(b"\x89PNG fake").decode()
    for bad in [png, f"data:IMAGE/PNG;base64,{png}", "data:image/png;base64,@@@"]:
        status, body = await api.post("/mj/submit/imagine", {"prompt": "x", "base64Array": [bad]})
        assert (status, body["code"], body["description"]) == (200, 4, "base64格式错误")
    status, body = await api.post(
        "/mj/submit/blend", {"base64Array": [f"data:image/png;base64,{png}"]}
    )
    assert (body["code"], body["description"]) == (4, "图片参数错误，2~5张图片")
    status, body = await api.post("/mj/submit/imagine", {"prompt": "x", "state": "s" * 256})
    assert body["code"] == 4


async def test_wrong_key(api: Api) -> None:
    status, body = await api.call(
        "POST", "/mj/submit/imagine", {"prompt": "x"}, headers=auth(api.sim.profile, "sk-nope")
    )
    if api.sim.profile == "aggregator":
        assert status == 401 and body["error"]["message"] == "无效的令牌"
    else:
        assert status == 403
    assert api.sim.tasks == {}


async def test_aggregator_accepts_its_other_key_spellings(session: aiohttp.ClientSession) -> None:
    sim = await start("aggregator")
    try:
        api = Api(sim, session)
        for headers in [
            {"Authorization": "Bearer test"},
            {"Authorization": KEY},
            {"mj-api-secret": KEY},
            {"Authorization": "midjourney-proxy", "mj-api-secret": KEY},
        ]:
            status, _ = await api.call("POST", "/mj/task/list-by-condition", {"ids": []}, headers)
            assert status == 200, headers
        status, _ = await api.call("POST", "/mj/task/list-by-condition", {"ids": []}, {})
        assert status == 401
    finally:
        await sim.stop()


@pytest.mark.parametrize(("style", "status"), [("empty", 200), ("204", 204)])
async def test_unknown_ids_upstream(
    session: aiohttp.ClientSession, style: str, status: int
) -> None:
    sim = await start("upstream")
    try:
        sim.faults.unknown_id_style = style  # type: ignore[assignment]
        api = Api(sim, session)
        assert await api.call("GET", "/mj/task/1730000000000999/fetch") == (status, None)
    finally:
        await sim.stop()


async def test_unknown_id_aggregator(session: aiohttp.ClientSession) -> None:
    sim = await start("aggregator")
    try:
        status, body = await Api(sim, session).call("GET", "/mj/task/1730000000000999/fetch")
        assert (status, body["description"], body["code"]) == (400, "task_no_found ", 4)
    finally:
        await sim.stop()


async def test_list_by_condition(api: Api) -> None:
    ids = [await api.imagine(f"pig {i}") for i in range(3)]
    status, body = await api.post("/mj/task/list-by-condition", {"ids": [*ids, "999"]})
    assert status == 200 and sorted(t["id"] for t in body) == sorted(ids)
    assert await api.post("/mj/task/list-by-condition", {}) == (200, [])
    api.sim.faults.list_by_condition_status = 405
    assert (await api.post("/mj/task/list-by-condition", {"ids": ids}))[0] == 405
    assert len(api.sim.requests_to("/mj/task/list-by-condition")) == 3


async def test_actions_upscale_and_custom_zoom_modal(api: Api) -> None:
    aggregator = api.sim.profile == "aggregator"
    grid_id = await api.imagine("a pig --v 6.1")
    status, body = await api.post(
        "/mj/submit/action", {"taskId": grid_id, "customId": "MJ::JOB::upsample::1::x"}
    )
    assert status == (400 if aggregator else 200)
    assert body["description"] == ("task_status_not_success " if aggregator else "关联任务状态错误")
    api.sim.complete(grid_id)
    grid = await api.fetch(grid_id)
    status, body = await api.post(
        "/mj/submit/action", {"taskId": grid_id, "customId": grid["buttons"][1]["customId"]}
    )
    assert body["code"] == 1
    up_id = body["result"]
    api.sim.complete(up_id)
    up = await api.fetch(up_id)
    assert up["action"] == "UPSCALE" and up["buttons"][0]["label"] == "Upscale (Subtle)"
    assert "upsample_v6r1_2x_subtle" in up["buttons"][0]["customId"]
    upscale = await api.image(up["imageUrl"])
    grid_image = await api.image(grid["imageUrl"])
    # U2 is the top-right quadrant's colour.
    assert upscale.getpixel((2, 2)) == grid_image.getpixel((grid_image.width - 2, 2))
    zoom = next(b["customId"] for b in up["buttons"] if "CustomZoom" in b["customId"])
    status, body = await api.post("/mj/submit/action", {"taskId": up_id, "customId": zoom})
    assert (body["code"], body["description"]) == (21, "Waiting for window confirm")
    assert body["properties"]["finalPrompt"]
    zoom_id = body["result"]
    assert api.sim.tasks[zoom_id].status == "MODAL"
    status, body = await api.post("/mj/submit/modal", {"taskId": zoom_id, "prompt": "a pig"})
    assert body["code"] == 4  # CustomZoom needs --zoom
    status, body = await api.post(
        "/mj/submit/modal", {"taskId": zoom_id, "prompt": "a pig --zoom 1.5"}
    )
    assert body["code"] == 1 and api.sim.tasks[zoom_id].status == "NOT_START"


async def test_action_errors(api: Api) -> None:
    aggregator = api.sim.profile == "aggregator"
    status, body = await api.post(
        "/mj/submit/action", {"taskId": "1730000000000999", "customId": "MJ::JOB::upsample::1::x"}
    )
    if aggregator:
        assert (status, body["description"]) == (400, "task_not_found ")
    else:
        assert (status, body["code"], body["description"]) == (404, 3, "关联任务不存在或已失效")
    grid_id = await api.imagine()
    api.sim.complete(grid_id)
    status, body = await api.post(
        "/mj/submit/action", {"taskId": grid_id, "customId": "MJ::BOOKMARK::x"}
    )
    if aggregator:
        assert (status, body["description"]) == (400, "unknown_action:MJ::BOOKMARK::x ")
    else:
        assert (status, body["code"], body["result"]) == (200, 1, grid_id)
    status, body = await api.post("/mj/submit/action", {"taskId": grid_id, "customId": "MJ::X::1"})
    if aggregator:
        assert (status, body["description"]) == (400, "unknown_action:MJ::X::1 ")
    else:
        assert (status, body["code"], body["description"]) == (200, 4, "未知的 Action 类型")


async def test_remix_modal_is_code_1_through_the_aggregator(api: Api) -> None:
    grid_id = await api.imagine()
    api.sim.complete(grid_id)
    api.sim.faults.modal_actions = True
    _, body = await api.post(
        "/mj/submit/action", {"taskId": grid_id, "customId": "MJ::JOB::variation::2::h"}
    )
    assert body["code"] == (1 if api.sim.profile == "aggregator" else 21)
    assert api.sim.tasks[body["result"]].status == "MODAL"


async def test_describe_and_blend(api: Api) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(out, format="PNG")
    uri = f"data:image/png;base64,{base64.b64encode(out.getvalue()).decode()}"
    _, body = await api.post("/mj/submit/describe", {"base64": uri})
    assert body["code"] == 1
    api.sim.complete(body["result"])
    described = await api.fetch(body["result"])
    assert described["properties"]["finalPrompt"].startswith("1️⃣ ")
    assert "MJ::Job::PicReader::1" in [b["customId"] for b in described["buttons"]]
    _, body = await api.post("/mj/submit/blend", {"base64Array": [uri, uri]})
    assert body["code"] == 1
    api.sim.complete(body["result"])
    blended = await api.fetch(body["result"])
    assert blended["action"] == "BLEND" and (await api.image(blended["imageUrl"])).size[0] > 0


async def test_transport_faults(api: Api) -> None:
    faults = api.sim.faults
    faults.http_status = 502
    assert (await api.post("/mj/submit/imagine", {"prompt": "x"}))[0] == 502
    faults.http_status = None
    faults.not_json = True
    status, body = await api.post("/mj/submit/imagine", {"prompt": "x"})
    assert status == 200 and isinstance(body, bytes) and body.startswith(b"<html>")
    faults.not_json = False
    faults.rate_limited = True
    status, body = await api.post("/mj/submit/imagine", {"prompt": "x"})
    assert status == 429
    if api.sim.profile == "aggregator":
        assert body["code"] == 30
    faults.rate_limited = False
    faults.drop_connection = True
    with pytest.raises(aiohttp.ClientError):
        await api.post("/mj/submit/imagine", {"prompt": "x"})
    faults.drop_connection = False
    grid_id = await api.imagine()
    api.sim.complete(grid_id)
    faults.csharp_envelope = True
    # /imagine catches the limit as code 4; the other submits answer the C# envelope.
    assert (await api.post("/mj/submit/imagine", {"prompt": "x"}))[1]["code"] == 4
    status, body = await api.post(
        "/mj/submit/action", {"taskId": grid_id, "customId": "MJ::JOB::variation::1::h"}
    )
    assert (status, body["success"], body["message"]) == (200, False, "并发数已达上限")


async def test_mode_prefixes_reach_the_api(api: Api) -> None:
    status, body = await api.post("/mj-relax/mj/submit/imagine", {"prompt": "a pig"})
    assert status == 200 and body["code"] == 1
    assert api.sim.tasks[body["result"]].mode == "RELAX"
    assert api.sim.requests_to("/mj/submit/imagine")[0].path == "/mj-relax/mj/submit/imagine"


async def test_notify_hook_upstream_only(session: aiohttp.ClientSession) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        for profile in PROFILES:
            received.clear()
            sim = await start(profile, step_seconds=0.005, auto_advance=True)
            try:
                api = Api(sim, session)
                task_id = await api.imagine(notifyHook=url)
                for _ in range(300):
                    if sim.tasks[task_id].status == "SUCCESS" and (
                        profile == "aggregator" or len(sim.callbacks) >= 9
                    ):
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                if profile == "aggregator":
                    assert received == [] and sim.callbacks == []
                    assert sim.tasks[task_id].notify_hook is None
                else:
                    keys = sorted({f"{b['status']}:{b['progress']}" for b in received})
                    assert len(keys) == len(received) == 9  # SUBMITTED, 7 progress, SUCCESS
                    assert "SUCCESS:100%" in keys and "SUBMITTED:0%" in keys
                    final = next(b for b in received if b["status"] == "SUCCESS")
                    assert final["id"] == task_id and final["properties"]["notifyHook"] == url
                    assert all(c["status"] == 200 for c in sim.callbacks)
            finally:
                await sim.stop()
    finally:
        await runner.cleanup()


async def test_a_failing_hook_is_only_recorded(session: aiohttp.ClientSession) -> None:
    sim = await start("upstream")
    try:
        task_id = await Api(sim, session).imagine(notifyHook="http://127.0.0.1:9/nowhere")
        sim.complete(task_id)
        for _ in range(100):
            if sim.callbacks:
                break
            await asyncio.sleep(0.01)
        (record,) = sim.callbacks
        assert record["url"].endswith("/nowhere") and "error" in record
    finally:
        await sim.stop()


def test_the_command_line_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot.sandbox.mjproxy", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "--profile" in out.stdout and "--step-seconds" in out.stdout


async def test_noisy_images_are_large(session: aiohttp.ClientSession) -> None:
    sim = await start("upstream", image_px=512)
    try:
        sim.faults.noisy_images = True
        api = Api(sim, session)
        task_id = await api.imagine()
        sim.complete(task_id)
        url = (await api.fetch(task_id))["imageUrl"]
        async with session.get(url) as resp:
            data = await resp.read()
        assert len(data) > 512 * 512 * 3 * 0.9  # noise does not compress
        async with session.get(url) as resp:
            assert await resp.read() == data  # rendered once, served the same every time
    finally:
        await sim.stop()


async def test_never_finish_and_fail_reason_on_the_step_clock(api: Api) -> None:
    api.sim.faults.never_finish = True
    stuck = await api.imagine()
    for _ in range(20):
        api.sim.advance(stuck)
    assert (api.sim.tasks[stuck].status, api.sim.tasks[stuck].progress) == ("IN_PROGRESS", "93%")
    api.sim.faults.fail_reason = "[Banned prompt detected] Sorry!"
    doomed = await api.imagine()
    api.sim.advance(doomed)
    assert api.sim.tasks[doomed].status == "SUBMITTED"
    api.sim.advance(doomed)
    assert api.sim.tasks[doomed].status == "FAILURE"
    assert api.sim.tasks[doomed].fail_reason == "[Banned prompt detected] Sorry!"
