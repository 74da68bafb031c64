"""The crash harness: the bot as a subprocess against its own emulator, simulator and database,
SIGKILLed at one chosen outbound request, then restarted on the same database.

A *point* is one outbound request of a command's flow, named by its signature (service, method,
route, and for Discord's message posts whether it is the finish post), taken from the recorded
traffic of a clean run; only its first occurrence after the command counts. `before`: the
request arrives, the bot is killed, and the request is dropped (it never took effect). `after`:
the request arrives, the bot is killed, and the request is then carried out (it took effect;
its answer never reached the bot) — the "sent, not recorded" case.

Discord requests are parked with the emulator's `hold`; image-API requests with `ApiGate`, a
small reverse proxy in front of the simulator (the simulator links result images through it
too, so their downloads are points as well).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import inspect, text

from bot.adapters.storage import database_url
from bot.adapters.storage.engine import create_engine
from bot.adapters.storage.jobs import SqlJobRepository
from bot.core.jobs import Job
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.e2e.conftest import bot_env

ROOT = Path(__file__).resolve().parents[2]
LOADING = 128  # Discord's message flag for a deferred "thinking" response

COMMANDS = (
    "imagine",
    "button",
    "describe",
    "blend",
    "imagine-n",
    "custom-zoom",
    "imagine@upstream",
)


def is_finish_post(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("nonce", "")).startswith("mjcord-")


def discord_signature(method: str, route: str | None, body: Any) -> str:
    role = " finish" if method == "POST" and is_finish_post(body) else ""
    return f"discord {method} {route}{role}"


def api_signature(method: str, path: str) -> str:
    shape = re.sub(r"/\d+", "/{id}", path.split("?")[0])
    return f"api {method} {shape}"


def point_id(signature: str) -> str:
    """A readable test id: `discord POST /channels/{channel_id}/messages finish` →
    `discord-POST-channels-messages-finish`."""
    words = re.sub(r"\{[^}]*\}", "", signature).replace("/", " ").split()
    return "-".join(words)


# --- the image API gate ------------------------------------------------------------------------


@dataclass
class ApiHold:
    signature: str
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    apply: bool = True

    def release(self, *, apply: bool) -> None:
        self.apply = apply
        self.released.set()


class ApiGate:
    """A reverse proxy in front of the simulator that records each request's signature and can
    park the first request of a signature until released."""

    def __init__(self, sim: MjProxySimulator) -> None:
        self.sim = sim
        self.upstream = ""  # the simulator's own address (its base_url then points here)
        self.signatures: list[str] = []
        self.hold: ApiHold | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.upstream = self.sim.base_url
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        signature = api_signature(request.method, request.path)
        self.signatures.append(signature)
        body = await request.read()
        hold = self.hold
        if hold is not None and hold.signature == signature and not hold.arrived.is_set():
            hold.arrived.set()
            await hold.released.wait()
            if not hold.apply:
                raise web.HTTPServiceUnavailable()
        assert self._session is not None
        hop = {"host", "content-length", "transfer-encoding", "connection"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in hop}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            keep = {"Content-Type", "Retry-After", "Content-Encoding"}
            out = {k: v for k, v in upstream.headers.items() if k in keep}
            return web.Response(status=upstream.status, body=payload, headers=out)


# --- the bot as a process ----------------------------------------------------------------------


#: What `python -m bot` logs once it is connected and tracking (bot.app), at INFO.
READY_LINE = b"mjcord is ready as "


class _Forks:
    """The client of tests/e2e/forkserver.py: one server per test session, started at the
    first bot; each start is one fork of it (see that module for why)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._server: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str], log_path: Path) -> tuple[int, int]:
        """A new bot process: its pid, and a descriptor that reaches end of file when it ends."""
        alive_r, alive_w = os.pipe()
        request = json.dumps({"env": env, "cwd": str(ROOT), "log": str(log_path)}).encode()
        try:
            with self._lock:
                if self._socket is None:
                    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    self._server = subprocess.Popen(
                        [sys.executable, "-m", "tests.e2e.forkserver", str(theirs.fileno())],
                        cwd=ROOT,
                        pass_fds=[theirs.fileno()],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                    )
                    theirs.close()
                    self._socket = ours
                    atexit.register(self.close)
                socket.send_fds(self._socket, [request], [alive_w])
                answer = self._socket.recv(4096)
        finally:
            os.close(alive_w)
        if not answer:
            os.close(alive_r)
            raise RuntimeError("the bot fork server has stopped")
        return int(json.loads(answer)["pid"]), alive_r

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()  # the server ends at end of file
        if self._server is not None:
            self._server.wait(10)


FORKS = _Forks()


