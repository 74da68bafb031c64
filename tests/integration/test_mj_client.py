"""MjClient against the Midjourney-proxy simulator over loopback, in all three profiles.

Each test states one outcome of mj-api.md §1/§3 and asserts both what the simulator received
(headers, exact JSON bodies) and the core result or error the client returned. The few answers
the simulator cannot give (HTTP 200 with an empty body, 404 code 3 on fetch, new-api's
quota_not_enough, a refused connection …) come from a tiny scripted aiohttp server in this file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.mj import MjClient
from bot.adapters.mj import parse_task as _parse_task
from bot.core.errors import (
    ApiError,
    BannedPrompt,
    InvalidRequest,
    Misconfigured,
    NoAccount,
    QueueFull,
    RateLimited,
    TaskNotFound,
    Unavailable,
    Unsupported,
)
from bot.core.images import check_reference
from bot.core.jobs import Button, Mode, ReferenceImage, Submission, TaskSnapshot, TaskStatus
from bot.core.ports import ImageApi, ImagineRequest

KEY = "sk-test"
# Generous enough for a loaded 2-core machine; tests about timeouts set their own short ones.
FAST = {"connect_timeout": 5.0, "read_timeout": 10.0}

# --- a tiny scripted server for the answers the simulator cannot give ---------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Scripted:
    """Answers each path with a canned response; records every request."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def on(
        self, path: str, status: int = 200, body: bytes | str | Any = b"", **headers: str
    ) -> None:
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body

        async def reply(_: web.Request) -> web.StreamResponse:
            return web.Response(
                status=status, body=data if status != 204 else None, headers=headers
            )

        self.routes[path] = reply

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(request.method, request.path, dict(request.headers), await request.read())
        )
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="Not Found")
        return await handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    server = Scripted()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def sclient(scripted: Scripted) -> AsyncIterator[MjClient]:
    async with MjClient(scripted.base_url, KEY, **FAST) as client:
        yield client


def task_json(task_id: str = "1730621826053455", **over: Any) -> dict[str, Any]:
    """A new-api DTO task (mj-api.md §4.5), overridable field by field."""
    task = {
        "id": task_id,
        "action": "IMAGINE",
        "customId": "",
        "botType": "",
        "prompt": "pig --v 6.1",
        "promptEn": "pig --v 6.1",
        "description": "Submit success",
        "state": "",
        "submitTime": 1730621826053,
        "startTime": 1730621828024,
        "finishTime": 0,
        "imageUrl": "",
        "status": "IN_PROGRESS",
        "progress": "46%",
        "failReason": "",
        "buttons": None,
        "maskBase64": "",
        "properties": None,
    }
    task.update(over)
    return task


def png(seed: int = 0) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"tEXt", b"seed\x00" + str(seed).encode())
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def ref(option: str = "image1", seed: int = 0) -> ReferenceImage:
    return check_reference(option, f"{option}.png", png(seed), max_bytes=1 << 20)


def data_uri(image: ReferenceImage) -> str:
    return f"data:image/png;base64,{base64.b64encode(image.data).decode()}"


# --- parsing: any JSON at all becomes a snapshot or nothing, never an exception ------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
task_fields = st.fixed_dictionaries(
    {},
    optional={
        k: json_values
        for k in [
            "id",
            "status",
            "progress",
            "action",
            "prompt",
            "promptEn",
            "imageUrl",
            "failReason",
            "state",
            "buttons",
            "properties",
            "submitTime",
            "finishTime",
        ]
    },
)


@given(st.one_of(json_values, task_fields))
def test_any_json_parses_to_a_snapshot_or_none(raw: Any) -> None:
    snap = _parse_task(raw)
    if snap is not None:
        assert snap.task_id and 0 <= snap.progress <= 100
        assert all(isinstance(b, Button) and b.custom_id for b in snap.buttons)


# --- scripted-server tests: parsing and the odd answers -----------------------------------------


def test_the_client_satisfies_the_port() -> None:
    client: ImageApi = MjClient("http://127.0.0.1:1", KEY)
    assert isinstance(client, MjClient)


async def test_fetch_parses_the_new_api_dto(scripted: Scripted, sclient: MjClient) -> None:
    scripted.on("/mj/task/1/fetch", body=task_json("1", properties={"finalPrompt": "pig"}))
    snap = await sclient.fetch("1")
    assert snap == TaskSnapshot(
        task_id="1",
        status=TaskStatus.IN_PROGRESS,
        progress=46,
        action="IMAGINE",
        prompt="pig --v 6.1",
        final_prompt="pig",
        image_url=None,
        submit_time_ms=1730621826053,
        finish_time_ms=None,
    )


