"""Run a workspace's engine: ``python -m engine serve WORKSPACE`` (foreground).

The CLI (``swapwizard engine start WS``) and the wizard start it detached; this entry point is what
they run, and what a user can run under a process supervisor (systemd, tmux) instead.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.errors import UserError
from engine.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the engine of a workspace in the foreground")
    serve_parser.add_argument("workspace")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        ws = Workspace.open(args.workspace)
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    from engine.server import serve

    return serve(ws)


if __name__ == "__main__":
    sys.exit(main())