class BotProcess:
    """`python -m bot` against one world; SIGKILL-able. Forked from FORKS (its imports done),
    or with `fork=False` run as `python -m bot` itself (each start then imports it again)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, fork: bool = True) -> None:
        self.env = env
        self.log_path = log_path
        self.fork = fork
        self.pid: int | None = None
        self.proc: asyncio.subprocess.Process | None = None  # without fork
        self._alive: int | None = None  # reaches end of file when the process has ended
        self._log_from = 0  # where this process's lines begin in the shared log

    @property
    def exited(self) -> bool:
        if self.proc is not None:
            return self.proc.returncode is not None
        if self._alive is None:
            return self.pid is not None
        if not select.select([self._alive], [], [], 0)[0]:
            return False
        os.close(self._alive)
        self._alive = None
        return True

    def ready(self) -> bool:
        """Whether this process has logged that it is ready (its recovery starts then)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_from)
            return READY_LINE in log.read()

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until the process is ready; fails at once if it ends first."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.exited:
                raise AssertionError("the bot exited before it was ready (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError("the bot was not ready in time")
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        self.log_path.touch()
        self._log_from = self.log_path.stat().st_size
        if self.fork:
            self.pid, self._alive = await asyncio.to_thread(FORKS.start, self.env, self.log_path)
            return
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.pid = self.proc.pid

    async def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        if self.pid is None:
            return
        if not self.exited:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            await self.proc.wait()
        while not self.exited:  # noqa: ASYNC110 (a descriptor, not an asyncio primitive)
            await asyncio.sleep(0.01)


# --- one world: emulator, simulator, gate, database --------------------------------------------


@dataclass
class Outcome:
    """What a member and the operator would see once everything settled."""

    jobs: list[Job]
    finish_posts: dict[int, list[tuple[int, dict[str, Any]]]]  # job id → (channel id, message)
    loading_replies: int  # interactions of the command whose reply is still "thinking"
    acknowledged: bool  # the command's interaction was acknowledged (its defer took effect)
    submits: int  # submit requests the simulator received for the command
    usage: dict[int, str]  # job id → its charge in the quota ledger
    signatures: list[str]  # the flow's outbound requests, in order
    log: str
    tokens: list[str]  # every interaction token the emulator handed out (never to be logged)


class World:
    """Everything one run needs, on loopback, with its own SQLite file."""

    def __init__(
        self,
        tmp: Path,
        validator: Any,
        *,
        profile: str = "aggregator",
        db: str = "",
        fork: bool = True,
    ) -> None:
        self.fork = fork  # how its bots start (see BotProcess)
        self.tmp = tmp
        self.emu = DiscordEmulator(validator)
        self.sim = MjProxySimulator(profile=profile, api_key="sk-test", step_seconds=0.15)  # type: ignore[arg-type]
        self.gate = ApiGate(self.sim)
        self.db = db or f"sqlite:///{tmp}/mjcord.db"
        self.bots: list[BotProcess] = []
        self.alice = 0

    async def __aenter__(self) -> World:
        await self.emu.start()
        await self.sim.start()
        await self.gate.start()
        # Result images are linked through the gate, so their downloads are points too.
        self.sim.base_url = self.gate.url
        self.alice = self.emu.add_user("alice")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for bot in self.bots:
            await bot.kill()
        await self.gate.stop()
        await self.sim.stop()
        await self.emu.stop()

    async def spawn(self) -> BotProcess:
        env = {**os.environ, **bot_env(self.emu, self.sim, self.db)}
        env["MJ_API_BASE_URL"] = self.gate.url
        env["LOG_LEVEL"] = "INFO"
        bot = BotProcess(env, self.tmp / "bot.log", fork=self.fork)
        self.bots.append(bot)
        await bot.start()
        return bot

    def log(self) -> str:
        path = self.tmp / "bot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def quiet(self, seconds: float) -> None:
        """Wait until neither stand-in has seen a request for `seconds`."""
        last = (len(self.emu.requests), len(self.gate.signatures))
        still = time.monotonic()
        while time.monotonic() - still < seconds:
            await asyncio.sleep(0.05)
            now = (len(self.emu.requests), len(self.gate.signatures))
            if now != last:
                last, still = now, time.monotonic()

    async def jobs(self) -> list[Job]:
        """The bot's ledger as it stands (read without migrating: the bot owns the schema;
        alembic's migration context is not safe to run from concurrent worlds)."""
        engine = create_engine(database_url(self.db))
        try:
            async with engine.connect() as conn:
                if not await _has_table(conn, "jobs"):
                    return []
                ids = [r[0] for r in (await conn.execute(text("SELECT id FROM jobs"))).all()]
            repo = SqlJobRepository(engine)
            found = [await repo.get(i) for i in ids]
            return [j for j in found if j is not None]
        finally:
            await engine.dispose()

    async def age_token(self, job_id: int) -> None:
        """Make a job's stored interaction token expired (as after a long outage)."""
        engine = create_engine(database_url(self.db))
        try:
            repo = SqlJobRepository(engine)
            job = await repo.get(job_id)
            assert job is not None and job.ack is not None
            old = datetime(2000, 1, 1, tzinfo=UTC)
            await repo.save(
                dataclasses.replace(job, ack=dataclasses.replace(job.ack, expires_at=old))
            )
        finally:
            await engine.dispose()

    async def usage(self) -> dict[int, str]:
        engine = create_engine(database_url(self.db))
        try:
            async with engine.connect() as conn:
                if not await _has_table(conn, "mod_usage"):
                    return {}
                rows = (await conn.execute(text("SELECT job_id, charge FROM mod_usage"))).all()
            return {int(r[0]): str(r[1]) for r in rows}
        finally:
            await engine.dispose()

    def finish_posts(self, job_id: int) -> list[tuple[int, dict[str, Any]]]:
        needle = f"-# job {job_id} ·"
        return [
            (channel_id, message)
            for channel_id in list(self.emu.channel_log)
            for message in self.emu.messages(channel_id)
            if needle in (message.get("content") or "")
            and "Task ID" not in (message.get("content") or "")
        ]


async def _has_table(conn: Any, name: str) -> bool:
    return bool(await conn.run_sync(lambda sync: inspect(sync).has_table(name)))


# --- one run of a command, killed at a point or clean ------------------------------------------

PNG_COLORS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))