async def test_fetch_parses_status_empty_as_unknown(scripted: Scripted, sclient: MjClient) -> None:
    scripted.on("/mj/task/1/fetch", body=task_json("1", status="", progress="", submitTime=0))
    snap = await sclient.fetch("1")
    assert (snap.status, snap.progress, snap.submit_time_ms) == (TaskStatus.UNKNOWN, 0, None)


async def test_fetch_parses_new_api_failure_with_progress_100(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on(
        "/mj/task/1/fetch",
        body=task_json("1", status="FAILURE", progress="100%", failReason="可能包含敏感词"),
    )
    snap = await sclient.fetch("1")
    assert (snap.status, snap.progress, snap.fail_reason) == (
        TaskStatus.FAILURE,
        0,
        "可能包含敏感词",
    )


async def test_fetch_parses_buttons_and_the_java_shape(
    scripted: Scripted, sclient: MjClient
) -> None:
    buttons = [
        {"customId": "MJ::JOB::upsample::1::h", "emoji": "", "label": "U1", "type": 2, "style": 2},
        {"customId": "MJ::JOB::reroll::0::h::SOLO", "emoji": "🔄", "label": "", "style": 1},
        {"customId": "", "label": "broken"},
        "junk",
    ]
    scripted.on(
        "/mj/task/2/fetch",
        body={
            "id": "2",
            "action": "IMAGINE",
            "status": "SUCCESS",
            "progress": "100%",
            "prompt": "猫猫",
            "promptEn": "Cat",
            "submitTime": 1689231405854,
            "finishTime": 1689231544312,
            "imageUrl": "https://cdn.example/x.png",
            "failReason": None,
            "state": "g1:c2",
            "buttons": buttons,
            "properties": {"finalPrompt": "Cat"},
        },
    )
    snap = await sclient.fetch("2")
    assert snap.buttons == (
        Button("MJ::JOB::upsample::1::h", "U1", "", 2),
        Button("MJ::JOB::reroll::0::h::SOLO", "", "🔄", 1),
    )
    assert (snap.status, snap.progress, snap.image_url, snap.final_prompt, snap.state) == (
        TaskStatus.SUCCESS,
        100,
        "https://cdn.example/x.png",
        "Cat",
        "g1:c2",
    )
    assert (snap.fail_reason, snap.finish_time_ms) == ("", 1689231544312)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b""),  # the Java proxy: controller returns null
        (200, b"null"),
        (204, b""),  # the C# proxy: ActionResult null
        (404, {"code": 3, "description": "任务不存在", "result": None, "properties": {}}),
        (400, {"description": "task_no_found ", "type": "upstream_error", "code": 4}),
    ],
    ids=["200-empty", "200-null", "204", "404-code-3", "400-task_no_found"],
)
async def test_fetch_of_an_unknown_id_is_task_not_found(
    scripted: Scripted, sclient: MjClient, status: int, body: Any
) -> None:
    scripted.on("/mj/task/404/fetch", status=status, body=body)
    with pytest.raises(TaskNotFound):
        await sclient.fetch("404")


async def test_fetch_from_a_url_without_the_api_is_unsupported(sclient: MjClient) -> None:
    with pytest.raises(Unsupported):
        await sclient.fetch("1")


async def test_code_9_system_error_is_unavailable(scripted: Scripted, sclient: MjClient) -> None:
    scripted.on(
        "/mj/submit/imagine",
        body={"code": 9, "description": "提交失败，系统异常", "result": None, "properties": {}},
    )
    with pytest.raises(Unavailable, match="系统异常"):
        await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))


async def test_code_9_queue_full_wording_is_queue_full(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on(
        "/mj/submit/imagine",
        body={"code": 9, "description": "提交失败，队列已满，请稍后重试", "result": None},
    )
    with pytest.raises(QueueFull):
        await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))


async def test_code_1_keeps_new_apis_queue_position(scripted: Scripted, sclient: MjClient) -> None:
    scripted.on(
        "/mj/submit/imagine",
        body={
            "code": 1,
            "description": "排队中",
            "result": "77",
            "properties": {"numberOfQueues": 2},
        },
    )
    sub = await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))
    assert sub == Submission("77", queue_position=2, description="排队中")


async def test_new_api_quota_not_enough_is_an_operator_problem(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on(
        "/mj/submit/imagine",
        status=400,
        body={"description": "quota_not_enough", "type": "upstream_error", "code": 4},
    )
    with pytest.raises(Misconfigured) as err:
        await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))
    assert "out of credit" in err.value.member_message


