"""The Midjourney-proxy HTTP client: implements the `ImageApi` port over aiohttp.

It speaks to every layer of mj-api.md (the Java proxy 2.x, the plus build, the C# proxy and the
new-api aggregator). `transport` sends and receives, `models` reads the JSON, `outcomes` holds
the table from answers to core results and errors, `bodies` streams the submit bodies and
`legacy` presses buttons on the Java proxy. What a server lacks (list-by-condition,
/submit/action, the task list) is learnt from its first 404/405 and remembered.

No aiohttp, json or time-out exception leaves this package. Failures are logged once, as one
line with the endpoint and the HTTP status; the key never appears, and bodies are cut short
with long base64 runs blanked out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Hashable, Sequence
from types import TracebackType
from typing import Any, NoReturn, Self
from urllib.parse import quote

import aiohttp

from bot.core.errors import (
    ApiError,
    InvalidRequest,
    Misconfigured,
    TaskNotFound,
    Unsupported,
)
from bot.core.jobs import Mode, ReferenceImage, Submission, TaskSnapshot
from bot.core.messages import msg
from bot.core.ports import ImagineRequest

from .bodies import add_common, json_body, streamed_body
from .legacy import change_body
from .models import most_advanced
from .outcomes import Kind, common_error, fetch_outcome, list_outcome, submit_outcome
from .transport import AuthStyle, Body, Reply, Transport

__all__ = ["MjClient"]

log = logging.getLogger("bot.adapters.mj")

# How many single-task fetches run at once when the server lacks list-by-condition.
_FALLBACK_CONCURRENCY = 8
# The C# proxy's GET /mj/task/list answers its newest 100 tasks (TaskController.List: Take(100)).
_CAPPED_LIST = 100
# How many modal-confirmed task ids the client remembers (see `fetch`).
_TWO_ROWS_KEPT = 1000


class MjClient:
    """A Midjourney-proxy compatible API over HTTP (the `ImageApi` port).

    `base_url` is the API root, optionally with a mode prefix (`https://api.example.com/mj-relax`);
    the client appends `/mj/submit/imagine` and so on. `auth_style` picks the header the key goes
    in. Pass a shared `session` to reuse its connection pool; otherwise the client makes (and
    `close()` closes) its own. `connect_timeout` bounds connecting; `read_timeout` bounds the rest
    of each request. `chunk_size` is how many ids go in one list-by-condition request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        auth_style: AuthStyle = "bearer",
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        chunk_size: int = 100,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._http = Transport(
            base_url,
            api_key,
            auth_style=auth_style,
            session=session,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._chunk_size = chunk_size
        # Learnt from 404/405 answers: what this server lacks.
        self._list_unsupported = False
        self._action_unsupported = False
        self._missing_listings: set[str] = set()
        # Tasks confirmed through /submit/modal: new-api keeps two rows for each, and its fetch
        # reads the stale one, so these are read through list-by-condition (most advanced row).
        self._two_rows: dict[str, None] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP session if this client made it; a shared session is left alone."""
        await self._http.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def list_by_condition_supported(self) -> bool:
        """False once the server has answered list-by-condition with 404/405."""
        return not self._list_unsupported

    @property
    def action_supported(self) -> bool:
        """False once the server has answered /submit/action with 404/405 (the Java proxy 2.x):
        U/V/🔄 then go through /submit/change."""
        return not self._action_unsupported

    # --- the port: submits ---------------------------------------------------------------------

    async def imagine(self, request: ImagineRequest) -> Submission:
        """POST /mj/submit/imagine with the prompt and the reference images as data URIs."""
        fields: dict[str, Any] = {"botType": request.mode.value, "prompt": request.prompt}
        add_common(fields, request.state, request.notify_hook)
        body = streamed_body(fields, {"base64Array": list(request.images)})
        return await self._submit("/mj/submit/imagine", body, "submit")

    async def action(
        self, task_id: str, custom_id: str, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/action: press one of a finished task's buttons by its customId.

        Where the server has no /submit/action (404/405: the Java proxy 2.x), U, V and 🔄 go
        through /submit/change from then on; other buttons are `Unsupported` there.
        """
        if not self._action_unsupported:
            fields: dict[str, Any] = {"taskId": task_id, "customId": custom_id}
            add_common(fields, state, notify_hook)
            try:
                return await self._submit("/mj/submit/action", json_body(fields), "parent")
            except Unsupported:
                log.info("mj: no /mj/submit/action here; pressing buttons via /mj/submit/change")
                self._action_unsupported = True
        change = change_body(task_id, custom_id)
        if change is None:
            raise Unsupported(
                f"POST /mj/submit/change: no way to press {custom_id!r} on this server",
                message=msg("The image service does not offer this button."),
            )
        add_common(change, state, notify_hook)
        return await self._submit("/mj/submit/change", json_body(change), "parent")

    async def modal(
        self,
        task_id: str,
        *,
        prompt: str = "",
        mask_base64: str = "",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/modal: confirm a task waiting in MODAL (remix, custom zoom, region).

        An empty prompt is left out: the proxies then use the parent's prompt.
        """
        fields: dict[str, Any] = {"taskId": task_id}
        if prompt:
            fields["prompt"] = prompt
        if mask_base64:
            fields["maskBase64"] = mask_base64
        add_common(fields, state, notify_hook)
        submission = await self._submit("/mj/submit/modal", json_body(fields), "parent")
        self._two_rows[submission.task_id] = None
        while len(self._two_rows) > _TWO_ROWS_KEPT:
            del self._two_rows[next(iter(self._two_rows))]
        return submission

    async def describe(
        self, image: ReferenceImage, mode: Mode, *, state: str = "", notify_hook: str | None = None
    ) -> Submission:
        """POST /mj/submit/describe with one image as a data URI."""
        fields: dict[str, Any] = {"botType": mode.value}
        add_common(fields, state, notify_hook)
        body = streamed_body(fields, {"base64": image})
        return await self._submit("/mj/submit/describe", body, "submit")

    async def blend(
        self,
        images: Sequence[ReferenceImage],
        mode: Mode,
        *,
        dimensions: str = "SQUARE",
        state: str = "",
        notify_hook: str | None = None,
    ) -> Submission:
        """POST /mj/submit/blend with 2–5 images (checked here, before any upload)."""
        if not 2 <= len(images) <= 5:
            raise InvalidRequest(
                f"blend needs 2-5 images, got {len(images)}",
                message=msg("A blend needs between 2 and 5 images."),
            )
        fields: dict[str, Any] = {"botType": mode.value, "dimensions": dimensions}
        add_common(fields, state, notify_hook)
        body = streamed_body(fields, {"base64Array": list(images)})
        return await self._submit("/mj/submit/blend", body, "submit")

    # --- the port: reading tasks ---------------------------------------------------------------

    async def fetch(self, task_id: str) -> TaskSnapshot:
        """GET /mj/task/{id}/fetch. Raises TaskNotFound for an id the server does not know.

        A task this client confirmed through /submit/modal is read through list-by-condition
        instead, where the server has it: new-api's fetch shows the row /submit/action left.
        """
        if task_id in self._two_rows and not self._list_unsupported:
            listed = await self._list_chunk([task_id])
            if listed:
                return most_advanced(listed)[0]
        path = f"/mj/task/{quote(str(task_id), safe='')}/fetch"
        where = f"GET {path}"
        reply = await self._http.send("GET", path)
        self._check(reply, where, "fetch")
        outcome = fetch_outcome(reply, where, self._http.clip)
        if isinstance(outcome, ApiError):
            self._fail(outcome, where, reply)
        return outcome

    async def list_by_ids(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        """Several tasks at once: list-by-condition in chunks of `chunk_size`, in order.

        Where the server answers 404/405 the client remembers it and from then on fetches each
        task on its own (concurrently, bounded). Ids the server does not know are left out; an
        id the server lists twice (new-api keeps a second row after /submit/modal, and only one
        of the two moves on) appears once, as its most advanced row.
        """
        ids = list(dict.fromkeys(str(i) for i in task_ids if i))
        if not ids:
            return []
        found: list[TaskSnapshot] = []
        for start in range(0, len(ids), self._chunk_size):
            chunk = ids[start : start + self._chunk_size]
            if not self._list_unsupported:
                listed = await self._list_chunk(chunk)
                if listed is not None:
                    found.extend(listed)
                    continue
            found.extend(await self._fetch_each(chunk))
        return most_advanced(found)

    async def list_if_changed(
        self, task_ids: Sequence[str], last: Hashable | None
    ) -> tuple[Hashable | None, list[TaskSnapshot] | None]:
        """One chunk as `list_by_ids` reads it, unless its answer is the one `last` marks.

        Returns `(mark, snapshots)`, or `(mark, None)` when the server's answer is byte for
        byte the one that `last` (a mark this method returned before) came with: the same
        bytes mean the same snapshots, so they are neither parsed nor returned. The mark is a
        digest of the answer's body, so the client holds nothing per chunk; None where no mark
        can be made (several chunks, or a server without list-by-condition).
        """
        ids = list(dict.fromkeys(str(i) for i in task_ids if i))
        if not ids or self._list_unsupported or len(ids) > self._chunk_size:
            return None, await self.list_by_ids(ids)
        path = "/mj/task/list-by-condition"
        reply = await self._http.send("POST", path, json_body({"ids": ids}))
        mark = hashlib.blake2b(reply.body, digest_size=16).digest() if reply.status == 200 else None
        if mark is not None and mark == last:
            return mark, None  # what was read (and parsed without error) last time
        listed = self._listed(reply, ids)
        if listed is None:
            return None, await self.list_by_ids(ids)  # the one-by-one fallback from now on
        return mark, most_advanced(listed)

    async def find_by_state(self, state: str) -> TaskSnapshot | None:
        """The task whose `state` field equals `state`, or None when the server holds none.

        Reads GET /mj/task/queue (the Java proxy: tasks waiting or running) and GET
        /mj/task/list (the Java proxy: every stored task; the C# proxy: the newest 100), as
        mj-api.md §2.11 has them. Raises Unsupported when the server has no task list
        (new-api and other aggregators answer 404), or a list of exactly 100 without a match
        (the C# proxy's cap), since absence could not be told apart.
        Of several matches the newest submitted wins.
        """
        matches: list[TaskSnapshot] = []
        queue = await self._listing("/mj/task/queue")
        if queue is not None:
            matches = [s for s in queue if s.state == state]
        if not matches:
            listed = await self._listing("/mj/task/list")
            if listed is None:
                raise Unsupported(
                    "GET /mj/task/list: the server offers no task list to look for a state in"
                )
            matches = [s for s in listed if s.state == state]
            if not matches and len(listed) == _CAPPED_LIST:
                # The C# proxy lists only its newest 100: absence there proves nothing.
                raise Unsupported(
                    f"GET /mj/task/list: {len(listed)} tasks, perhaps capped, none with the state"
                )
        if not matches:
            return None
        return max(matches, key=lambda s: s.submit_time_ms or 0)

    async def probe(self) -> None:
        """One harmless authenticated call: returns if the API answers and accepts the key.

        Asks list-by-condition for an id that cannot exist (falling back to fetch where the
        server lacks it). Raises Misconfigured for a rejected key or a URL with no API behind
        it, Unavailable when the server cannot be reached, RateLimited when it is busy.
        """
        impossible = "0"
        try:
            if not self._list_unsupported:
                listed = await self._list_chunk([impossible])
                if listed is not None:
                    return
            try:
                await self.fetch(impossible)
            except TaskNotFound:
                return
        except Unsupported as exc:
            raise Misconfigured(
                f"{exc.detail}; is MJ_API_BASE_URL ({self._http.base}) the root of a "
                "Midjourney-proxy API?"
            ) from None

    # --- requests ------------------------------------------------------------------------------

    async def _submit(self, path: str, body: Body, kind: Kind) -> Submission:
        where = f"POST {path}"
        reply = await self._http.send("POST", path, body)
        self._check(reply, where, kind)
        outcome = submit_outcome(reply, where, kind, self._http.clip)
        if isinstance(outcome, ApiError):
            self._fail(outcome, where, reply)
        return outcome

    async def _list_chunk(self, ids: list[str]) -> list[TaskSnapshot] | None:
        """One list-by-condition request; None when the server lacks the endpoint (404/405)."""
        path = "/mj/task/list-by-condition"
        reply = await self._http.send("POST", path, json_body({"ids": ids}))
        return self._listed(reply, ids)

    def _listed(self, reply: Reply, ids: list[str]) -> list[TaskSnapshot] | None:
        """The tasks a list-by-condition answer holds for `ids`; None when the server lacks the
        endpoint (404/405, remembered)."""
        where = "POST /mj/task/list-by-condition"
        self._check(reply, where, "list")
        if reply.status in (404, 405):
            log.info("mj %s -> HTTP %s: fetching tasks one by one", where, reply.status)
            self._list_unsupported = True
            return None
        wanted = set(ids)
        return [s for s in self._task_list(reply, where) if s.task_id in wanted]

    async def _listing(self, path: str) -> list[TaskSnapshot] | None:
        """GET a task list (/mj/task/list, /mj/task/queue); None where the server has none."""
        if path in self._missing_listings:
            return None
        where = f"GET {path}"
        reply = await self._http.send("GET", path)
        self._check(reply, where, "list")
        if reply.status in (404, 405):
            log.info("mj %s -> HTTP %s: the server has no such list", where, reply.status)
            self._missing_listings.add(path)
            return None
        return self._task_list(reply, where)

    def _task_list(self, reply: Reply, where: str) -> list[TaskSnapshot]:
        """A JSON array of tasks; entries that are not tasks are skipped."""
        outcome = list_outcome(reply, where, self._http.clip)
        if isinstance(outcome, ApiError):
            self._fail(outcome, where, reply)
        return outcome

    async def _fetch_each(self, ids: list[str]) -> list[TaskSnapshot]:
        """Per-task fetch, at most a few at once. Unknown ids are absent.

        A task that fails for another reason is left out too, so one bad task does not stall
        the others; but when every fetch failed, the first error is raised so the caller backs
        off as for any outage.
        """
        gate = asyncio.Semaphore(_FALLBACK_CONCURRENCY)

        async def one(task_id: str) -> TaskSnapshot | ApiError | None:
            async with gate:
                try:
                    return await self.fetch(task_id)
                except TaskNotFound:
                    return None
                except ApiError as exc:
                    return exc

        results = await asyncio.gather(*(one(i) for i in ids))
        snapshots = [r for r in results if isinstance(r, TaskSnapshot)]
        errors = [r for r in results if isinstance(r, ApiError)]
        if errors and not snapshots and len(errors) == len(ids):
            raise errors[0]
        return snapshots

    # --- interpretation ------------------------------------------------------------------------

    def _check(self, reply: Reply, where: str, kind: Kind) -> None:
        error = common_error(reply, where, kind, self._http.auth_style, self._http.clip)
        if error is not None:
            self._fail(error, where, reply)

    def _fail(self, error: ApiError, where: str, reply: Reply) -> NoReturn:
        """Log the failure once (endpoint, status, a cut body) and raise it."""
        # Unknown ids and the member's own bad input are routine; service trouble is a warning.
        routine = isinstance(error, TaskNotFound) or error.member_fault
        log.log(
            logging.INFO if routine else logging.WARNING,
            "mj %s -> HTTP %s: %s: %s",
            where,
            reply.status,
            type(error).__name__,
            self._http.clip(reply.body),
        )
        raise error
