"""`python -m bot`, imported once and forked for every start: the crash harness starts the bot
hundreds of times, and importing it (about 0.7 s of CPU each time) was most of the sweep's
work on a 2-core machine.

A fork is still a process of its own: `bot.__main__.main()` runs in it from the top (settings,
logging, storage, gateway), with its own environment, working directory and log, and SIGKILL
ends it as it ends `python -m bot`. What the fork skips is only the imports (the interpreter's
start and the bot's modules); `random` is reseeded in every fork by Python itself.

The sweep starts its bots this way; the soak does not (test_crash_soak.py says why).

The server (`python -m tests.e2e.forkserver <fd>`) reads one request per packet from a Unix
socket: the JSON {"env", "cwd", "log"} and one file descriptor, the write end of a pipe that the
child keeps open for its whole life; the client sees the pipe's end of file once the child is
gone. The answer is the JSON {"pid"}. The server ends when the socket closes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

MAX_REQUEST = 1 << 20


def _reap(signum: int, frame: object) -> None:
    """Collect every child that has ended (they are the client's to watch, not ours)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _child(request: dict[str, Any], server: socket.socket) -> None:
    import bot.__main__

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    server.close()
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["python -m bot"]
    code = 1
    try:
        code = bot.__main__.main([])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(fd: int) -> None:
    # What `python -m bot` imports before it reads its settings, and the app it then runs.
    import bot.__main__
    import bot.app  # noqa: F401

    server = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        message, fds, _, _ = socket.recv_fds(server, MAX_REQUEST, 1)
        if not message:
            return
        request = json.loads(message)
        (alive,) = fds
        pid = os.fork()
        if pid == 0:
            _child(request, server)
        os.close(alive)
        server.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