@pytest.mark.parametrize(
    ("description", "error"),
    [
        ("prompt_is_required", InvalidRequest),
        ("custom_id_is_required", InvalidRequest),
        ("task_status_not_success", InvalidRequest),
        ("unknown_action:MJ::BOOKMARK::abc", InvalidRequest),
        ("bind_request_body_failed", InvalidRequest),
        ("task_not_found", TaskNotFound),
        ("do_request_failed Post http://upstream: EOF", Unavailable),
    ],
)
async def test_new_api_errors_map_to_core_errors(
    scripted: Scripted, sclient: MjClient, description: str, error: type[ApiError]
) -> None:
    code = 5 if description.startswith("do_request") else 4
    scripted.on(
        "/mj/submit/action",
        status=400,
        body={"description": description, "type": "upstream_error", "code": code},
    )
    with pytest.raises(error) as err:
        await sclient.action("1", "MJ::JOB::upsample::1::h")
    assert description.split(" ")[0] in err.value.detail


async def test_new_api_code_30_is_rate_limited_with_retry_after_date(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on(
        "/mj/submit/imagine",
        status=429,
        body={"description": "当前分组负载已饱和", "type": "upstream_error", "code": 30},
        **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
    )
    with pytest.raises(RateLimited) as err:
        await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))
    assert err.value.retry_after == 0.0  # a date in the past: retry now


@pytest.mark.parametrize(
    ("status", "message", "error"),
    [
        (200, "并发数已达上限", QueueFull),
        (200, "用户今日绘图次数已达上限", InvalidRequest),
        (200, "您无权限访问", Misconfigured),
        (500, "操作失败", Unavailable),
    ],
)
async def test_csharp_envelope(
    scripted: Scripted, sclient: MjClient, status: int, message: str, error: type[ApiError]
) -> None:
    scripted.on(
        "/mj/submit/action",
        status=status,
        body={"success": False, "code": 0, "message": message, "timestamp": "1730621826053"},
    )
    with pytest.raises(error):
        await sclient.action("1", "MJ::JOB::variation::1::h")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"", Unavailable),
        (200, b"<html>Bad gateway</html>", Unavailable),
        (200, b'{"unexpected": true}', Unavailable),
        (200, b"[" * 100_000, Unavailable),
        (405, b"Method Not Allowed", Unsupported),
        (413, b"Request Entity Too Large", InvalidRequest),
        (408, b"", Unavailable),
        (503, b"upstream down", Unavailable),
    ],
)
async def test_odd_submit_answers(
    scripted: Scripted, sclient: MjClient, status: int, body: bytes, error: type[ApiError]
) -> None:
    scripted.on("/mj/submit/imagine", status=status, body=body)
    with pytest.raises(error):
        await sclient.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))


async def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    async with MjClient(f"http://127.0.0.1:{port}", KEY, **FAST) as client:
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.imagine(ImagineRequest("cat", Mode.MID_JOURNEY))
        with pytest.raises(Unavailable):
            await client.probe()
        with pytest.raises(Unavailable):
            await client.list_by_ids(["1"])


async def test_probe_against_a_url_without_the_api_is_misconfigured(sclient: MjClient) -> None:
    with pytest.raises(Misconfigured, match="MJ_API_BASE_URL"):
        await sclient.probe()


async def test_a_mode_prefix_and_a_trailing_mj_are_kept_and_tolerated(scripted: Scripted) -> None:
    ok = {"code": 1, "description": "ok", "result": "5", "properties": {}}
    scripted.on("/mj-relax/mj/submit/imagine", body=ok)
    for base in (f"{scripted.base_url}/mj-relax/", f"{scripted.base_url}/mj-relax/mj/"):
        async with MjClient(base, KEY, **FAST) as client:
            assert (await client.imagine(ImagineRequest("c", Mode.MID_JOURNEY))).task_id == "5"
    assert [s.path for s in scripted.seen] == ["/mj-relax/mj/submit/imagine"] * 2


async def test_a_shared_session_is_not_closed(scripted: Scripted) -> None:
    async with aiohttp.ClientSession() as session:
        async with MjClient(scripted.base_url, KEY, session=session) as client:
            with pytest.raises(Unsupported):
                await client.fetch("1")
        assert not session.closed


