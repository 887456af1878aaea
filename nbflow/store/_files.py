"""Local-file primitives shared by the store: atomic writes and directory fsync.

Imported in task kernels: standard library only.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import BinaryIO


def temp_name(directory: str) -> str:
    """A name no other process or thread will pick, in ``directory`` (same filesystem)."""
    return os.path.join(directory, f".tmp-{os.getpid()}-{uuid.uuid4().hex}")


def fsync_dir(directory: str) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(directory: str, *, fsync: bool) -> None:
    """``os.makedirs`` that, with ``fsync``, also makes the new entries durable."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    if parent and parent != directory:
        makedirs(parent, fsync=fsync)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory)
    if fsync and parent:
        fsync_dir(parent)


@contextlib.contextmanager
def atomic_file(path: str, *, fsync: bool) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary sibling renamed into place on success.

    Readers see either the old file or the complete new one, never a prefix; on
    error the temporary file is removed and nothing appears under ``path``.
    """
    directory = os.path.dirname(path) or "."
    makedirs(directory, fsync=fsync)
    tmp = temp_name(directory)
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_dir(directory)


def write_atomic(path: str, data: bytes, *, fsync: bool) -> None:
    with atomic_file(path, fsync=fsync) as f:
        f.write(data)
