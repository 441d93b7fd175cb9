"""``swapwizard serve WS``: the live run in a browser, for the workspace's owner only (see tui/web/server.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Optional
from urllib.parse import urlsplit

import typer

from engine.errors import UserError
from tui.cli.app import app
from tui.cli.common import err, fail, open_workspace, out


@app.command("serve")
def serve(
    workspace: str = typer.Argument(..., help="Workspace folder."),
    port: Optional[int] = typer.Option(None, "--port", help="Serve on this TCP port (0: a free one) of 127.0.0.1, "
                                       "with a random token in the URL, instead of the Unix socket."),
    host: Optional[str] = typer.Option(None, "--host", help="With --port: listen on this address instead of "
                                       "127.0.0.1 (e.g. 0.0.0.0: every network; the token is still required)."),
    no_engine: bool = typer.Option(False, "--no-engine", help="Do not start the engine when it is not running "
                                   "(the page shows the saved history and waits for one)."),
) -> None:
    """A read-only dashboard of the run (progress, loss curve, full-resolution previews), live, in a browser.

    By default on the Unix socket WS/.swapwizard/run/web.sock (only you can open it); reach it from your
    laptop with: ssh -L 8080:/abs/path/WS/.swapwizard/run/web.sock server, then open http://localhost:8080/
    """
    ws = open_workspace(workspace)
    from tui.web import server

    async def main() -> None:
        runner, where, _ = await server.start(ws, port=port, host=host, start_engine=not no_engine)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        if port is None:
            out.print(f"Serving {ws.root} on the Unix socket {where} (mode 0600: only you can connect).")
            out.print(f"From your laptop: ssh -L 8080:{where} {os.uname().nodename}")
            out.print("then open http://localhost:8080/   (Ctrl-C stops serving)")
        else:
            if host and host not in ("127.0.0.1", "localhost", "::1"):
                err.print(f"warning: listening on {host}: anyone who can reach it and has the token can watch the run.")
            out.print(f"Open {where}")
            if not host or host in ("127.0.0.1", "localhost", "::1"):  # loopback: reached from a laptop by ssh -L
                bound = urlsplit(where).port
                out.print(f"From your laptop: ssh -L {bound}:127.0.0.1:{bound} {os.uname().nodename}, then open "
                          f"the same URL there (http://localhost:{bound}/?token=...)")
            out.print(f"(the token is also in {server.token_path(ws)}, readable by you only; Ctrl-C stops serving)")
        try:
            await stopped.wait()
        finally:
            await server.stop(ws, runner, unix=port is None)

    try:
        asyncio.run(main())
    except UserError as exc:
        fail(exc.message, exc.hint)
