"""`python -m bot [run|check|demo|sync]`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot import log as logsetup
from bot.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot", description="mjcord, the Discord bot")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check", "demo", "sync"],
        help="run the bot (default), check the configuration, play the offline demo, or sync "
        "the slash commands to Discord now (start-up syncs only when they changed)",
    )
    parser.add_argument(
        "--guild",
        type=int,
        metavar="ID",
        help="with sync: sync to this server only (instant), instead of DEV_GUILD_ID or globally",
    )
    args = parser.parse_args(argv)
    if args.guild is not None and args.command != "sync":
        parser.error("--guild goes with the sync command")
    if args.command == "demo":
        from bot.sandbox.demo import main as demo_main  # the sandbox is only loaded for the demo

        return demo_main()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    logsetup.configure(
        settings.log_level,
        secrets=[
            settings.discord_token.get_secret_value(),
            settings.mj_api_key.get_secret_value(),
            # The callback URL's path carries it: any library line quoting the URL is masked.
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else "",
        ],
    )
    from bot import app  # after logging is configured

    if args.command == "check":
        from bot.check import run_checks

        return 0 if asyncio.run(run_checks(settings)) else 1
    if args.command == "sync":
        if args.guild is not None:
            settings = settings.model_copy(update={"dev_guild_id": args.guild})
        asyncio.run(app.sync(settings))
        return 0
    try:
        asyncio.run(app.run(settings))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
