"""swapwizard's engine: the detached per-workspace process that does the heavy work.

Run it with ``python -m engine serve WORKSPACE`` (the CLI and the wizard start it on demand).
This package never imports textual or anything from ``tui``; light modules (protocol, client,
workspace, errors, atomic) import nothing heavy so the TUI can use them.
"""

__version__ = "0.1.0"
