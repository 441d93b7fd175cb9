"""Dispatch ``python -m engine.bench NAME ARGS...`` to ``engine.bench.NAME.main(ARGS)``."""

from __future__ import annotations

import importlib
import sys

from engine.errors import UserError

NAMES = ("extract", "train", "merge", "c2pa", "identity", "expression", "segment", "limits", "until")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in NAMES:
        print(f"usage: python -m engine.bench {{{','.join(NAMES)}}} [--json] ...", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"engine.bench.{argv[0]}")
    except ModuleNotFoundError as exc:
        print(f"error: the {argv[0]} benchmark is not available ({exc}).", file=sys.stderr)
        return 2
    try:
        return int(module.main(argv[1:]) or 0)
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
