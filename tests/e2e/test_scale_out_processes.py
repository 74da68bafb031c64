"""Three bot processes over one PostgreSQL, each running one of three Discord shards, with the
tracking leader and then its successor killed with SIGKILL mid-flight.

Every job must still finish exactly once, in its own thread, and no task may be polled by two
processes at once: the simulator records every list-by-condition request, and each process is
given its own mode prefix of the same API (`/mj-fast`, `/mj-relax`, `/mj-turbo`; the prefix only
tags the task's mode), so each request can be told apart by the process that sent it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port
from tests.e2e.conftest import bot_env
from tests.e2e.test_imagine import finish_posts

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get(
    "MJCORD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PREFIXES = ("/mj-fast", "/mj-relax", "/mj-turbo")
SHARDS = 3
JOBS_PER_SERVER = 10
POLL = 0.5


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of its own (the bot processes migrate it themselves)."""
    try:
        admin = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc}); CI needs it")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc})")
    name = f"mjcord_scale_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


class BotProcess:
    """One `python -m bot` running shard `shard` of SHARDS, its log in a file."""

    def __init__(self, shard: int, env: dict[str, str], log: Path) -> None:
        self.shard, self.env, self.log = shard, env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=ROOT, env=self.env, stdout=out, stderr=out
            )

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


def polls(sim: MjProxySimulator) -> list[tuple[float, str, list[str]]]:
    """(when, which process, task ids) for every list-by-condition request."""
    out = []
    for r in sim.requests_to("/mj/task/list-by-condition"):
        prefix = next((p for p in PREFIXES if r.path.startswith(p + "/")), "?")
        ids = list((r.json or {}).get("ids") or []) if isinstance(r.json, dict) else []
        out.append((r.at, prefix, ids))
    return out


def leader(sim: MjProxySimulator, since: float) -> str | None:
    """The prefix of the process that polled most recently after `since`."""
    recent = [prefix for at, prefix, _ in polls(sim) if at >= since]
    return recent[-1] if recent else None


@pytest.mark.timeout(300)
async def test_three_processes_finish_every_job_once_through_two_leader_kills(
    spec_validator: Any, pg_url: str, tmp_path: Path
) -> None:
    emu = DiscordEmulator(spec_validator, shards=SHARDS)
    sim = MjProxySimulator(profile="upstream", api_key="sk-test", step_seconds=2.5)
    await emu.start()
    await sim.start()
    bots: list[BotProcess] = []
    try:
        # One server per shard: the primary guild lands on some shard, the others fill the rest.
        first_shard = (emu.guild_id >> 22) % SHARDS
        guilds = {first_shard: emu.guild_id}
        for shard in range(SHARDS):
            if shard not in guilds:
                guilds[shard] = emu.add_guild(f"server {shard}", shard=(shard, SHARDS))
        for shard in range(SHARDS):
            env = {
                **os.environ,
                **bot_env(emu, sim, pg_url),
                "MJ_API_BASE_URL": sim.base_url + PREFIXES[shard],
                "MJ_AUTH_STYLE": "mj-api-secret",
                "DEV_GUILD_ID": "",  # global commands: the same in every server
                "SHARD_COUNT": str(SHARDS),
                "SHARD_IDS": str(shard),
                "PORT": str(free_port()),
                "MJ_POLL_INTERVAL": str(POLL),
                "LOG_LEVEL": "INFO",
            }
            bots.append(BotProcess(shard, env, tmp_path / f"bot-{shard}.log"))
        for bot in bots:
            await bot.start()
        await emu.wait_for(lambda: bool(emu.global_commands), timeout=60, what="commands synced")

        members = {
            s: [emu.add_user(f"m{s}-{i}", guild_id=g) for i in range(3)] for s, g in guilds.items()
        }
        for n in range(JOBS_PER_SERVER):
            for shard, guild in guilds.items():
                await emu.slash_command(
                    "imagine",
                    {"prompt": f"server {shard} picture {n}"},
                    user_id=members[shard][n % 3],
                    channel_id=emu.general_channels[guild],
                )
        total = JOBS_PER_SERVER * SHARDS
        await emu.wait_for(
            lambda: len(sim.requests_to("/mj/submit/imagine")) >= total,
            timeout=90,
            what="every job submitted",
        )
        await emu.wait_for(lambda: len(emu.threads()) >= total, timeout=60, what="every thread")
        # Every command fully shown (its status message in its thread) before the kills: this
        # test is about tracking changing hands; commands cut short are the crash sweep's.
        await emu.wait_for(
            lambda: all(emu.messages(int(t["id"])) for t in emu.threads()),
            timeout=60,
            what="every status message",
        )

        # Kill the tracking leader mid-flight, then its successor once it has taken over.
        killed: list[str] = []
        for _ in range(2):
            mark = asyncio.get_running_loop().time()
            await emu.wait_for(
                lambda mark=mark: leader(sim, mark) not in (None, *killed),
                timeout=20,
                what="a live process tracking",
            )
            current = leader(sim, mark)
            assert current is not None
            victim = bots[PREFIXES.index(current)]
            await victim.kill()
            killed.append(current)
            await asyncio.sleep(1.0)

        threads = [int(t["id"]) for t in emu.threads()]
        await emu.wait_for(
            lambda: all(finish_posts(emu, t) for t in threads),
            timeout=120,
            what="every job's outcome",
        )
        await asyncio.sleep(2 * POLL + 1)  # room for a second post, were one coming
    except BaseException:
        for thread in (int(t["id"]) for t in emu.threads()):
            if not finish_posts(emu, thread):
                texts = [(m.get("content") or "")[:90] for m in emu.messages(thread)]
                print(f"--- thread {thread} without an outcome: {texts}")
        for guild in guilds.values():
            texts = [
                (m.get("content") or "")[:90] for m in emu.messages(emu.general_channels[guild])
            ]
            print(f"--- channel of {guild}: {texts[-12:]}")
        for bot in bots:
            lines = bot.log.read_text(errors="replace").splitlines()
            interesting = [ln for ln in lines if " bot.core.tracking: job " not in ln]
            print(f"--- bot {bot.shard} ---\n" + "\n".join(interesting[-80:]))
        raise
    finally:
        for bot in bots:
            await bot.kill()
        await sim.stop()
        await emu.stop()

    # Exactly one outcome per job, in its thread; none in the servers' channels.
    assert len(threads) == total
    assert [len(finish_posts(emu, t)) for t in threads] == [1] * total
    for guild in guilds.values():
        assert finish_posts(emu, emu.general_channels[guild]) == []
    # Never two pollers at once: each task's polls come in at most three runs (the first leader,
    # then each successor), never interleaved between processes.
    by_task: dict[str, list[str]] = {}
    for _, prefix, ids in sorted(polls(sim)):
        for task_id in ids:
            by_task.setdefault(task_id, []).append(prefix)
    for task_id, sequence in by_task.items():
        runs = [p for i, p in enumerate(sequence) if i == 0 or sequence[i - 1] != p]
        assert len(runs) == len(set(runs)) <= 3, f"task {task_id} polled by {runs}"
    assert len(killed) == 2 and sum(b.alive for b in bots) == 0  # all stopped at the end
