"""Content-addressed bytes: ``objects/ab/cdef…`` named by the xxh3-128 hash of the bytes.

An object appears under its final name only once it is complete (written to a
unique temporary file, then renamed; on object stores, uploaded in one put), and
identical bytes are stored once. Imported in task kernels: no heavy imports at
module level (fsspec only arrives with a remote filesystem object).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable
from typing import Any, BinaryIO

import xxhash

from nbflow.errors import StoreError
from nbflow.ids import ObjectHash
from nbflow.store._files import fsync_dir, makedirs, temp_name

_HASH = re.compile(r"[0-9a-f]{32}\Z")


def hash_bytes(data: bytes | bytearray | memoryview) -> ObjectHash:
    """The object hash of ``data``: ``xxh3_128`` hex digest, 32 characters."""
    return ObjectHash(xxhash.xxh3_128_hexdigest(data))


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts every byte on its way to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        super().__init__()
        self._sink = sink
        self._hash = xxhash.xxh3_128()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        self._hash.update(view)
        self._sink.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._sink.flush()

    def hexdigest(self) -> ObjectHash:
        return ObjectHash(self._hash.hexdigest())


class ObjectStore:
    """Content-addressed objects under ``root``.

    ``fs`` is an fsspec filesystem for a remote root (``s3://``, ``memory://``);
    ``None`` means ``root`` is a local directory, handled with ``os`` directly.

    ``fsync`` (default on) makes each object durable before it gets its final
    name: the catalog's commits are durable, so the objects they point at must be
    too, or a power cut could leave a cached task pointing at truncated bytes.
    It costs about 0.7 ms per object here and bounds large writes at disk speed.
    """

    def __init__(self, root: str, fs: Any = None, *, fsync: bool = True) -> None:
        self.root = root.rstrip("/") or "/"
        self.fs = fs
        self.fsync = fsync

    @property
    def is_local(self) -> bool:
        return self.fs is None

    def __repr__(self) -> str:
        return f"ObjectStore({self.root!r}{', remote' if self.fs is not None else ''})"

    def path(self, hash: str) -> str:
        """Where object ``hash`` lives (a local path, or a path in ``fs``)."""
        if not _HASH.match(hash):
            raise StoreError(f"{hash!r} is not an object hash (32 lowercase hex digits)")
        return f"{self.root}/{hash[:2]}/{hash[2:]}"

    def put_stream(self, write: Callable[[BinaryIO], object]) -> tuple[ObjectHash, int]:
        """Store the bytes ``write(f)`` writes into ``f``; return their hash and size.

        If ``write`` raises, nothing is stored and the exception propagates.
        """
        if self.fs is None:
            return self._put_local(write)
        return self._put_remote(write)

    def put_bytes(self, data: bytes | bytearray | memoryview) -> tuple[ObjectHash, int]:
        hash = hash_bytes(data)
        size = memoryview(data).nbytes
        if self.exists(hash):
            return hash, size
        return self.put_stream(lambda f: f.write(data))

    def exists(self, hash: str) -> bool:
        if self.fs is None:
            return os.path.exists(self.path(hash))
        path = self.path(hash)
        self.fs.invalidate_cache(path)  # another process may have written it: ask the store
        return bool(self.fs.exists(path))

    def open(self, hash: str) -> BinaryIO:
        """Open object ``hash`` for reading; ``StoreError`` if it is not stored."""
        path = self.path(hash)
        try:
            if self.fs is None:
                return open(path, "rb")
            return self.fs.open(path, "rb")
        except FileNotFoundError:
            raise StoreError(
                f"object {hash} is missing from {self.root}",
                hint="the store was pruned or the home is not the one that wrote this run",
                hash=hash,
            ) from None

    def read_bytes(self, hash: str) -> bytes:
        if self.fs is not None:  # one ranged GET per chunk, not a buffered file's reads
            try:
                return bytes(self.fs.cat_file(self.path(hash)))
            except FileNotFoundError:
                self.open(hash)  # raises the StoreError naming the object
        with self.open(hash) as f:
            return f.read()

    def local_path(self, hash: str) -> str | None:
        """The object's local file path (to memory-map it), or ``None`` for a remote store."""
        return self.path(hash) if self.fs is None else None

    # -- writing ---------------------------------------------------------------

    def _put_local(self, write: Callable[[BinaryIO], object]) -> tuple[ObjectHash, int]:
        # The first SPOOL_BYTES stay in memory: an object that small and already stored
        # (a cached re-run's foreach elements, a task's unchanged artifact) costs no
        # temporary file and no fsync. Larger ones stream into the temporary file.
        tmp_dir = os.path.join(self.root, ".tmp")
        spool = _Spool(tmp_dir)
        try:
            writer = HashingWriter(spool)  # type: ignore[arg-type]
            write(writer)  # type: ignore[arg-type]
            hash, size = writer.hexdigest(), writer.size
            final = self.path(hash)
            if spool.file is None and _same_size(final, size):
                return hash, size
            f = spool.to_file()
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
            f.close()
            if _same_size(final, size):
                os.unlink(spool.path)
            else:
                makedirs(os.path.dirname(final), fsync=self.fsync)
                os.replace(spool.path, final)  # a racing writer of the same hash wrote the same bytes
                if self.fsync:
                    fsync_dir(os.path.dirname(final))
        except BaseException:
            spool.discard()
            raise
        return hash, size

    def _put_remote(self, write: Callable[[BinaryIO], object]) -> tuple[ObjectHash, int]:
        # Hash in memory, then upload once: an object-store put is atomic (a rename is a
        # copy), and the producer already holds the value in memory anyway.
        buffer = io.BytesIO()
        writer = HashingWriter(buffer)
        write(writer)  # type: ignore[arg-type]
        hash, size = writer.hexdigest(), writer.size
        if not self.exists(hash):
            _put_if_absent(self.fs, buffer.getvalue(), self.path(hash))
        return hash, size


SPOOL_BYTES = 1 << 20


class _Spool:
    """Where ``_put_local`` writes: memory up to ``SPOOL_BYTES``, then a new temporary
    file in ``directory`` (made on demand), which ``to_file`` also forces."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.buffer = bytearray()
        self.file: BinaryIO | None = None
        self.path = ""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        size = memoryview(data).nbytes
        if self.file is None and len(self.buffer) + size <= SPOOL_BYTES:
            self.buffer += data
            return size
        return self.to_file().write(data)

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def to_file(self) -> BinaryIO:
        if self.file is None:
            makedirs(self.directory, fsync=False)
            self.path = temp_name(self.directory)
            self.file = open(self.path, "xb")  # noqa: SIM115 (closed by _put_local)
            self.file.write(self.buffer)
            self.buffer = bytearray()
        return self.file

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _put_if_absent(fs: Any, data: bytes, final: str) -> None:
    """Upload ``data`` to ``final`` unless an object is already there (S3 ``If-None-Match``).
    A racing writer of the same name wrote the same bytes, so losing the race is fine."""
    try:
        if "s3" in _protocols(fs):
            # One PUT (S3 takes up to 5 GB): s3fs would otherwise go multipart from 100 MB,
            # and an exclusive CompleteMultipartUpload is not supported everywhere (moto's
            # server answered 500 for a 400 MB artifact); a single PUT is also faster there.
            fs.pipe_file(final, data, mode="create", chunksize=_SINGLE_PUT_LIMIT)
        else:
            fs.pipe_file(final, data, mode="create")
    except FileExistsError:
        pass
    except TypeError:  # a filesystem without exclusive create: check, then put
        if not fs.exists(final):
            fs.pipe_file(final, data)


_SINGLE_PUT_LIMIT = 5 * 2**30


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = getattr(fs, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _same_size(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except FileNotFoundError:
        return False
