"""Length-prefixed JSON frames between a launcher and its fork server.

Both ends are plain sockets (a ``socketpair``); a frame is a 4-byte big-endian length
followed by UTF-8 JSON. Kept dependency-free because the fork server imports it
before anything else.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

PROTOCOL_VERSION = 1
_HEADER = struct.Struct(">I")


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one message; the caller serialises concurrent senders (one lock per socket)."""
    payload = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(payload)) + payload)


class FrameReader:
    """Accumulates bytes from a stream socket and yields whole messages."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def read_available(self) -> list[dict[str, Any]] | None:
        """Read once (the socket is readable) and return complete frames; ``None`` on EOF."""
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            return None
        self._buffer += chunk
        messages: list[dict[str, Any]] = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(json.loads(bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return messages


# NBFLOW_PROFILE_TASK=DIR: every direct-engine task child profiles itself with cProfile,
# from just after the fork to the end of its last cell, and writes DIR/STEP-PID.prof (for
# pstats, snakeviz, ...) and DIR/STEP-PID.txt (its wall time, then the top 20 entries by
# cumulative and by own time). For measuring nbflow, not for production runs: the child
# writes both before it exits. The driver side names the file after the task's step.
PROFILE_ENV = "NBFLOW_PROFILE_TASK"
PROFILE_LABEL_ENV = "NBFLOW_PROFILE_LABEL"
