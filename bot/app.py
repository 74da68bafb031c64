"""The composition root: settings → logging → HTTP session and storage → adapters → services →
bot and web server. Shutdown runs in reverse. Nothing else wires concrete adapters to ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from datetime import timedelta
from typing import Any

import aiohttp
from yarl import URL

from bot.adapters.http_images import HttpImages
from bot.adapters.mj_client import MjClient
from bot.adapters.storage import Storage, open_storage
from bot.adapters.web import WebServer
from bot.core.gate import ModerationGate, ModerationService
from bot.core.leadership import lead
from bot.core.leases import heartbeat
from bot.core.ledger import Ledger
from bot.core.recovery import Recovery
from bot.core.services import ActionService, ImagineService, SystemClock
from bot.core.tracking import Tracker
from bot.discord_ui.audit import LogChannelMirror
from bot.discord_ui.client import MjcordBot, point_discord_at
from bot.discord_ui.cogs.describe import DescribeBlendCog
from bot.discord_ui.cogs.followups import FollowUpCog
from bot.discord_ui.cogs.imagine import ImagineCog
from bot.discord_ui.cogs.moderation import ModerationCog, QuotaCog
from bot.discord_ui.mod_views import thread_parent
from bot.discord_ui.presenter import DiscordPresenter
from bot.discord_ui.restore import DiscordPlaces
from bot.discord_ui.worklane import attach as attach_work_lane
from bot.settings import Settings

log = logging.getLogger(__name__)


class Application:
    """Everything one bot process runs, built from one `Settings`.

    `start()` returns once the bot is connected and ready; `stop()` undoes it in reverse. Tests
    and the demo use it in-process; `python -m bot` uses `run()`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        guild_ready_timeout: float = 2.0,
        web_host: str = "0.0.0.0",
        min_edit_interval: float = 3.0,
        sync_only: bool = False,
        heartbeat_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self._sync_only = sync_only  # `python -m bot sync`: log in, sync, return
        self._heartbeat_timeout = heartbeat_timeout
        self._guild_ready_timeout = guild_ready_timeout
        self._web_host = web_host
        self._min_edit_interval = min_edit_interval
        self.session: aiohttp.ClientSession | None = None
        self.storage: Storage | None = None
        self.api: MjClient | None = None
        self.bot: MjcordBot | None = None
        self.tracker: Tracker | None = None
        self.recovery: Recovery | None = None
        self.presenter: DiscordPresenter | None = None
        self.mirror: LogChannelMirror | None = None
        self.web: WebServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._recovering: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Build and start everything; returns when the bot is ready."""
        s = self.settings
        point_discord_at(s.discord_api_base, str(s.discord_gateway_url))
        self.session = aiohttp.ClientSession()
        self.storage = await open_storage(s.database_url)
        # SQLite serves one bot process; a second is refused here, with what to set instead.
        # `python -m bot sync` only syncs commands (no tracking, no gateway): it may run beside.
        if not self._sync_only:
            self.storage.claim_single_process()
        self.api = MjClient(
            s.mj_base,
            s.mj_api_key.get_secret_value(),
            auth_style=s.mj_auth_style,
            session=self.session,
            chunk_size=s.mj_chunk_size,
        )
        # The emulator or a Discord REST proxy serves attachments from its own host too.
        files = HttpImages(
            self.session,
            extra_hosts=[URL(s.discord_api_base).host or ""],
            max_pixels=s.max_reference_pixels,
        )
        clock = SystemClock()
        ledger = Ledger(self.storage.jobs)
        self.bot = bot = MjcordBot(
            cogs=lambda: cogs,  # built below: they need the bot, the presenter and the gate
            dev_guild_id=s.dev_guild_id,
            guild_ready_timeout=self._guild_ready_timeout,
            shard_count=s.shard_count,
            shard_ids=s.shard_ids,
            heartbeat_timeout=self._heartbeat_timeout,
            sync_record=self.storage.command_sync,
            force_sync=self._sync_only,
        )
        attach_work_lane(bot)  # post-defer work waits for pending acknowledgements
        # Moderation: the gate every job passes, and the log channel that mirrors its audit log.
        self.mirror = LogChannelMirror(bot, self.storage.moderation, self.storage.jobs)
        gate = ModerationGate(
            self.storage.moderation,
            clock,
            observer=self.mirror,
            parent_of=lambda channel_id: thread_parent(bot, channel_id),
            languages=bot.languages,  # the public locale each server chose (/mod language)
        )
        moderation = ModerationService(gate, self.storage.jobs)
        self.presenter = presenter = DiscordPresenter(
            bot, files, min_edit_interval=self._min_edit_interval, load=self.storage.jobs.many
        )
        # The one notifyHook URL every submit sends (None: callbacks off, polling only).
        notify_hook = s.callback_url
        # Each job's steps are leased to this process while it works on them, so another
        # process finishes them if this one dies (bot.core.leases, bot.core.recovery).
        leases = self.storage.leases()
        submitting: dict[str, Any] = {
            "files": files,
            "max_reference_bytes": s.max_reference_bytes,
            "notify_hook": notify_hook,
            "leases": leases,
        }
        service = ImagineService(self.api, ledger, gate, clock, **submitting)
        self.tracker = Tracker(
            self.api,
            ledger,
            presenter,
            gate,
            clock,
            timeout=timedelta(minutes=s.mj_task_timeout),
            interval=s.mj_poll_interval,
            chunk_size=s.mj_chunk_size,
            callbacks=notify_hook is not None,
        )
        # What an earlier or a dead process left midway is carried on from its last step.
        self.recovery = Recovery(
            service,
            DiscordPlaces(bot, service, clock),
            clock,
            timeout=timedelta(minutes=s.mj_task_timeout),
            leases=leases,
        )
        born = clock.now()
        actions = ActionService(self.api, ledger, gate, clock, **submitting)
        cogs = [
            FollowUpCog(actions, service),
            DescribeBlendCog(service, server_modes=gate.default_mode),
            ImagineCog(service, presenter, server_modes=gate.default_mode),
            QuotaCog(moderation),
            ModerationCog(bot, moderation, health=self._health),
        ]
        secret = s.webhook_secret.get_secret_value() if s.webhook_secret else None
        self.web = WebServer(
            self._health,
            callback_secret=secret if notify_hook else None,
            on_callback=self.tracker.hint,
        )
        if self._sync_only:
            # Logging in runs setup_hook, which syncs; no gateway session (it would receive the
            # running bot's interactions), no web server (its port is taken), no tracker.
            await bot.login(s.discord_token.get_secret_value())
            return
        await self.web.start(self._web_host, s.port)
        bot_task = asyncio.create_task(bot.start(s.discord_token.get_secret_value()))
        self._tasks.append(bot_task)
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({bot_task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if bot_task in done:
            ready.cancel()
            await self.stop()
            bot_task.result()  # re-raise why the bot could not start
            raise RuntimeError("the bot stopped before it was ready")
        # Only the elected process tracks (see bot.core.leadership); the others stand by.
        self._tasks.append(asyncio.create_task(lead(self.storage.leadership(), self.tracker.run)))
        if leases.shared:  # several processes on the database: keep this one's leases alive
            self._tasks.append(asyncio.create_task(heartbeat(leases, clock)))
        # Not in _tasks: a recovery that fails is logged, and the bot runs on. Every process
        # watches for commands a dead process left midway (bot.core.recovery).
        self._recovering = asyncio.create_task(self.recovery.watch(born))
        log.info("mjcord is ready as %s", bot.user)

    async def wait(self) -> None:
        """Run until the bot or the tracker stops (a crash re-raises here)."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        """Stop in reverse order of start. Safe to call twice."""
        if self._recovering is not None:
            self._recovering.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recovering
        for task in reversed(self._tasks[1:]):
            task.cancel()
        if self.presenter is not None:
            await self.presenter.close()
        if self.mirror is not None:
            await self.mirror.close()
        if self.bot is not None and not self.bot.is_closed():
            await self.bot.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.web is not None:
            await self.web.stop()
        if self.storage is not None:
            await self.storage.close()
            self.storage = None
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _health(self) -> dict[str, Any]:
        """`/healthz`: the booleans decide 200 or 503; the rest is information."""
        bot, tracker = self.bot, self.tracker
        # is_ready() stays true while discord.py reconnects; each shard's websocket says
        # whether the gateway is connected right now.
        shards = bot.shards.values() if bot is not None else ()
        gateway = bool(
            bot
            and bot.is_ready()
            and not bot.is_closed()
            and shards
            and all(not shard.is_closed() for shard in shards)
        )
        last = tracker.last_api_success if tracker else None
        return {
            "gateway": gateway,
            "database": bool(self.storage and await self.storage.ping(timeout=2.0)),
            "last_api_success": last.isoformat() if last else None,
            "tracked_jobs": tracker.tracked if tracker else 0,
            "cycle_seconds": round(tracker.cycle_seconds(), 2) if tracker else None,
        }


async def run(settings: Settings) -> None:
    """`python -m bot`: run until interrupted."""
    app = Application(settings, guild_ready_timeout=settings.guild_ready_timeout)
    try:
        await app.start()
        # What exists now (the libraries, the catalogues, Discord's caches) lives as long as the
        # process: out of the collector's sight, a full collection walks only what the bot made
        # since. Walking the whole heap stopped the event loop for 100-120 ms each time (issue
        # 12), longer than a loop gap may be; see the gc.freeze documentation. Here, not in
        # `start`: the heap is the process's, and a test process starts many bots.
        gc.collect()
        gc.freeze()
        await app.wait()
    finally:
        await app.stop()


async def sync(settings: Settings) -> None:
    """`python -m bot sync`: sync the slash commands whether or not they changed, beside a
    running bot if there is one."""
    app = Application(settings, sync_only=True)
    try:
        await app.start()
    finally:
        await app.stop()
