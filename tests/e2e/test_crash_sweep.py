"""The crash-point sweep: for /imagine with an attachment, a button press, /describe, /blend,
"Imagine n" under a /describe and Custom Zoom (a button, then its modal),
the bot (a subprocess) is SIGKILLed at every outbound request of the flow — Discord REST and the
image API — once before the request takes effect and once after, then restarted on the same
database. What the member and the operator would notice must hold at every point.

The points are not listed here: each command is first run clean and its recorded traffic (the
emulator's requests, the gate's image-API requests) is the list, so a request added to a flow
later is covered without editing this file. The points run concurrently, each in its own world
(emulator, simulator, SQLite file, bot processes), in one session fixture; each is its own test.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.core.jobs import JobStatus
from bot.core.recovery import UNKNOWN_ARRIVAL
from tests.e2e import crashkit
from tests.e2e.crashkit import COMMANDS, Kill, Outcome

#: Points run at once (each is mostly waiting for its subprocesses).
CONCURRENCY = 6

# Under pytest-xdist, `make test` distributes whole files (`--dist loadfile`): every point runs
# on one worker, in the one `sweep` fixture that runs them concurrently, while the other worker
# takes other files. (`loadgroup` would say so per test, but pytest-xdist 3.8 cannot rename
# pytest 9's node ids, so its groups do not form.)

#: The one step no restart can see: the defer took effect, and the process died before its
#: ledger write (the token is known only to the process that received the interaction). The
#: member's loading message then stays until Discord expires it; nothing is submitted or charged.
DEFER = "discord POST /interactions/{interaction_id}/{interaction_token}/callback"


def _in_thread(coro: Any) -> Any:
    """Run a coroutine on its own loop in a thread (pytest-asyncio owns the main one)."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    worker = threading.Thread(target=main)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


_CLEAN: dict[str, Outcome] = {}


def _run_clean() -> dict[str, Outcome]:
    async def all_clean() -> list[Outcome]:
        base = Path(tempfile.mkdtemp(prefix="mjcord-clean-"))
        runs = []
        for command in COMMANDS:
            (base / command).mkdir()
            runs.append(crashkit.run(command, base / command, None, None))
        return list(await asyncio.gather(*runs))

    return dict(zip(COMMANDS, _in_thread(all_clean()), strict=True))


def _shared_clean() -> dict[str, Outcome]:
    """Under pytest-xdist every worker collects this file, and all must collect the same
    points: the first worker runs the clean runs, the others read its outcomes."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _run_clean()
    path = Path(tempfile.gettempdir()) / f"mjcord-clean-{run_id}.pickle"
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return dict(pickle.loads(path.read_bytes()))  # this run's own file
        outcomes = _run_clean()
        path.with_suffix(".part").write_bytes(pickle.dumps(outcomes))
        path.with_suffix(".part").rename(path)
        return outcomes


def clean_runs() -> dict[str, Outcome]:
    """One clean run per command (at collection: the points come from its traffic)."""
    if not _CLEAN:
        _CLEAN.update(_shared_clean())
    return _CLEAN


def points() -> list[tuple[str, Kill]]:
    found = []
    for command, outcome in clean_runs().items():
        for signature in dict.fromkeys(outcome.signatures):
            found += [(command, Kill(signature, before=True)), (command, Kill(signature, False))]
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "point" in metafunc.fixturenames:
        chosen = points()
        metafunc.parametrize("point", chosen, ids=[f"{c}-{k.id}" for c, k in chosen])


@pytest.fixture(scope="session")
def sweep(
    request: pytest.FixtureRequest, spec_validator: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Every selected point, run concurrently: "command-kill id" → Outcome, or its error."""
    selected = [
        spec.params["point"]
        for item in request.session.items
        if (spec := getattr(item, "callspec", None)) is not None and "point" in spec.params
    ]
    chosen = [p for p in points() if p in selected]  # only those this session runs
    base = tmp_path_factory.mktemp("sweep")

    async def all_points() -> dict[str, Any]:
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(index: int, command: str, kill: Kill) -> Any:
            async with slots:
                where = base / f"p{index}"
                where.mkdir()
                try:
                    return await crashkit.run(command, where, spec_validator, kill)
                except Exception as exc:
                    return exc

        results = await asyncio.gather(*(one(i, c, k) for i, (c, k) in enumerate(chosen)))
        return {f"{c}-{k.id}": r for (c, k), r in zip(chosen, results, strict=True)}

    return dict(_in_thread(all_points()))


def test_each_clean_run_posts_once_in_its_thread() -> None:
    for command, outcome in clean_runs().items():
        (job,) = outcome.jobs
        assert job.status is JobStatus.SUCCEEDED, (command, job.fail_reason)
        ((channel_id, _),) = outcome.finish_posts[job.id]
        assert channel_id == job.route.thread_id != 0, command
        assert outcome.submits == 1 and outcome.loading_replies == 0


@pytest.mark.timeout(1200)
def test_crash_point(point: tuple[str, Kill], sweep: dict[str, Any]) -> None:
    command, kill = point
    outcome = sweep[f"{command}-{kill.id}"]
    if isinstance(outcome, BaseException):
        raise outcome
    context = f"{command} killed at {kill.signature} ({'before' if kill.before else 'after'})"
    # The interaction token is stored for a restart but never logged.
    assert not [t for t in outcome.tokens if t in outcome.log], context
    if kill.signature == DEFER and not outcome.jobs:
        # The interaction was never recorded: before, it was never acknowledged; after, it was
        # (see DEFER). Either way nothing was submitted or charged.
        assert outcome.acknowledged is not kill.before, context
        assert outcome.submits == 0 and outcome.usage == {}, context
        return
    assert len(outcome.jobs) == 1, (context, outcome.jobs)
    (job,) = outcome.jobs
    posts = outcome.finish_posts[job.id]
    # One outcome post per job, in its thread when a thread exists.
    assert len(posts) == 1, (context, [m["content"] for _, m in posts], outcome.log[-3000:])
    ((channel_id, _),) = posts
    assert channel_id == (job.route.thread_id or job.route.channel_id), context
    if command != "button":
        assert job.route.thread_id == job.route.reply_message_id != 0, context
    # The member's reply is never left "thinking".
    assert outcome.loading_replies == 0, context
    # No second submit: a submit the API never saw is sent again, once — where the server can
    # say it never saw it. Where it cannot (aggregators), a submit that may have gone out is
    # never sent again: the job fails saying so, and is refunded.
    if job.fail_reason == UNKNOWN_ARRIVAL:
        assert kill.signature.startswith("api POST /mj/submit/"), context
        assert outcome.submits <= 1, context
        assert [m["content"] for _, m in posts if "no way to check" in m["content"]], context
        assert not command.endswith("@upstream"), "an upstream server can say"
    else:
        assert outcome.submits == 1, (context, outcome.submits)
    # The quota agrees with what was posted: a success is charged, a failure refunded.
    charge = outcome.usage.get(job.id)
    if job.status is JobStatus.SUCCEEDED:
        assert charge == "quota", (context, charge)
    else:
        assert charge == "refunded", (context, charge, job.fail_reason)
