"""Run the Midjourney-proxy simulator standalone until Ctrl-C.

    python -m bot.sandbox.mjproxy --port 8787 --profile upstream --api-key sk-test
    python -m bot.sandbox.mjproxy --profile classic   # the Java midjourney-proxy 2.x

It prints its base URL; point MJ_API_BASE_URL (or curl) at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .server import PROFILES, MjProxySimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.mjproxy",
        description="A Midjourney-proxy compatible API simulator on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free one)")
    parser.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="aggregator",
        help="aggregator = new-api relay (Bearer auth); upstream = plus/C# proxy (mj-api-secret);"
        " classic = Java midjourney-proxy 2.x (mj-api-secret, /submit/change, no buttons)",
    )
    parser.add_argument("--api-key", default="sk-test", help="the key clients must send")
    parser.add_argument(
        "--step-seconds", type=float, default=2.0, help="seconds per lifecycle step (default 2)"
    )
    parser.add_argument(
        "--poll-granularity",
        type=float,
        default=0.0,
        help="aggregator: how stale the fetch view may be, in seconds (new-api polls every 15)",
    )
    parser.add_argument("--image-px", type=int, default=512, help="final image size in pixels")
    parser.add_argument(
        "--server-address",
        default=None,
        help="aggregator: new-api's ServerAddress, the root of /mj/image/<id> links",
    )
    parser.add_argument(
        "--link-ttl",
        type=float,
        default=None,
        help="image links expire after this many seconds (Discord's signed links do)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    sim = MjProxySimulator(
        profile=args.profile,
        api_key=args.api_key,
        step_seconds=args.step_seconds,
        poll_granularity=args.poll_granularity,
        image_px=args.image_px,
        server_address=args.server_address,
    )
    sim.faults.link_ttl_seconds = args.link_ttl
    await sim.start(host=args.host, port=args.port)
    # The URL alone on stdout, so a script can read it; the rest goes to stderr.
    print(sim.base_url, flush=True)
    print(f"profile {sim.profile}, key {args.api_key!r}; Ctrl-C to stop", file=sys.stderr)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
