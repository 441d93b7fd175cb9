"""Run a workspace's engine.

``python -m engine serve WS`` runs it in the foreground (what the CLI and the wizard start detached,
and what a process supervisor such as systemd can run); ``python -m engine start|stop|status WS`` do
what ``swapwizard engine start|stop|status WS`` do, without the CLI's dependencies.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import engine_pid, start_engine
from engine.server import serve
from engine.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the engine of a workspace in the foreground"),
                       ("start", "start the engine detached, unless it runs"),
                       ("stop", "stop the engine (its job is cancelled cleanly first)"),
                       ("status", "print the engine's status as JSON")):
        sub.add_parser(name, help=text).add_argument("workspace")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        ws = Workspace.open(args.workspace)
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(ws)
    return _control(ws, args.command)


def _control(ws: Workspace, command: str) -> int:
    try:
        if command == "start":
            pid, started = start_engine(ws)
            print(f"engine {'started' if started else 'already running'} (pid {pid})")
        elif command == "stop":
            pid = engine_pid(ws)
            if pid is not None:
                with EngineClient(ws) as client:
                    client.shutdown()
                while engine_pid(ws) is not None:
                    time.sleep(0.1)
            print("engine stopped")
        else:
            status = {"engine_running": False, "pid": None}
            if engine_pid(ws) is not None:
                with EngineClient(ws) as client:
                    status = {"engine_running": True, **client.status()}
            print(json.dumps(status, indent=2, default=str))
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