async def test_the_key_never_reaches_the_log(
    scripted: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    scripted.on("/mj/submit/imagine", status=500, body=f"boom, your key was {KEY}")
    caplog.set_level(logging.DEBUG, logger="bot.adapters.mj")
    image = ref()
    async with MjClient(scripted.base_url, KEY, **FAST) as client:
        with pytest.raises(Unavailable) as err:
            await client.imagine(ImagineRequest("cat", Mode.MID_JOURNEY, images=[image]))
    assert KEY not in caplog.text and KEY not in err.value.detail
    assert base64.b64encode(image.data).decode()[:40] not in caplog.text
    assert "/mj/submit/imagine" in caplog.text and "500" in caplog.text


async def test_blend_needs_two_to_five_images(sclient: MjClient, scripted: Scripted) -> None:
    with pytest.raises(InvalidRequest):
        await sclient.blend([ref()], Mode.MID_JOURNEY)
    assert scripted.seen == []


async def test_describe_and_blend_send_data_uris(scripted: Scripted, sclient: MjClient) -> None:
    ok = {"code": 1, "description": "ok", "result": "9", "properties": {}}
    scripted.on("/mj/submit/describe", body=ok)
    scripted.on("/mj/submit/blend", body=ok)
    a, b = ref("image1", 1), ref("image2", 2)
    await sclient.describe(a, Mode.NIJI_JOURNEY, state="s")
    await sclient.blend([a, b], Mode.MID_JOURNEY, dimensions="PORTRAIT", notify_hook="http://h/")
    assert scripted.seen[0].json == {"botType": "NIJI_JOURNEY", "base64": data_uri(a), "state": "s"}
    assert scripted.seen[1].json == {
        "botType": "MID_JOURNEY",
        "base64Array": [data_uri(a), data_uri(b)],
        "dimensions": "PORTRAIT",
        "state": "",
        "notifyHook": "http://h/",
    }


async def test_list_fallback_returns_partial_results_but_raises_a_total_outage(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on("/mj/task/list-by-condition", status=405)
    scripted.on("/mj/task/1/fetch", body=task_json("1"))
    scripted.on("/mj/task/2/fetch", status=502, body=b"bad gateway")
    snaps = await sclient.list_by_ids(["1", "2", "3"])
    assert [s.task_id for s in snaps] == ["1"]
    scripted.routes.pop("/mj/task/1/fetch")
    scripted.on("/mj/task/1/fetch", status=502)
    scripted.on("/mj/task/3/fetch", status=502)
    with pytest.raises(Unavailable):
        await sclient.list_by_ids(["1", "2", "3"])


async def test_list_drops_entries_that_are_not_tasks_or_not_asked_for(
    scripted: Scripted, sclient: MjClient
) -> None:
    scripted.on(
        "/mj/task/list-by-condition",
        body=[task_json("1"), {"no": "id"}, None, task_json("999")],
    )
    assert [s.task_id for s in await sclient.list_by_ids(["1", "2"])] == ["1"]
    assert scripted.seen[0].json == {"ids": ["1", "2"]}


async def test_a_slow_server_times_out_as_unavailable(scripted: Scripted) -> None:
    async def slow(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(text="late")

    scripted.routes["/mj/task/1/fetch"] = slow
    async with MjClient(scripted.base_url, KEY, connect_timeout=0.5, read_timeout=0.3) as client:
        with pytest.raises(Unavailable, match="timed out"):
            await client.fetch("1")


# --- against the simulator, in both profiles ----------------------------------------------------

try:
    from bot.sandbox.mjproxy import MjProxySimulator
except ImportError:  # pragma: no cover - the simulator is still being written
    MjProxySimulator = None  # type: ignore[assignment,misc]

PROFILES = ["aggregator", "upstream", "classic"]
AUTH = {"aggregator": "bearer", "upstream": "mj-api-secret", "classic": "mj-api-secret"}


def header(request: Any, name: str) -> str | None:
    for key, value in dict(request.headers).items():
        if key.lower() == name.lower():
            return str(value)
    return None


async def start_sim(profile: str, **kw: Any) -> Any:
    if MjProxySimulator is None:
        pytest.skip("simulator not available yet")
    kw.setdefault("step_seconds", 0.02)
    kw.setdefault("auto_advance", False)
    sim = MjProxySimulator(profile=profile, api_key=KEY, **kw)
    await sim.start(host="127.0.0.1", port=0)
    return sim


@pytest.fixture(params=PROFILES)
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if MjProxySimulator is None:
        pytest.skip("simulator not available yet")
    simulator = await start_sim(request.param)
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def client(sim: Any) -> AsyncIterator[MjClient]:
    async with MjClient(sim.base_url, KEY, auth_style=AUTH[sim.profile], **FAST) as c:
        yield c


def profile_of(sim: Any) -> str:
    return str(sim.profile)


async def finished_task(sim: Any, client: MjClient, prompt: str = "a pig") -> TaskSnapshot:
    sub = await client.imagine(ImagineRequest(prompt, Mode.MID_JOURNEY))
    sim.complete(sub.task_id)
    snap = await client.fetch(sub.task_id)
    assert snap.status is TaskStatus.SUCCESS
    return snap


def button(snap: TaskSnapshot, needle: str) -> Button:
    return next(b for b in snap.buttons if needle in b.custom_id)


async def test_imagine_accepted_sends_auth_and_the_exact_body(sim: Any, client: MjClient) -> None:
    a, b = ref("image1", 1), ref("image2", 2)
    request = ImagineRequest(
        "a lighthouse --ar 3:2",
        Mode.NIJI_JOURNEY,
        images=[a, b],
        state="g1:c2:u3",
        notify_hook="http://127.0.0.1:9/mj-hook",
    )
    sub = await client.imagine(request)
    assert sub.task_id in sim.tasks and not sub.needs_input
    (seen,) = sim.requests_to("/mj/submit/imagine")
    assert seen.json == {
        "botType": "NIJI_JOURNEY",
        "prompt": "a lighthouse --ar 3:2",
        "base64Array": [data_uri(a), data_uri(b)],
        "state": "g1:c2:u3",
        "notifyHook": "http://127.0.0.1:9/mj-hook",
    }
    if profile_of(sim) == "aggregator":
        assert header(seen, "Authorization") == f"Bearer {KEY}"
        assert header(seen, "mj-api-secret") is None
    else:
        assert header(seen, "mj-api-secret") == KEY
        assert header(seen, "Authorization") is None


async def test_code_22_gives_the_queue_position(sim: Any, client: MjClient) -> None:
    sim.faults.queue_position = 3
    sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    assert sub.task_id in sim.tasks
    # new-api rewrites 22 to 1 but keeps numberOfQueues: the position survives either way.
    assert sub.queue_position == 3


async def test_code_21_custom_zoom_needs_input(sim: Any, client: MjClient) -> None:
    grid = await finished_task(sim, client)
    up = await client.action(grid.task_id, button(grid, "upsample::1").custom_id)
    sim.complete(up.task_id)
    upscaled = await client.fetch(up.task_id)
    if profile_of(sim) == "classic":
        # The Java proxy 2.x offers nothing after an upscale, and has no modal at all.
        assert upscaled.buttons == ()
        before = len(sim.requests)
        with pytest.raises(Unsupported):
            await client.action(up.task_id, "MJ::CustomZoom::abc")
        assert len(sim.requests) == before  # known unsupported: nothing sent
        with pytest.raises(Unsupported):
            await client.modal(up.task_id, prompt="a pig --zoom 1.5")
        return
    zoom = button(upscaled, "CustomZoom")
    sub = await client.action(up.task_id, zoom.custom_id)
    assert sub.needs_input and sub.task_id in sim.tasks
    assert sub.final_prompt  # properties.finalPrompt of the code-21 answer
    (seen,) = [
        r for r in sim.requests_to("/mj/submit/action") if r.json["customId"] == zoom.custom_id
    ]
    assert seen.json == {"taskId": up.task_id, "customId": zoom.custom_id, "state": ""}
    done = await client.modal(sub.task_id, prompt="a pig --zoom 1.5")
    assert not done.needs_input
    assert sim.requests_to("/mj/submit/modal")[0].json == {
        "taskId": sub.task_id,
        "prompt": "a pig --zoom 1.5",
        "state": "",
    }


async def test_code_3_is_no_account(sim: Any, client: MjClient) -> None:
    sim.faults.no_account = True
    with pytest.raises(NoAccount):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


async def test_an_action_on_a_missing_parent_is_task_not_found(sim: Any, client: MjClient) -> None:
    with pytest.raises(TaskNotFound) as err:
        await client.action("1730000000000000", "MJ::JOB::upsample::1::abc")
    # new-api checks its own table; the proxy answers HTTP 404 with code 3.
    wording = "task_not_found" if profile_of(sim) == "aggregator" else "关联任务不存在"
    assert wording in err.value.detail
    # The Java proxy has no /submit/modal at all (Spring's 404).
    missing = Unsupported if profile_of(sim) == "classic" else TaskNotFound
    with pytest.raises(missing):
        await client.modal("1730000000000000", prompt="x --zoom 2")


async def test_a_blank_prompt_is_invalid_request_with_the_servers_text(
    sim: Any, client: MjClient
) -> None:
    with pytest.raises(InvalidRequest) as err:
        await client.imagine(ImagineRequest("   ", Mode.MID_JOURNEY))
    wording = "prompt_is_required" if profile_of(sim) == "aggregator" else "prompt不能为空"
    assert wording in err.value.detail


async def test_an_action_on_an_unfinished_task_is_invalid_request(
    sim: Any, client: MjClient
) -> None:
    sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    with pytest.raises(InvalidRequest):
        await client.action(sub.task_id, "MJ::JOB::upsample::1::abc")


async def test_an_unknown_custom_id_is_invalid_request(sim: Any, client: MjClient) -> None:
    grid = await finished_task(sim, client)
    # The Java proxy can only be asked for U, V and reroll: other buttons do not exist there.
    error = Unsupported if profile_of(sim) == "classic" else InvalidRequest
    with pytest.raises(error):
        await client.action(grid.task_id, "MJ::NOT_A_BUTTON::1")


@pytest.mark.parametrize("style", ["plus", "csharp"])
async def test_a_full_queue_is_queue_full(sim: Any, client: MjClient, style: str) -> None:
    sim.faults.queue_full = True
    sim.faults.queue_full_style = style
    with pytest.raises(QueueFull):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


async def test_code_24_is_banned_prompt_naming_the_word(sim: Any, client: MjClient) -> None:
    with pytest.raises(BannedPrompt) as err:
        await client.imagine(ImagineRequest("so much gore", Mode.MID_JOURNEY))
    assert err.value.word == "gore"
    assert "gore" in err.value.member_message


async def test_http_429_is_rate_limited_with_retry_after(sim: Any, client: MjClient) -> None:
    sim.faults.rate_limited = True
    with pytest.raises(RateLimited) as err:
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    assert len(sim.requests_to("/mj/submit/imagine")) == 1
    assert err.value.retry_after is None  # the simulator sends no Retry-After
    if profile_of(sim) == "aggregator":
        assert "当前分组负载已饱和" in err.value.detail  # new-api's code-30 body


async def test_retry_after_in_seconds_is_parsed(scripted: Scripted, sclient: MjClient) -> None:
    scripted.on("/mj/task/list-by-condition", status=429, body=b"slow down", **{"Retry-After": "7"})
    with pytest.raises(RateLimited) as err:
        await sclient.list_by_ids(["1"])
    assert err.value.retry_after == 7.0


async def test_the_csharp_limit_is_queue_full_in_both_of_its_envelopes(
    sim: Any, client: MjClient
) -> None:
    if profile_of(sim) == "classic":
        pytest.skip("an answer of the C# proxy only; the Java proxy has no such envelope")
    grid = await finished_task(sim, client)
    sim.faults.csharp_envelope = True
    # /imagine answers code 4 with the limit wording; the other endpoints the C# envelope.
    with pytest.raises(QueueFull, match="并发数已达上限"):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    with pytest.raises(QueueFull, match="C# proxy"):
        await client.action(grid.task_id, button(grid, "variation::1").custom_id)


async def test_remix_modal_needs_input_upstream_and_shows_modal_through_new_api(
    sim: Any, client: MjClient
) -> None:
    grid = await finished_task(sim, client)
    sim.faults.modal_actions = True
    sub = await client.action(grid.task_id, button(grid, "variation::2").custom_id)
    if profile_of(sim) == "classic":
        # The Java proxy has no remix: a variation is simply accepted.
        assert not sub.needs_input and sim.tasks[sub.task_id].action == "VARIATION"
        return
    # new-api rewrites 21 to 1 except for INPAINT/CUSTOM_ZOOM (mj-api.md §3).
    assert sub.needs_input is (profile_of(sim) == "upstream")
    status = (await client.fetch(sub.task_id)).status
    if profile_of(sim) == "upstream":
        assert status is TaskStatus.MODAL
    else:
        # Real new-api shows MODAL after its next poll; the simulator's aggregator view only
        # moves when the task does, so it still shows "" here.
        assert status in (TaskStatus.UNKNOWN, TaskStatus.MODAL)
    again = await client.modal(sub.task_id, prompt="a pig, remixed")
    assert again.task_id == sub.task_id and not again.needs_input


async def test_a_wrong_key_is_misconfigured_and_says_which_status(sim: Any) -> None:
    wrong = "sk-wrong-key-123"
    async with MjClient(sim.base_url, wrong, auth_style=AUTH[sim.profile], **FAST) as client:
        with pytest.raises(Misconfigured) as err:
            await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
        with pytest.raises(Misconfigured):
            await client.probe()
    # new-api and the Java proxy answer 401, the C# proxy 403.
    expected = "HTTP 403" if profile_of(sim) == "upstream" else "HTTP 401"
    assert expected in err.value.detail and wrong not in err.value.detail


async def test_an_unknown_id_is_task_not_found(sim: Any, client: MjClient) -> None:
    with pytest.raises(TaskNotFound):
        await client.fetch("1730000000000999")


@pytest.mark.parametrize("style", ["empty", "204"])
async def test_an_unknown_id_in_upstream_styles_is_task_not_found(style: str) -> None:
    sim = await start_sim("upstream")
    try:
        sim.faults.unknown_id_style = style
        async with MjClient(sim.base_url, KEY, auth_style="mj-api-secret", **FAST) as client:
            with pytest.raises(TaskNotFound):
                await client.fetch("1730000000000999")
    finally:
        await sim.stop()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(sim: Any, client: MjClient, status: int) -> None:
    sim.faults.http_status = status
    with pytest.raises(Unavailable):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


async def test_a_slow_answer_times_out_as_unavailable(sim: Any) -> None:
    sim.faults.slow_seconds = 1.5
    async with MjClient(
        sim.base_url, KEY, auth_style=AUTH[sim.profile], connect_timeout=0.5, read_timeout=0.3
    ) as client:
        with pytest.raises(Unavailable, match="timed out"):
            await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


async def test_a_dropped_connection_is_unavailable(sim: Any, client: MjClient) -> None:
    sim.faults.drop_connection = True
    with pytest.raises(Unavailable):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


async def test_a_body_that_is_not_json_is_unavailable(sim: Any, client: MjClient) -> None:
    sim.faults.not_json = True
    with pytest.raises(Unavailable):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))


@pytest.mark.parametrize("prefix", ["/mj-relax", "/mj-fast/"])
async def test_a_mode_prefix_base_url_reaches_the_same_api(sim: Any, prefix: str) -> None:
    base = sim.base_url + prefix
    if profile_of(sim) == "classic":
        # The Java proxy has no mode routes: such a base URL reaches nothing.
        async with MjClient(base, KEY, auth_style=AUTH[sim.profile], **FAST) as client:
            with pytest.raises(Unsupported):
                await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
        return
    async with MjClient(base, KEY, auth_style=AUTH[sim.profile], **FAST) as client:
        sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
        assert sub.task_id in sim.tasks
        assert (await client.fetch(sub.task_id)).task_id == sub.task_id
    (seen,) = [r for r in sim.requests if r.path.endswith("/mj/submit/imagine")]
    assert seen.path == prefix.rstrip("/") + "/mj/submit/imagine"


async def test_a_task_moves_from_accepted_to_success(sim: Any, client: MjClient) -> None:
    sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY, state="s1"))
    first = await client.fetch(sub.task_id)
    # new-api shows status "" until its first poll; the proxies NOT_START.
    expected = TaskStatus.UNKNOWN if profile_of(sim) == "aggregator" else TaskStatus.NOT_START
    assert (first.status, first.progress, first.finish_time_ms) == (expected, 0, None)
    assert first.submit_time_ms
    for _ in range(5):
        sim.advance(sub.task_id)
    running = await client.fetch(sub.task_id)
    assert (running.status, running.progress) == (TaskStatus.IN_PROGRESS, 46)
    sim.complete(sub.task_id)
    done = await client.fetch(sub.task_id)
    assert (done.status, done.progress, done.state) == (TaskStatus.SUCCESS, 100, "s1")
    assert done.image_url and done.finish_time_ms
    labels = [b.label for b in done.buttons]
    assert labels[:4] == ["U1", "U2", "U3", "U4"] and "V4" in labels
    assert any(b.emoji == "🔄" for b in done.buttons)
    assert done.final_prompt


