"""Commands cut short by a process's death are finished by the processes still running.

Three bot processes (shards 0, 1 and 2 of 3) share one PostgreSQL database. In each round a
burst of /imagine commands reaches one process's server, and that process is SIGKILLed while
it handles them, at one request of the first command's flow (crashkit's kill points): after its
defer (the job recorded, its submit never reaching the API), after its submit was sent (the
task made upstream, its answer never read), after its reply (the reply made, never recorded).
The last round kills the tracking leader. Nobody restarts the victim until its round is over:
the survivors must finish every command — one submit, one reply, one thread, one outcome in it —
within the lease's lapse (bot.core.leases) plus a few polls.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.storage import database_url
from bot.adapters.storage.engine import create_engine
from bot.adapters.storage.jobs import SqlJobRepository
from bot.core.jobs import Job, JobStatus, PostState
from bot.sandbox.discord import DiscordEmulator
from bot.sandbox.mjproxy import MjProxySimulator
from tests.conftest import free_port
from tests.e2e.conftest import bot_env
from tests.e2e.crashkit import ApiGate, ApiHold
from tests.e2e.test_imagine import finish_posts
from tests.e2e.test_scale_out_processes import PREFIXES, BotProcess
from tests.e2e.test_scale_out_processes import pg_url as pg_url  # the fixture

SHARDS = 3
POLL = 0.5
BURST = 3
#: From the kill to the last outcome of its round: the lease lapses within 6 s of the last
#: renewal, a sweep finds it within 2 s, then the task runs (about 2 s here) and is polled.
TAKEOVER_BUDGET = 10.0 + 2.0 + 4 * POLL + 6.0

REPLY = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
LEADS = "this process now leads tracking"
THREAD_CREATED = 18  # Discord's message type for the notice a new thread leaves in its channel


@dataclass(frozen=True)
class Round:
    name: str
    point: str  # "submit-dropped", "submit-applied" or "reply-applied"
    leader: bool  # kill the tracking leader (else a process that does not lead)


ROUNDS = (
    Round("non-leader after the defer", "submit-dropped", leader=False),
    Round("non-leader after the submit was sent", "submit-applied", leader=False),
    Round("non-leader after the reply", "reply-applied", leader=False),
    Round("the leader after the submit was sent", "submit-applied", leader=True),
)


class Fleet:
    """The three processes, each life logging to its own file."""

    def __init__(self, tmp: Path, envs: list[dict[str, str]]) -> None:
        self.tmp, self.envs = tmp, envs
        self.bots: list[BotProcess] = []
        self.lives = [0] * len(envs)

    async def start(self, shard: int) -> BotProcess:
        self.lives[shard] += 1
        bot = BotProcess(shard, self.envs[shard], self.tmp / f"bot-{shard}-{self.lives[shard]}.log")
        if shard < len(self.bots):
            self.bots[shard] = bot
        else:
            self.bots.append(bot)
        await bot.start()
        return bot

    def leader(self) -> int | None:
        leading = [
            b.shard
            for b in self.bots
            if b.alive and LEADS in b.log.read_text(errors="replace")
            if b.log.exists()
        ]
        return leading[0] if len(leading) == 1 else None

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-6000:]}"
            for p in sorted(self.tmp.glob("bot-*.log"))
        )


async def ledger(url: str) -> list[Job]:
    engine = create_engine(database_url(url))
    try:
        from sqlalchemy import text

        async with engine.connect() as conn:
            ids = [r[0] for r in (await conn.execute(text("SELECT id FROM jobs"))).all()]
        repo = SqlJobRepository(engine)
        found = [await repo.get(i) for i in sorted(ids)]
        return [j for j in found if j is not None]
    finally:
        await engine.dispose()


@pytest.mark.timeout(300)
async def test_survivors_finish_the_commands_of_a_process_killed_while_handling_them(
    spec_validator: Any,
    pg_url: str,
    tmp_path: Path,
) -> None:
    emu = DiscordEmulator(spec_validator, shards=SHARDS)
    sim = MjProxySimulator(profile="upstream", api_key="sk-test", step_seconds=0.4)
    gate = ApiGate(sim)
    await emu.start()
    await sim.start()
    await gate.start()
    sim.base_url = gate.url  # result images through the gate too, as the bots see the API
    fleet: Fleet | None = None
    took: list[tuple[str, float]] = []
    try:
        first_shard = (emu.guild_id >> 22) % SHARDS
        guilds = {first_shard: emu.guild_id}
        for shard in range(SHARDS):
            if shard not in guilds:
                guilds[shard] = emu.add_guild(f"server {shard}", shard=(shard, SHARDS))
        envs = [
            {
                **os.environ,
                **bot_env(emu, sim, pg_url),
                "MJ_API_BASE_URL": gate.url + PREFIXES[shard],
                "MJ_AUTH_STYLE": "mj-api-secret",
                "DEV_GUILD_ID": "",
                "SHARD_COUNT": str(SHARDS),
                "SHARD_IDS": str(shard),
                "PORT": str(free_port()),
                "MJ_POLL_INTERVAL": str(POLL),
                "LOG_LEVEL": "INFO",
            }
            for shard in range(SHARDS)
        ]
        fleet = Fleet(tmp_path, envs)
        await asyncio.gather(*(fleet.start(s) for s in range(SHARDS)))
        await emu.wait_for(lambda: bool(emu.global_commands), timeout=60, what="commands synced")
        for guild in guilds.values():
            await emu.wait_gateway(60, guild_id=guild)
        await emu.wait_for(lambda: fleet.leader() is not None, timeout=30, what="a leader")
        members = {s: emu.add_user(f"member {s}", guild_id=g) for s, g in guilds.items()}

        for n, round_ in enumerate(ROUNDS):
            leader = fleet.leader()
            assert leader is not None
            victim = leader if round_.leader else (leader + 1 + n % 2) % SHARDS
            guild = guilds[victim]
            prefix = PREFIXES[victim]
            hold: Any
            if round_.point.startswith("submit"):
                hold = gate.hold = ApiHold(f"api POST {prefix}/mj/submit/imagine")
            else:
                hold = emu.hold(*REPLY)
            commands = [
                asyncio.create_task(
                    emu.slash_command(
                        "imagine",
                        {"prompt": f"round {n} picture {i}"},
                        user_id=members[victim],
                        channel_id=emu.general_channels[guild],
                    )
                )
                for i in range(BURST)
            ]
            await asyncio.wait_for(hold.arrived.wait(), 30)
            await fleet.bots[victim].kill()
            killed_at = time.monotonic()
            hold.release(apply=round_.point.endswith("applied"))
            gate.hold = None
            await asyncio.gather(*commands)

            def finished(n: int = n) -> bool:
                mine = [t for t in emu.threads() if t["name"].startswith(f"round {n} ")]
                return len(mine) == BURST and all(finish_posts(emu, int(t["id"])) for t in mine)

            await emu.wait_for(finished, timeout=60, what=f"round {round_.name}'s outcomes")
            took.append((round_.name, time.monotonic() - killed_at))
            # The victim comes back for the next round (a restart is not what is tested here).
            await fleet.start(victim)
            await emu.wait_gateway(60, guild_id=guild)
            await emu.wait_for(lambda: fleet.leader() is not None, timeout=30, what="a leader")

        await asyncio.sleep(2 * POLL + 6.5)  # a lease's lapse: room for a second post or submit
        jobs = await ledger(pg_url)
    except BaseException:
        if fleet is not None:
            print(fleet.logs())
        raise
    finally:
        if fleet is not None:
            for bot in fleet.bots:
                await bot.kill()
        await gate.stop()
        await sim.stop()
        await emu.stop()

    print("kill → last outcome of its round:", ", ".join(f"{n}: {t:.1f} s" for n, t in took))
    assert len(jobs) == BURST * len(ROUNDS)
    # Every command finished: succeeded, shown in its own thread, its outcome posted once there.
    for job in jobs:
        assert job.status is JobStatus.SUCCEEDED and job.post_state is PostState.POSTED, job
        assert job.route.thread_id == job.route.reply_message_id != 0, job
        assert job.route.status_message_id and job.ack is None, job
        assert len(finish_posts(emu, job.route.thread_id)) == 1, job.id
        assert len(emu.messages(job.route.thread_id)) == 2, job.id  # status + outcome
    # One submit per job, whoever sent it; no reply, thread or outcome twice.
    submits = Counter((r.json or {}).get("state") for r in sim.requests_to("/mj/submit/imagine"))
    assert submits == Counter({f"mjcord:{j.id}": 1 for j in jobs})
    assert len(emu.threads()) == len(jobs)
    for guild in guilds.values():
        replies = [  # the public replies (not Discord's "thread created" notices, type 18)
            m
            for m in emu.messages(emu.general_channels[guild])
            if "round " in (m["content"] or "") and m.get("type") != THREAD_CREATED
        ]
        assert (
            len(replies)
            == len({m["id"] for m in replies})
            == len([j for j in jobs if j.route.guild_id == guild])
        )
        assert finish_posts(emu, emu.general_channels[guild]) == []
    # Within the lease's lapse and a few polls of the kill.
    assert all(t <= TAKEOVER_BUDGET for _, t in took), took
