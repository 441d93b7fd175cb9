"""Where a workspace's engine socket lives, and how to reach it when its path is too long.

A Unix socket address holds about 107 bytes. A workspace deep in a file system still works: the
socket stays in the workspace's owner-only ``.swapwizard/run/`` folder, and a too-long path is
reached through ``/proc/self/fd/N/engine.sock`` with N an open handle on that folder (Linux), which
is short whatever the folder's depth.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

#: sun_path is 108 bytes on Linux including the terminating NUL.
MAX_SOCKET_PATH = 107


@contextlib.contextmanager
def short_path(path: Path) -> Iterator[str]:
    """Yield a string for ``path`` short enough for a socket address (valid inside the block)."""
    text = os.fsencode(path)
    if len(text) <= MAX_SOCKET_PATH - 1:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        proxy = f"/proc/self/fd/{fd}/{path.name}"
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(f"socket path too long and /proc is unavailable: {path}")
        yield proxy
    finally:
        os.close(fd)


def connect(path: Path, timeout: float | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if timeout is not None:
        sock.settimeout(timeout)
    try:
        with short_path(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(path: Path) -> socket.socket:
    """A listening socket at ``path``, mode 0600, inside a 0700 folder."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        with short_path(path) as address:
            sock.bind(address)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(64)
    sock.setblocking(False)
    return sock