async def test_a_failed_task_reports_its_reason(sim: Any, client: MjClient) -> None:
    sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    sim.fail(sub.task_id, "[Invalid parameter] Invalid value")
    (snap,) = await client.list_by_ids([sub.task_id])
    assert (snap.status, snap.progress) == (TaskStatus.FAILURE, 0)
    assert snap.fail_reason == "[Invalid parameter] Invalid value"


async def test_list_by_ids_chunks_and_leaves_unknown_ids_out(sim: Any) -> None:
    async with MjClient(
        sim.base_url, KEY, auth_style=AUTH[sim.profile], chunk_size=100, **FAST
    ) as client:
        real = [
            (await client.imagine(ImagineRequest(f"pig {i}", Mode.MID_JOURNEY))).task_id
            for i in range(3)
        ]
        ids = [*real, *(f"9{n:015d}" for n in range(247))]
        snaps = await client.list_by_ids(ids)
    assert sorted(s.task_id for s in snaps) == sorted(real)
    bodies = [r.json for r in sim.requests_to("/mj/task/list-by-condition")]
    assert bodies == [{"ids": ids[:100]}, {"ids": ids[100:200]}, {"ids": ids[200:]}]


async def test_without_list_by_condition_the_client_fetches_and_remembers(
    sim: Any, client: MjClient
) -> None:
    real = [(await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))).task_id for _ in "ab"]
    sim.faults.list_by_condition_status = 404
    snaps = await client.list_by_ids([*real, "1730000000000999"])
    assert sorted(s.task_id for s in snaps) == sorted(real)
    assert len(sim.requests_to("/mj/task/list-by-condition")) == 1
    assert not client.list_by_condition_supported
    again = await client.list_by_ids(real)
    assert sorted(s.task_id for s in again) == sorted(real)
    assert len(sim.requests_to("/mj/task/list-by-condition")) == 1
    fetched = [r.path for r in sim.requests if r.path.endswith("/fetch")]
    assert sorted(fetched) == sorted(
        [f"/mj/task/{i}/fetch" for i in [*real, "1730000000000999", *real]]
    )


