"""Where a workspace's engine socket lives, and how to reach it when its path is too long.

A Unix socket address holds about 107 bytes. A workspace deep in a file system still works: the
socket stays in the workspace's owner-only ``.swapwizard/run/`` folder, and a too-long path is
reached through ``/proc/self/fd/N/engine.sock`` with N an open handle on that folder (Linux), which
is short whatever the folder's depth.

Both ends check who is on the other side (``SO_PEERCRED``): a client talks only to an engine run by
its own user, and the engine answers only its own user's clients, whatever the file modes say.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

#: sun_path is 108 bytes on Linux including the terminating NUL.
MAX_SOCKET_PATH = 107
#: Connections the kernel holds for the engine before it accepts them (capped by net.core.somaxconn).
LISTEN_BACKLOG = 1024


class ForeignPeer(PermissionError):
    """The other end of the socket runs as another user."""

    def __init__(self, uid: int) -> None:
        super().__init__(f"the socket's peer runs as uid {uid}")
        self.uid = uid


def peer(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a connected Unix socket (Linux SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)


def check_peer(sock: socket.socket) -> None:
    """Raise ``ForeignPeer`` unless the peer runs as this process's user."""
    uid = peer(sock)[1]
    if uid != os.geteuid():
        raise ForeignPeer(uid)


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
    """A connection to the socket at ``path``; ``ForeignPeer`` if another user serves it.

    The connect itself blocks (for at most ``timeout``) while the listener's accept queue is full, so
    the kernel wakes this client as soon as there is room, instead of it failing with EAGAIN at once
    and polling against whatever else is connecting.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if timeout is not None:
            whole = int(timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                            struct.pack("ll", whole, int((timeout - whole) * 1_000_000)))
        with short_path(path) as address:
            sock.connect(address)
        check_peer(sock)
        if timeout is not None:
            sock.settimeout(timeout)
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
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock
