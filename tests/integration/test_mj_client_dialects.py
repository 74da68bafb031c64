"""MjClient against what only some servers do (mj-api.md §0): the Java proxy 2.x's buttons and
/submit/change, task lists to find a task by its state, new-api's middleware errors and the
row /submit/modal leaves in its table, empty image URLs, and streamed submit bodies.

Like test_mj_client.py, every test runs the real client over loopback against the simulator and
asserts both what the simulator received and what the client returned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.mj import MjClient, parse_task
from bot.adapters.mj.bodies import SLICE, streamed_body
from bot.core.errors import Misconfigured, TaskNotFound, Unavailable, Unsupported
from bot.core.jobs import Mode, ReferenceImage, TaskSnapshot, TaskStatus
from bot.core.ports import ImagineRequest
from bot.sandbox.mjproxy import MjProxySimulator
from tests.integration.test_mj_client import AUTH, FAST, KEY, data_uri, ref

PROFILES = ["aggregator", "upstream", "classic"]


async def start_sim(profile: str, **kw: Any) -> MjProxySimulator:
    kw.setdefault("step_seconds", 0.02)
    kw.setdefault("auto_advance", False)
    sim = MjProxySimulator(profile=profile, api_key=KEY, **kw)  # type: ignore[arg-type]
    await sim.start(host="127.0.0.1", port=0)
    return sim


@pytest.fixture(params=PROFILES)
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[MjProxySimulator]:
    simulator = await start_sim(request.param)
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def client(sim: MjProxySimulator) -> AsyncIterator[MjClient]:
    async with MjClient(sim.base_url, KEY, auth_style=AUTH[sim.profile], **FAST) as c:  # type: ignore[arg-type]
        yield c


async def finished(sim: MjProxySimulator, client: MjClient, prompt: str = "a pig") -> TaskSnapshot:
    sub = await client.imagine(ImagineRequest(prompt, Mode.MID_JOURNEY))
    sim.complete(sub.task_id)
    snap = await client.fetch(sub.task_id)
    assert snap.status is TaskStatus.SUCCESS
    return snap


def labels(snap: TaskSnapshot) -> list[str]:
    return [b.label or b.emoji for b in snap.buttons]


# --- the Java proxy 2.x: buttons made up, pressed through /submit/change ------------------------


async def test_every_profile_offers_the_grid_buttons(
    sim: MjProxySimulator, client: MjClient
) -> None:
    grid = await finished(sim, client)
    assert labels(grid) == ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
    if sim.profile == "classic":
        # Java sends no `buttons`: the client makes MJ's own ids from the proxy's messageHash.
        job = sim.tasks[grid.task_id].job_hash
        assert grid.buttons[1].custom_id == f"MJ::JOB::upsample::2::{job}"


async def test_classic_presses_u_v_and_reroll_through_change_and_remembers() -> None:
    sim = await start_sim("classic")
    try:
        async with MjClient(sim.base_url, KEY, auth_style="mj-api-secret", **FAST) as client:
            grid = await finished(sim, client)
            u2, reroll, v3 = (grid.buttons[i].custom_id for i in (1, 4, 7))
            up = await client.action(grid.task_id, u2, state="mjcord:7")
            assert not client.action_supported
            again = await client.action(grid.task_id, reroll)
            vary = await client.action(grid.task_id, v3, notify_hook="http://127.0.0.1:9/h")
        # One probe of /submit/action, then only /submit/change.
        assert len(sim.requests_to("/mj/submit/action")) == 1
        assert [r.json for r in sim.requests_to("/mj/submit/change")] == [
            {"taskId": grid.task_id, "action": "UPSCALE", "index": 2, "state": "mjcord:7"},
            {"taskId": grid.task_id, "action": "REROLL", "index": 1, "state": ""},
            {
                "taskId": grid.task_id,
                "action": "VARIATION",
                "index": 3,
                "state": "",
                "notifyHook": "http://127.0.0.1:9/h",
            },
        ]
        tasks = sim.tasks
        assert (tasks[up.task_id].action, tasks[up.task_id].description) == (
            "UPSCALE",
            f"/up {grid.task_id} U2",
        )
        assert tasks[again.task_id].action == "REROLL"
        assert tasks[vary.task_id].action == "VARIATION"
        sim.complete(up.task_id)
        sim.complete(again.task_id)
        async with MjClient(sim.base_url, KEY, auth_style="mj-api-secret", **FAST) as client:
            upscaled, rerolled = await client.list_by_ids([up.task_id, again.task_id])
        assert upscaled.buttons == ()  # nothing follows an upscale on that server
        assert labels(rerolled)[:4] == ["U1", "U2", "U3", "U4"]
    finally:
        await sim.stop()


async def test_servers_with_action_never_see_change(
    sim: MjProxySimulator, client: MjClient
) -> None:
    grid = await finished(sim, client)
    await client.action(grid.task_id, grid.buttons[0].custom_id)
    if sim.profile == "classic":
        assert len(sim.requests_to("/mj/submit/change")) == 1
    else:
        assert client.action_supported and sim.requests_to("/mj/submit/change") == []


# --- find_by_state -------------------------------------------------------------------------------


async def test_find_by_state_where_the_server_lists_tasks(
    sim: MjProxySimulator, client: MjClient
) -> None:
    mine = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY, state="mjcord:41"))
    await client.imagine(ImagineRequest("a cow", Mode.MID_JOURNEY, state="mjcord:42"))
    if sim.profile == "aggregator":
        # new-api has no task list: absence could not be told from "never sent".
        with pytest.raises(Unsupported):
            await client.find_by_state("mjcord:41")
        return
    found = await client.find_by_state("mjcord:41")
    assert found is not None and found.task_id == mine.task_id and found.state == "mjcord:41"
    sim.complete(mine.task_id)  # finished: out of the Java queue, still in the list
    done = await client.find_by_state("mjcord:41")
    assert done is not None and done.status is TaskStatus.SUCCESS
    assert await client.find_by_state("mjcord:999") is None
    queue = sim.requests_to("/mj/task/queue")
    if sim.profile == "upstream":
        assert len(queue) == 1  # the C# proxy has none: asked once, remembered
    else:
        assert len(queue) == 3


@pytest.mark.parametrize("profile", ["upstream", "classic"])
async def test_find_by_state_does_not_trust_a_capped_list(profile: str) -> None:
    sim = await start_sim(profile)
    try:
        states = [f"mjcord:{i}" for i in range(100)]
        sim.seed_running(100, states=states)
        async with MjClient(sim.base_url, KEY, auth_style="mj-api-secret", **FAST) as client:
            found = await client.find_by_state("mjcord:7")
            assert found is not None and found.state == "mjcord:7"
            if profile == "upstream":
                # 100 tasks is the C# proxy's cap: an older task may be missing from it.
                with pytest.raises(Unsupported):
                    await client.find_by_state("mjcord:gone")
            else:
                sim.seed_running(1)  # the Java proxy lists every task
                assert await client.find_by_state("mjcord:gone") is None
    finally:
        await sim.stop()


# --- what new-api says on its own ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "value", "error", "status"),
    [
        ("key_state", "exhausted", Misconfigured, 401),
        ("key_state", "expired", Misconfigured, 401),
        ("key_state", "disabled", Misconfigured, 401),
        ("key_state", "user_banned", Misconfigured, 403),
        ("no_channel", True, Unavailable, 503),
        ("upstream_down", True, Unavailable, 400),
    ],
)
async def test_new_api_middleware_and_upstream_errors(
    fault: str, value: Any, error: type[Exception], status: int
) -> None:
    sim = await start_sim("aggregator")
    try:
        async with MjClient(sim.base_url, KEY, **FAST) as client:
            known = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
            setattr(sim.faults, fault, value)
            with pytest.raises(error) as err:
                await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
            assert f"HTTP {status}" in err.value.detail  # type: ignore[attr-defined]
            if value == "exhausted":
                assert "out of credit" in err.value.member_message  # type: ignore[attr-defined]
            if fault in ("no_channel", "upstream_down"):
                # Reads come from new-api's own table: they still work.
                assert (await client.fetch(known.task_id)).task_id == known.task_id
    finally:
        await sim.stop()


async def test_the_row_modal_leaves_behind_never_hides_progress() -> None:
    sim = await start_sim("aggregator")
    try:
        async with MjClient(sim.base_url, KEY, **FAST) as client:
            grid = await finished(sim, client)
            up = await client.action(grid.task_id, grid.buttons[0].custom_id)
            sim.complete(up.task_id)
            upscaled = await client.fetch(up.task_id)
            zoom = next(b for b in upscaled.buttons if "CustomZoom" in b.custom_id)
            waiting = await client.action(up.task_id, zoom.custom_id)
            assert waiting.needs_input
            sim.advance(waiting.task_id)  # new-api's poller sees MODAL in its first row
            await client.modal(waiting.task_id, prompt="a pig --zoom 1.5")
            sim.complete(waiting.task_id)
            (listed,) = await client.list_by_ids([waiting.task_id])
            fetched = await client.fetch(waiting.task_id)
        rows = sim.requests_to("/mj/task/list-by-condition")[-1]
        assert rows.json == {"ids": [waiting.task_id]}
        # Two rows with one id; the client keeps the one that moved on.
        assert (listed.status, listed.progress) == (TaskStatus.SUCCESS, 100)
        assert listed.image_url
        # This client knows it confirmed the task: it reads it through the list too.
        assert fetched == listed
        # Another client (a restarted bot) would read the first row (GetByMJId's First):
        # stuck where /submit/action left it.
        async with MjClient(sim.base_url, KEY, **FAST) as fresh:
            assert (await fresh.fetch(waiting.task_id)).status is not TaskStatus.SUCCESS
    finally:
        await sim.stop()


def test_buttons_for_a_java_task_behind_an_aggregator_take_the_hash_from_the_file_name() -> None:
    job = "3785da15-4f70-4034-9128-f3ff1ac634fa"
    snap = parse_task(
        {
            "id": "17",
            "action": "IMAGINE",
            "status": "SUCCESS",
            "imageUrl": f"https://cdn.discordapp.com/attachments/1/2/u_pig_{job}.png?ex=1",
            "buttons": None,
            "properties": {"finalPrompt": "pig"},
        }
    )
    assert snap is not None
    assert [b.custom_id for b in snap.buttons][:1] == [f"MJ::JOB::upsample::1::{job}"]
    # Nothing is made up for an unfinished task or for an upscale.
    assert parse_task({"id": "1", "action": "IMAGINE", "status": "IN_PROGRESS"}).buttons == ()  # type: ignore[union-attr]
    assert parse_task({"id": "1", "action": "UPSCALE", "status": "SUCCESS"}).buttons == ()  # type: ignore[union-attr]


# --- image URLs ----------------------------------------------------------------------------------


async def test_no_image_url_until_the_first_image(sim: MjProxySimulator, client: MjClient) -> None:
    sub = await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY))
    sim.advance(sub.task_id)  # SUBMITTED 0%: no preview yet
    assert (await client.fetch(sub.task_id)).image_url is None
    sim.advance(sub.task_id)  # IN_PROGRESS 0%: the first preview
    assert (await client.fetch(sub.task_id)).image_url


async def test_the_aggregator_builds_image_links_from_its_server_address() -> None:
    sim = await start_sim("aggregator", server_address="http://localhost:3000")
    try:
        async with MjClient(sim.base_url, KEY, **FAST) as client:
            grid = await finished(sim, client)
        # new-api#144: a ServerAddress left at its default gives links nobody can open.
        assert grid.image_url == f"http://localhost:3000/mj/image/{grid.task_id}"
    finally:
        await sim.stop()


# --- streamed bodies -----------------------------------------------------------------------------


async def test_submits_with_images_are_streamed_and_exact(
    sim: MjProxySimulator, client: MjClient
) -> None:
    big = ReferenceImage("image1", "a.png", "image/png", ref().data + b"\0" * (SLICE * 2 + 7))
    small = ref("image2", 2)
    await client.imagine(ImagineRequest("a pig", Mode.MID_JOURNEY, images=[big, small]))
    (seen,) = sim.requests_to("/mj/submit/imagine")
    assert seen.headers.get("Transfer-Encoding") == "chunked"
    # Spring and ASP.NET bind a @RequestBody / [FromBody] only from application/json.
    assert seen.headers.get("Content-Type") == "application/json"
    assert seen.json == {
        "botType": "MID_JOURNEY",
        "prompt": "a pig",
        "state": "",
        "base64Array": [data_uri(big), data_uri(small)],
    }
    with pytest.raises(TaskNotFound):
        await client.fetch("1730000000000999")


async def _collect(fields: dict[str, Any], images: dict[str, Any]) -> bytes:
    return b"".join([piece async for piece in streamed_body(fields, images)])


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none()),
        max_size=4,
    ),
    st.lists(st.binary(max_size=SLICE // 100), max_size=3),
)
def test_a_streamed_body_is_the_json_of_its_fields_and_data_uris(
    fields: dict[str, Any], blobs: list[bytes]
) -> None:
    images = [ReferenceImage(f"image{i}", "x.png", "image/png", b) for i, b in enumerate(blobs)]
    fields.pop("base64Array", None)
    raw = asyncio.run(_collect(fields, {"base64Array": images}))
    expected = {**fields, "base64Array": [data_uri(i) for i in images]}
    assert json.loads(raw) == expected