def png(color: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Kill:
    """Where to kill: the first request of `signature` after the command, `before` or after it
    took effect."""

    signature: str
    before: bool

    @property
    def id(self) -> str:
        return f"{point_id(self.signature)}-{'before' if self.before else 'after'}"


async def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


def _button(message: dict[str, Any], label: str) -> tuple[int, str]:
    for row in message["components"]:
        for component in row["components"]:
            if component.get("label") == label:
                return int(message["id"]), str(component["custom_id"])
    raise AssertionError(f"no button {label!r} in {message['components']}")


async def _finished(world: World, job_id: int) -> dict[str, Any]:
    await wait(lambda: bool(world.finish_posts(job_id)), 30, f"job {job_id}'s finish post")
    ((_, message),) = world.finish_posts(job_id)
    await _status_settled(world, job_id)
    return message


async def _status_settled(world: World, job_id: int) -> None:
    """Until the set-up job's status message shows its end: the presenter edits it after the
    finish post, from spare budget and at most one edit per job per interval, so that edit can
    land after the next command has started, and a kill point meant for the command's own
    calls ("the first PATCH of a message after the command") would land on it instead (seen
    once in CI: imagine-n killed between its defer and its ledger write). Best effort: an edit
    that never comes (the message already showed the end) costs the wait and nothing else."""
    jobs = [j for j in await world.jobs() if j.id == job_id]
    if not jobs or not jobs[0].route.status_message_id:
        return
    route = jobs[0].route
    path = f"/channels/{route.post_channel_id}/messages/{route.status_message_id}"
    needle = f"-# job {job_id} ·"
    posted = next(
        (
            i
            for i, r in enumerate(world.emu.requests)
            if r.method == "POST"
            and isinstance(r.json, dict)
            and needle in str(r.json.get("content"))
        ),
        0,
    )
    with contextlib.suppress(TimeoutError):
        await wait(
            lambda: any(
                r.method == "PATCH" and r.path == path and r.status
                for r in world.emu.requests[posted:]
            ),
            10,
            f"job {job_id}'s last status edit",
        )


async def _setup(world: World, command: str) -> tuple[int, str] | None:
    """The finished job(s) a follow-up command starts from; the button it presses."""
    emu, alice = world.emu, world.alice
    if command in ("button", "custom-zoom"):
        await emu.slash_command("imagine", {"prompt": "a parent lighthouse"}, user_id=alice)
        target = _button(await _finished(world, 1), "U1")
        if command == "button":
            return target
        await emu.press_button(*target, user_id=alice)
        return _button(await _finished(world, 2), "Custom Zoom")
    if command == "imagine-n":
        image = emu.add_attachment("d.png", png(PNG_COLORS[2]), "image/png")
        await emu.slash_command("describe", {"image": image}, user_id=alice)
        return _button(await _finished(world, 1), "Imagine 2")
    return None


async def _command(world: World, command: str, target: tuple[int, str] | None) -> Any:
    """Act as the member; returns the interaction whose reply the member watches."""
    emu = world.emu
    if target is not None:
        pressed = await emu.press_button(*target, user_id=world.alice)
        if command != "custom-zoom":
            return pressed
        try:  # the bot answers the press with a modal, unless it died first
            await wait(lambda: pressed.modal is not None, 15, "the zoom modal")
        except TimeoutError:
            return pressed
        await emu.wait_gateway(30)  # a restarted bot, if it was killed meanwhile
        return await emu.submit_modal(pressed, {"prompt": "", "zoom": "1.8"}, user_id=world.alice)
    if command == "imagine":
        ref = emu.add_attachment("ref.png", png(PNG_COLORS[0]), "image/png")
        options = {"prompt": "a lighthouse", "image1": ref}
    elif command == "describe":
        options = {"image": emu.add_attachment("d.png", png(PNG_COLORS[1]), "image/png")}
    else:
        options = {
            f"image{i + 1}": emu.add_attachment(f"b{i}.png", png(c), "image/png")
            for i, c in enumerate(PNG_COLORS[:2])
        }
    return await emu.slash_command(command, options, user_id=world.alice)


SUBMIT_PATHS = {
    "imagine": "/mj/submit/imagine",
    "button": "/mj/submit/action",
    "describe": "/mj/submit/describe",
    "blend": "/mj/submit/blend",
    "imagine-n": "/mj/submit/imagine",
    "custom-zoom": "/mj/submit/action",
}


async def run(flow: str, tmp: Path, validator: Any, kill: Kill | None) -> Outcome:
    """One command in a fresh world, killed at `kill` (None: a clean run), then settled.

    `flow` is a command, optionally with the API profile: `imagine@upstream` (an upstream
    server can list tasks by state; the default, an aggregator, cannot).
    """
    command, _, profile = flow.partition("@")
    async with World(tmp, validator, profile=profile or "aggregator") as world:
        first = await world.spawn()
        await first.wait_ready()  # commands synced (setup_hook) and tracking running
        target = await _setup(world, command)
        # The setup jobs' last edits must be out before the flow's traffic is counted.
        await world.quiet(1.0 if target is not None else 0.2)
        parents = {j.id for j in await world.jobs()}
        emu_start, api_start = len(world.emu.requests), len(world.gate.signatures)
        submits_before = len(world.sim.requests_to(SUBMIT_PATHS[command]))
        hold: Any = None
        if kill is not None:
            service, method, route, *role = kill.signature.split(" ")
            if service == "discord":
                finish = bool(role)
                hold = world.emu.hold(
                    method,
                    route,
                    when=(lambda b: is_finish_post(b) == finish) if method == "POST" else None,
                )
            else:
                hold = world.gate.hold = ApiHold(kill.signature)
        acting = asyncio.create_task(_command(world, command, target))
        if kill is not None:
            try:
                await asyncio.wait_for(hold.arrived.wait(), 30)
            except TimeoutError:
                raise AssertionError(f"{kill.signature} never came\n{world.log()}") from None
            await first.kill()
            hold.release(apply=not kill.before)
            await world.spawn()
        interaction = await asyncio.wait_for(acting, 60)
        # Recovery runs once the restarted bot is ready: only after that can "nothing moves"
        # mean "settled" (a slow start must not pass for a quiet one).
        await world.bots[-1].wait_ready()
        await _settle(world, parents)
        jobs = [j for j in await world.jobs() if j.id not in parents]
        original = interaction.original_message
        return Outcome(
            jobs=jobs,
            finish_posts={j.id: world.finish_posts(j.id) for j in jobs},
            loading_replies=int(original is not None and bool(original.get("flags", 0) & LOADING)),
            acknowledged=interaction.acked_at is not None,
            submits=len(world.sim.requests_to(SUBMIT_PATHS[command])) - submits_before,
            usage={k: v for k, v in (await world.usage()).items() if k not in parents},
            signatures=[
                discord_signature(r.method, r.route, r.json) for r in world.emu.requests[emu_start:]
            ]
            + world.gate.signatures[api_start:],
            log=world.log(),
            tokens=list(world.emu.interactions_by_token),
        )


async def _settle(world: World, parents: set[int], timeout: float = 60) -> None:
    """Until every job of the command has its outcome recorded as posted (or there is none),
    and nothing moves for a while."""
    deadline = time.monotonic() + timeout
    while True:
        await world.quiet(0.5)
        jobs = [j for j in await world.jobs() if j.id not in parents]
        if all(j.post_state.value == "POSTED" and j.ack is None for j in jobs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled: {jobs}\n{world.log()[-4000:]}")