async def test_probe_passes_with_the_right_key(sim: Any, client: MjClient) -> None:
    await client.probe()
    assert sim.requests  # it really asked


async def test_a_key_that_cannot_be_a_header_is_misconfigured(scripted: Scripted) -> None:
    async with MjClient(scripted.base_url, "sk-one\nsk-two", **FAST) as client:
        with pytest.raises(Misconfigured) as err:
            await client.fetch("1")
    assert "sk-one" not in err.value.detail


async def test_probe_passes_where_list_by_condition_is_missing(sim: Any, client: MjClient) -> None:
    sim.faults.list_by_condition_status = 405
    await client.probe()
    assert [r.path for r in sim.requests] == ["/mj/task/list-by-condition", "/mj/task/0/fetch"]


async def test_probe_reports_an_unreachable_server_as_unavailable(
    sim: Any, client: MjClient
) -> None:
    sim.faults.drop_connection = True
    with pytest.raises(Unavailable):
        await client.probe()


async def test_the_wrong_auth_style_is_misconfigured_on_the_proxy() -> None:
    sim = await start_sim("upstream")
    try:
        # The C# proxy takes the raw Authorization value: "Bearer sk-test" is not the key.
        async with MjClient(sim.base_url, KEY, auth_style="bearer", **FAST) as client:
            with pytest.raises(Misconfigured, match="Authorization: Bearer"):
                await client.probe()
    finally:
        await sim.stop()


