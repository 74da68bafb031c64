"""`python -m bot check`: validate the settings, then reach the image API, Discord and the
database; one line per check, and a non-zero exit when any fails. Secrets are never printed."""

from __future__ import annotations

import aiohttp

from bot.adapters.mj import MjClient
from bot.adapters.storage import open_storage
from bot.core.errors import ApiError
from bot.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)


class Report:
    """Prints one line per check and remembers whether all passed."""

    def __init__(self) -> None:
        self.ok = True

    def line(self, name: str, passed: bool, detail: str) -> None:
        """Print `ok` or `FAIL` with what was checked."""
        self.ok = self.ok and passed
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}", flush=True)


async def run_checks(settings: Settings) -> bool:
    """Run every check; True when all pass."""
    report = Report()
    report.line("settings", True, "every key is present and well-formed")
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await _image_api(settings, session, report)
        await _discord(settings, session, report)
    await _database(settings, report)
    return report.ok


async def _image_api(settings: Settings, session: aiohttp.ClientSession, report: Report) -> None:
    client = MjClient(
        settings.mj_base,
        settings.mj_api_key.get_secret_value(),
        auth_style=settings.mj_auth_style,
        session=session,
        read_timeout=10,
    )
    try:
        await client.probe()
        report.line("image API", True, f"{settings.mj_base} answers and accepts the key")
    except ApiError as exc:
        report.line("image API", False, f"{settings.mj_base}: {exc.detail or exc.member_message}")


async def _discord(settings: Settings, session: aiohttp.ClientSession, report: Report) -> None:
    url = f"{settings.discord_api_base}/users/@me"
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        async with session.get(url, headers=headers) as response:
            if response.status == 200:
                me = await response.json(content_type=None)
                report.line("Discord", True, f"the token logs in as {me.get('username', '?')}")
            elif response.status == 401:
                report.line(
                    "Discord", False, "the token was rejected (HTTP 401): check DISCORD_TOKEN"
                )
            else:
                report.line("Discord", False, f"{url} answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = getattr(exc, "os_error", None) or exc
        report.line("Discord", False, f"cannot reach {settings.discord_api_base}: {reason}")


async def _database(settings: Settings, report: Report) -> None:
    try:
        storage = await open_storage(settings.database_url)
    except Exception as exc:  # any driver or migration failure is this check's answer
        report.line("database", False, f"{type(exc).__name__}: {exc}")
        return
    try:
        reachable = await storage.ping()
        report.line(
            "database", reachable, "reachable, migrations applied" if reachable else "no answer"
        )
    finally:
        await storage.close()
