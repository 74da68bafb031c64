"""The Bot subclass: endpoints, start-up wiring (setup_hook), the command sync policy, and the
fallback that answers every interaction nothing else answered."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot.core.followups import recognised
from bot.core.messages import msg
from bot.core.moderation.languages import ServerLanguages
from bot.discord_ui.i18n import CommandTranslator
from bot.discord_ui.tree import MjcordTree, tell
from bot.discord_ui.views import CLAIMED, ContinueButton, JobButton

log = logging.getLogger(__name__)

#: Answers of the fallback, by what was left unanswered.
UNKNOWN_BUTTON = msg(
    "I don't recognise this button; it may be from an older message. Please try again."
)
EXPIRED_FORM = msg("This form has expired (I may have restarted). Please press the button again.")
NOT_ANSWERED = msg("I could not handle that; please try again.")


def point_discord_at(api_base_url: str, gateway_url: str) -> None:
    """Send discord.py's REST and gateway traffic to these URLs (a REST proxy, the emulator).

    Both are process-wide class attributes of discord.py; the defaults are Discord's own.
    """
    discord.http.Route.BASE = api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


# The bot never joins voice: don't warn at every start that voice libraries are missing.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


class SyncRecord(Protocol):
    """Where the hash of the last synced command payload is kept (the database)."""

    async def synced_hash(self, scope: str) -> str | None:
        """The hash recorded for `scope` ("global" or "guild:<id>"), or None."""
        ...

    async def record_sync(self, scope: str, payload_hash: str) -> None:
        """Remember that `scope` now holds the commands hashing to `payload_hash`."""
        ...


#: The cogs, or a function returning them; it runs in `setup_hook`, so cogs may depend on
#: objects built after the bot (the presenter, the log-channel mirror).
Cogs = Sequence[commands.Cog] | Callable[[], Sequence[commands.Cog]]


class MjcordBot(commands.AutoShardedBot):
    """The bot: cogs are handed in by the composition root and added in `setup_hook`.

    Always sharded the discord.py way: `shard_count` None lets Discord choose (GET /gateway/bot,
    one process running every shard); with `shard_ids` this process runs only those of
    `shard_count`, and other processes run the rest (Discord sends each server's events to
    shard `(guild_id >> 22) % shard_count`).
    """

    def __init__(
        self,
        *,
        cogs: Cogs = (),
        dev_guild_id: int | None = None,
        guild_ready_timeout: float = 2.0,
        shard_count: int | None = None,
        shard_ids: Sequence[int] | None = None,
        heartbeat_timeout: float = 60.0,
        sync_record: SyncRecord | None = None,
        force_sync: bool = False,
    ) -> None:
        sharding: dict[str, Any] = {"shard_count": shard_count}
        if shard_ids is not None:
            sharding["shard_ids"] = list(shard_ids)
        super().__init__(
            **sharding,
            command_prefix=commands.when_mentioned,
            intents=intents(),
            tree_cls=MjcordTree,
            help_command=None,
            guild_ready_timeout=guild_ready_timeout,
            # discord.py resumes after this long without a gateway frame (a zombie). Keep it
            # above the 5 s discord.py waits before a re-IDENTIFY, or that never completes.
            heartbeat_timeout=heartbeat_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.cogs_to_add = cogs
        self.dev_guild_id = dev_guild_id
        self.sync_record = sync_record
        self.force_sync = force_sync
        #: Each server's chosen public language (`/mod language`); the moderation gate keeps
        #: it, `bot.discord_ui.i18n.where.server_locale` reads it.
        self.languages = ServerLanguages()

    async def setup_hook(self) -> None:
        """Add the cogs and restart-proof buttons, then sync the slash commands if changed."""
        cogs = self.cogs_to_add() if callable(self.cogs_to_add) else self.cogs_to_add
        for cog in cogs:
            await self.add_cog(cog)
        self.add_dynamic_items(JobButton, ContinueButton)
        # Before the sync: the translator's localisations are part of the synced payload.
        await self.tree.set_translator(CommandTranslator())
        await self.sync_commands(force=self.force_sync)

    async def command_payload(self, guild: discord.abc.Snowflake | None) -> list[dict[str, Any]]:
        """What `tree.sync` sends for this scope, localisations included (as `tree.sync` builds
        it: `get_translated_payload` when a translator is set, else `to_dict`)."""
        commands = self.tree.get_commands(guild=guild)
        translator = self.tree.translator
        if translator is None:
            return [command.to_dict(self.tree) for command in commands]
        return [await command.get_translated_payload(self.tree, translator) for command in commands]

    async def sync_commands(self, *, force: bool = False) -> list[app_commands.AppCommand] | None:
        """Sync to DEV_GUILD_ID when set (instant), else globally (may take Discord a while).

        discord.py's guidance is to sync only when the commands change (syncing is rate
        limited and global changes take time to spread): the payload's hash is kept in the
        database, and an unchanged tree is not synced again unless `force`
        (`python -m bot sync`). Returns None when nothing was synced.
        """
        guild = discord.Object(self.dev_guild_id) if self.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        scope = f"guild:{guild.id}" if guild is not None else "global"
        payload = json.dumps(
            [self.application_id, await self.command_payload(guild)], sort_keys=True, default=str
        )
        digest = hashlib.sha256(payload.encode()).hexdigest()
        recorded = None if self.sync_record is None else await self.sync_record.synced_hash(scope)
        if not force and recorded == digest:
            log.info("slash commands unchanged since the last sync (%s); not syncing", scope)
            return None
        synced = await self.tree.sync(guild=guild)
        if self.sync_record is not None:
            await self.sync_record.record_sync(scope, digest)
        log.info("synced %d slash commands (%s)", len(synced), scope)
        return synced

    async def on_interaction(self, interaction: discord.Interaction[MjcordBot]) -> None:
        """Answer, with a sentence, a component or modal interaction nothing else will answer.

        discord.py drops these silently (ui/view.py `ViewStore.dispatch_view`: no item for the
        custom id; `schedule_dynamic_item_call`: no message or the component is not on it;
        `dispatch_modal`: a modal it no longer holds, e.g. opened before a restart). It creates
        its handler tasks *before* dispatching this event (state.py `parse_interaction_create`),
        so after one turn of the loop every real handler has claimed its interaction, and:

        * a component is handled exactly when its custom id fits mjcord's grammar and the
          component is on the interaction's message (the conditions discord.py dispatches a
          dynamic item under); anything else is answered here;
        * a modal submit is handled exactly when an `MjcordModal` claimed it.

        Commands are the command tree's: it answers every outcome through `on_error`.
        """
        await asyncio.sleep(0)
        if interaction.extras.get(CLAIMED) or interaction.response.is_done():
            return
        if interaction.type is discord.InteractionType.component:
            data: dict[str, Any] = dict(interaction.data or {})
            custom_id = str(data.get("custom_id", ""))
            kind = data.get("component_type")
            if recognised(custom_id) and _on_message(interaction.message, custom_id, kind):
                return
            log.info("unrecognised component %r (interaction %s)", custom_id[:100], interaction.id)
            await tell(interaction, UNKNOWN_BUTTON)
        elif interaction.type is discord.InteractionType.modal_submit:
            log.info("modal nobody holds (interaction %s)", interaction.id)
            await tell(interaction, EXPIRED_FORM)

    async def on_app_command_completion(
        self, interaction: discord.Interaction[MjcordBot], command: object
    ) -> None:
        """A command that finished without answering still gets a sentence."""
        if not interaction.response.is_done():
            log.warning("a command finished without answering (interaction %s)", interaction.id)
            await tell(interaction, NOT_ANSWERED)


def intents() -> discord.Intents:
    """Only the `guilds` intent: servers, channels, threads and roles for the cache. The bot
    reads no messages (everything it acts on arrives as an interaction), so it asks for no
    message events: with the default intents Discord echoes every status edit and finish post
    back as MESSAGE_UPDATE / MESSAGE_CREATE, which at 20–25 edits a second was a large share of the
    tracker's CPU. Discord sends only the events a session's intents ask for
    (https://discord.com/developers/docs/events/gateway#gateway-intents)."""
    return discord.Intents(guilds=True)


def _on_message(message: discord.Message | None, custom_id: str, kind: object) -> bool:
    """True when the message carries a component of this type with this custom id (what
    discord.py's `schedule_dynamic_item_call` looks for before it calls an item)."""
    if message is None:
        return False
    stack: list[Any] = list(message.components)
    while stack:
        component = stack.pop()
        if getattr(component, "custom_id", None) == custom_id and component.type.value == kind:
            return True
        stack.extend(getattr(component, "children", ()))
    return False