async def test_describe_and_blend_are_accepted_with_exact_bodies(
    sim: Any, client: MjClient
) -> None:
    a, b = ref("image1", 1), ref("image2", 2)
    described = await client.describe(a, Mode.MID_JOURNEY, state="d")
    blended = await client.blend([a, b], Mode.NIJI_JOURNEY)
    assert {described.task_id, blended.task_id} <= set(sim.tasks)
    assert sim.requests_to("/mj/submit/describe")[0].json == {
        "botType": "MID_JOURNEY",
        "base64": data_uri(a),
        "state": "d",
    }
    assert sim.requests_to("/mj/submit/blend")[0].json == {
        "botType": "NIJI_JOURNEY",
        "base64Array": [data_uri(a), data_uri(b)],
        "dimensions": "SQUARE",
        "state": "",
    }


async def test_every_failure_is_one_log_line_with_endpoint_and_status(
    sim: Any, client: MjClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.adapters.mj")
    sim.faults.http_status = 502
    with pytest.raises(Unavailable):
        await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY, images=[ref()]))
    (record,) = caplog.records
    assert "POST /mj/submit/imagine -> HTTP 502" in record.getMessage()
    assert KEY not in caplog.text


async def test_an_unchanged_list_answer_is_not_parsed_again(sim: Any, client: MjClient) -> None:
    """The tracker's idle cycles: the same bytes for a chunk mean the same snapshots, so the
    client says "unchanged" instead of parsing them; any change in the answer reads it again."""
    ids = [
        (await client.imagine(ImagineRequest(f"pig {i}", Mode.MID_JOURNEY))).task_id for i in "ab"
    ]
    mark, snaps = await client.list_if_changed(ids, None)
    assert mark is not None and snaps is not None
    assert sorted(s.task_id for s in snaps) == sorted(ids)
    again, unchanged = await client.list_if_changed(ids, mark)
    assert (again, unchanged) == (mark, None)
    sim.advance(ids[0])
    moved, snaps = await client.list_if_changed(ids, mark)
    assert moved != mark and snaps is not None
    assert {s.task_id: s for s in snaps} == {s.task_id: s for s in await client.list_by_ids(ids)}
    # A mark from another chunk's answer matches nothing here.
    _, other = await client.list_if_changed(ids[:1], moved)
    assert other is not None and [s.task_id for s in other] == ids[:1]


async def test_an_error_answer_is_never_taken_for_unchanged(
    scripted: Scripted, sclient: MjClient
) -> None:
    path = "/mj/task/list-by-condition"
    scripted.on(path, body=[task_json("1")])
    mark, snaps = await sclient.list_if_changed(["1"], None)
    assert snaps is not None and [s.task_id for s in snaps] == ["1"]
    scripted.on(path, status=500, body=[task_json("1")])  # the same bytes, as an error
    with pytest.raises(Unavailable):
        await sclient.list_if_changed(["1"], mark)
    scripted.on(path, status=404)
    scripted.on("/mj/task/1/fetch", body=task_json("1"))
    gone, fetched = await sclient.list_if_changed(["1"], mark)  # fetches each from now on
    assert gone is None and fetched is not None and [s.task_id for s in fetched] == ["1"]
    assert not sclient.list_by_condition_supported
