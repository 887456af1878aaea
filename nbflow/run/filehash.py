"""Content hashes of the files steps read, with a stat-based fast path.

``<catalog dir>/file-hashes.json`` maps an absolute path to its last seen
``(size, mtime_ns, inode)`` and content hash, so planning a run whose input files did
not change reads no file. A file modified within the last two seconds is hashed
every time (its mtime may not have ticked yet for a write that is still going on).
The map is a cache: losing it, or two drivers overwriting each other's, costs a
re-hash, never a wrong key.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from nbflow.store._files import temp_name

MISSING = "missing"
_RECENT_S = 2.0


class FileHashes:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                with contextlib.suppress(OSError, ValueError):
                    with open(self.path) as f:
                        loaded = json.load(f)
                    if isinstance(loaded, dict):
                        self._entries = loaded
        return self._entries

    def hash(self, path: str) -> str:
        """The file's content hash (a directory: of its files), or ``"missing"``."""
        path = os.path.abspath(path)
        if os.path.isdir(path):
            return self._directory(path)
        try:
            st = os.stat(path)
        except OSError:
            return MISSING
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        entries = self._load()
        known = entries.get(path)
        if known is not None and known[:3] == stamp:
            return str(known[3])
        from nbflow.run.cache import _hash_file

        digest = _hash_file(path)
        if time.time() - st.st_mtime_ns / 1e9 > _RECENT_S:
            entries[path] = [*stamp, digest]
            self._dirty = True
        return digest

    def _directory(self, path: str) -> str:
        import hashlib

        listing = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                listing.append(f"{os.path.relpath(full, path)}\0{self.hash(full)}")
        return "dir:" + hashlib.sha256("\n".join(listing).encode()).hexdigest()[:32]

    def save(self) -> None:
        if not self._dirty or self.path is None or self._entries is None:
            return
        directory = os.path.dirname(self.path)
        with contextlib.suppress(OSError):
            os.makedirs(directory, exist_ok=True)
            tmp = temp_name(directory)
            with open(tmp, "w") as f:
                json.dump(self._entries, f)
            os.replace(tmp, self.path)
            self._dirty = False
