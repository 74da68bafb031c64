"""A loopback Discord (REST v10, gateway, CDN) for running the real discord.py client offline."""

from bot.sandbox.discord.emulator import DiscordEmulator
from bot.sandbox.discord.interactions import Interaction
from bot.sandbox.discord.openapi import OpenApiValidator, find_spec_path, load_spec_validator
from bot.sandbox.discord.pipeline import RecordedRequest

__all__ = [
    "DiscordEmulator",
    "Interaction",
    "OpenApiValidator",
    "RecordedRequest",
    "find_spec_path",
    "load_spec_validator",
]
