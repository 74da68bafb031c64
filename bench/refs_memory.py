"""Reference images through the client: memory, event-loop gaps and time to submit.

    python -m bench.refs_memory [--runs 5] [--count 3] [--size-mb 8]

Three processes, as in a deployment: this one orchestrates; a *server* process runs the
Midjourney-proxy simulator (aggregator profile) and serves the reference files; each
measurement is a fresh *client* process that downloads the references over HTTP, turns them
into `ReferenceImage`s the way the bot does (`check_reference`) and submits one /imagine.

Two ways of sending are measured, alternating run by run:

* ``streamed`` — `bot.adapters.mj.MjClient` as it is: the body goes out in chunks, base64 made in
  slices in a worker thread (`bot.adapters.mj.bodies`);
* ``whole`` (the baseline) — the client before issue 12: data URIs built on the loop, the whole
  body `json.dumps`-ed and encoded, then posted in one piece.

Figures, per client process:

* **extra peak memory** — tracemalloc's peak during the submit minus what was allocated just
  before it (the downloaded input is already counted there), as a multiple of the input size;
  measured in separate runs, since tracing slows everything down;
* **biggest loop gap** — the longest interval between wake-ups of a 10 ms heartbeat on the
  client's loop from the last download to the submit's answer (so a gap includes the 10 ms);
* **download → submit sent** — from the last reference in hand to the simulator having received
  the whole request (CLOCK_MONOTONIC is system-wide on Linux, so the two processes' clocks
  agree).

The goal lines give the median extra memory and the p99 of the other two, for the streamed way.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import aiohttp
from aiohttp import web

GOAL_MEMORY = 2.0  # × input
GOAL_GAP_MS = 50.0
GOAL_SENT_S = 0.5
KEY = "sk-test"
HEARTBEAT = 0.010


# --- the server process ------------------------------------------------------------------------


def _png(size: int) -> bytes:
    """A real PNG of about `size` bytes: random pixels, stored uncompressed (quick to make)."""
    from PIL import Image

    side = int((size / 3) ** 0.5)
    noise = os.urandom(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, format="PNG", compress_level=0)
    return out.getvalue()


async def serve(count: int, size: int) -> None:
    """The simulator plus `/ref/<i>` (the reference files) and `/submits` (when each imagine
    arrived in full), until stdin closes."""
    from bot.sandbox.mjproxy import MjProxySimulator

    sim = MjProxySimulator(profile="aggregator", api_key=KEY, auto_advance=False)
    await sim.start()
    refs = [await asyncio.to_thread(_png, size) for _ in range(count)]

    async def ref(request: web.Request) -> web.Response:
        return web.Response(body=refs[int(request.match_info["i"])], content_type="image/png")

    async def submits(_: web.Request) -> web.Response:
        arrived = [r.at for r in sim.requests_to("/mj/submit/imagine")]
        sim.requests.clear()  # the bodies are large; keep the server's memory flat
        return web.json_response(arrived)

    app = web.Application()
    app.router.add_get("/ref/{i}", ref)
    app.router.add_get("/submits", submits)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    files = f"http://127.0.0.1:{runner.addresses[0][1]}"
    print(json.dumps({"sim": sim.base_url, "files": files, "sizes": [len(r) for r in refs]}))
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    await sim.stop()


# --- a client process --------------------------------------------------------------------------


async def _whole_body_submit(sim_url: str, images: list[Any]) -> None:
    """The client before issue 12, as it was: everything built on the loop, sent in one piece."""
    from bot.core.images import to_data_uri

    body = {
        "botType": "MID_JOURNEY",
        "prompt": "a lighthouse",
        "base64Array": [to_data_uri(image) for image in images],
        "state": "",
    }
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    url = f"{sim_url}/mj/submit/imagine"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers) as reply,
    ):
        assert reply.status == 200, await reply.text()
        assert (await reply.json())["code"] == 1


async def client(way: str, sim_url: str, files: str, count: int, trace: bool) -> dict[str, Any]:
    """One download-and-submit; returns its figures."""
    from bot.adapters.mj import MjClient
    from bot.core.images import check_reference
    from bot.core.jobs import Mode
    from bot.core.ports import ImagineRequest

    beats: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            beats.append(time.monotonic())
            await asyncio.sleep(HEARTBEAT)

    if trace:
        tracemalloc.start()
    images = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            async with session.get(f"{files}/ref/{i}") as resp:
                data = await resp.read()
            images.append(check_reference(f"image{i + 1}", f"ref{i}.png", data, max_bytes=1 << 30))
        del data
        last_download = time.monotonic()
        before = tracemalloc.get_traced_memory()[0] if trace else 0
        if trace:
            tracemalloc.reset_peak()
        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        start = time.monotonic()
        if way == "streamed":
            async with MjClient(sim_url, KEY, read_timeout=120) as api:
                await api.imagine(ImagineRequest("a lighthouse", Mode.MID_JOURNEY, images=images))
        else:
            await _whole_body_submit(sim_url, images)
        done = time.monotonic()
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        stop.set()
        await beat
        async with session.get(f"{files}/submits") as resp:
            (arrived,) = await resp.json()
    stamps = [start, *[b for b in beats if start <= b <= done], done]
    gap = max(b - a for a, b in itertools.pairwise(stamps))
    size = sum(image.size for image in images)
    return {
        "way": way,
        "input": size,
        "extra_x": (peak - before) / size if trace else None,
        "gap_ms": gap * 1000,
        "sent_s": arrived - last_download,
    }


# --- the orchestrator --------------------------------------------------------------------------


def _run_client(way: str, server: dict[str, Any], count: int, trace: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.refs_memory", "--client", way]
    argv += ["--sim", server["sim"], "--files", server["files"], "--count", str(count)]
    if trace:
        argv.append("--trace")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _line(name: str, values: list[float], unit: str, digits: int = 1) -> str:
    return (
        f"  {name}: n={len(values)} median {statistics.median(values):.{digits}f}{unit} "
        f"p99 {_p99(values):.{digits}f}{unit} max {max(values):.{digits}f}{unit}"
    )


def orchestrate(runs: int, count: int, size_mb: float) -> None:
    server_argv = [sys.executable, "-m", "bench.refs_memory", "--serve"]
    server_argv += ["--count", str(count), "--size-mb", str(size_mb)]
    server = subprocess.Popen(server_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        info = json.loads(server.stdout.readline())
        total = sum(info["sizes"])
        print(
            f"{count} references of {size_mb:g} MB ({total / 1e6:.1f} MB in all), "
            f"{runs} runs per way and measure, client and simulator in separate processes"
        )
        results: dict[str, dict[str, list[float]]] = {
            way: {"extra_x": [], "gap_ms": [], "sent_s": []} for way in ("streamed", "whole")
        }
        for _ in range(runs):
            for way in ("streamed", "whole"):  # alternating, so drift favours neither
                timed = _run_client(way, info, count, trace=False)
                traced = _run_client(way, info, count, trace=True)
                results[way]["gap_ms"].append(timed["gap_ms"])
                results[way]["sent_s"].append(timed["sent_s"])
                results[way]["extra_x"].append(traced["extra_x"])
        for way, label in (("streamed", "mjcord (streamed)"), ("whole", "baseline (whole body)")):
            print(label)
            print(_line("extra peak memory", results[way]["extra_x"], "× input", 2))
            print(_line("biggest loop gap (10 ms heartbeat)", results[way]["gap_ms"], " ms"))
            print(_line("last download → submit received", results[way]["sent_s"], " s", 3))
        ours = results["streamed"]
        memory = statistics.median(ours["extra_x"])
        gap = _p99(ours["gap_ms"])
        sent = _p99(ours["sent_s"])

        def verdict(ok: bool) -> str:
            return "met" if ok else "missed"

        # The submit line first: the two named goals end the output.
        print(
            f"goal refs-submit-sent: {sent:.3f} s ({GOAL_SENT_S:g} s) "
            f"{verdict(sent <= GOAL_SENT_S)}"
        )
        print(
            f"goal refs-memory: {memory:.2f}x ({GOAL_MEMORY:g}x) {verdict(memory <= GOAL_MEMORY)}"
        )
        print(
            f"goal refs-loop-gap: {gap:.1f} ms ({GOAL_GAP_MS:g} ms) {verdict(gap <= GOAL_GAP_MS)}"
        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--size-mb", type=float, default=8.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["streamed", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--sim", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.count, int(args.size_mb * 1024 * 1024)))
    elif args.client:
        figures = asyncio.run(client(args.client, args.sim, args.files, args.count, args.trace))
        print(json.dumps(figures))
    else:
        orchestrate(args.runs, args.count, args.size_mb)


if __name__ == "__main__":
    main()
