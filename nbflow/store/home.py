"""The nbflow home: where objects, task manifests, logs and (locally) the catalog live.

Layout (docs/CONTRACTS.md)::

    <home>/catalog.duckdb                                    local homes only
    <home>/objects/ab/cdef0123…                              content-addressed bytes
    <home>/runs/<flow>/<run>/<step>/<index>/manifest.json    completion marker, written last
    <home>/runs/<flow>/<run>/<step>/<index>/notebook.ipynb   the task's executed notebook
    <home>/runs/<flow>/<run>/notebook.ipynb                  the run's executed notebook
    <home>/runs/<flow>/<run>/journal/*.json                  the run's catalog writes (journal.py)

A ``Home`` travels into task kernels as its URL, so building one is cheap: a local
home never imports fsspec, a remote one imports it on first use of ``.fs``.
"""

from __future__ import annotations

import functools
import os
from os import PathLike
from typing import Any

from nbflow.errors import HomeError, StoreError
from nbflow.store._files import write_atomic
from nbflow.store.objects import ObjectStore

DEFAULT_HOME = "./.nbflow"
_LOCAL_SCHEMES = ("", "file", "local")


def _split_scheme(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    return (scheme.lower(), rest) if sep else ("", url)


def _component(value: object, what: str) -> str:
    text = str(value)
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        raise StoreError(f"{what} {text!r} cannot be used as a path component in the home")
    return text


class Home:
    """An nbflow home at ``url`` (default ``$NBFLOW_HOME`` or ``./.nbflow``).

    ``url`` is a local path, ``file://…``, or any fsspec URL (``s3://bucket/prefix``,
    ``memory://name``). ``catalog`` overrides where the DuckDB catalog lives; it is
    always a local file (``<home>/catalog.duckdb`` for a local home, otherwise
    ``./.nbflow/catalog.duckdb``). Paths returned by ``*_prefix`` and ``path`` are
    paths in ``self.fs`` (absolute local paths for a local home).
    """

    def __init__(
        self,
        url: str | PathLike[str] | None = None,
        *,
        catalog: str | PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        fsync: bool = True,
    ) -> None:
        raw = os.fspath(url) if url is not None else os.environ.get("NBFLOW_HOME") or DEFAULT_HOME
        scheme, rest = _split_scheme(raw)
        self.is_local = scheme in _LOCAL_SCHEMES
        self.url = os.path.abspath(os.path.expanduser(rest)) if self.is_local else raw.rstrip("/")
        catalog = catalog if catalog is not None else os.environ.get("NBFLOW_CATALOG") or None
        self._catalog = os.path.abspath(os.fspath(catalog)) if catalog is not None else None
        self.storage_options = dict(storage_options or {})
        self.fsync = fsync

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.url, self._catalog, self.storage_options, self.fsync))

    def __repr__(self) -> str:
        return f"Home({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and (self.url, self.catalog_path) == (
            other.url,
            other.catalog_path,
        )

    def __hash__(self) -> int:
        return hash((self.url, self.catalog_path))

    # -- where things are -------------------------------------------------------

    @functools.cached_property
    def fs(self) -> Any:
        """The fsspec filesystem (local: ``auto_mkdir=True``)."""
        import fsspec

        if self.is_local:
            return fsspec.filesystem("file", auto_mkdir=True)
        fs, _ = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs

    @functools.cached_property
    def root(self) -> str:
        """The home as a path in ``self.fs`` (``bucket/prefix`` on S3)."""
        if self.is_local:
            return self.url
        return str(self.fs._strip_protocol(self.url)).rstrip("/") or "/"

    @functools.cached_property
    def objects(self) -> ObjectStore:
        root = self.path("objects")
        return ObjectStore(root, None if self.is_local else self.fs, fsync=self.fsync)

    @property
    def catalog_path(self) -> str:
        """The catalog's local file: ``--catalog``, else in a local home, else ``./.nbflow``."""
        if self._catalog is not None:
            return self._catalog
        base = self.url if self.is_local else os.path.abspath(DEFAULT_HOME)
        return os.path.join(base, "catalog.duckdb")

    def path(self, *parts: str) -> str:
        """``root/part/part…`` in ``self.fs``."""
        return "/".join([self.root.rstrip("/"), *parts]) if parts else self.root

    def run_prefix(self, flow: str, run: int | str) -> str:
        return self.path("runs", _component(flow, "flow"), _component(run, "run"))

    def task_prefix(self, flow: str, run: int | str, step: str, index: int | str) -> str:
        return "/".join(
            [self.run_prefix(flow, run), _component(step, "step"), _component(index, "task index")]
        )

    def url_of(self, path: str) -> str:
        """A URL another process can open (a local path stays a path)."""
        return path if self.is_local else str(self.fs.unstrip_protocol(path))

    # -- is it usable ---------------------------------------------------------------

    def require(self) -> Home:
        """For readers: the home must exist (reading never creates one)."""
        if not self.is_local:
            return self
        if not os.path.exists(self.url):
            raise HomeError(f"no nbflow home at {self.url} (set --home or NBFLOW_HOME)",
                            hint="run `nbflow execute NOTEBOOK` to create one", path=self.url)
        if not os.path.isdir(self.url):
            raise HomeError(f"the nbflow home {self.url} is a file, not a folder",
                            hint="point --home (or NBFLOW_HOME) at a folder", path=self.url)
        return self

    def prepare_for_writing(self) -> Home:
        """For writers: create the home if needed; refuse a file or a read-only folder."""
        if not self.is_local:
            return self
        if os.path.exists(self.url) and not os.path.isdir(self.url):
            raise HomeError(f"the nbflow home {self.url} is a file, not a folder",
                            hint="point --home (or NBFLOW_HOME) at a folder", path=self.url)
        try:
            os.makedirs(os.path.join(self.url, "runs"), exist_ok=True)
            probe = os.path.join(self.url, f".write-probe-{os.getpid()}")
            with open(probe, "wb"):
                pass
            os.remove(probe)
        except OSError as exc:
            raise HomeError(f"the nbflow home {self.url} is not writable: {exc.strerror}",
                            hint="it can still be read (nbflow runs/logs/dump/sql); "
                                 "run with a writable --home", path=self.url) from None
        return self

    # -- small files (manifests, notebooks) ---------------------------------------

    def write_bytes(self, path: str, data: bytes, *, fsync: bool | None = None) -> None:
        """Write ``path`` atomically: readers see the old file or all of the new one.
        ``fsync=False`` skips the flush to disk for files that can be rebuilt."""
        if self.is_local:
            write_atomic(path, data, fsync=self.fsync if fsync is None else fsync)
        else:
            self.fs.pipe_file(path, data)  # one PUT: atomic on object stores

    def write_text(self, path: str, text: str, *, fsync: bool | None = None) -> None:
        self.write_bytes(path, text.encode("utf-8"), fsync=fsync)

    def read_bytes(self, path: str) -> bytes:
        try:
            if self.is_local:
                with open(path, "rb") as f:
                    return f.read()
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise StoreError(f"{path} does not exist in {self.url}", path=path) from None

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def exists(self, path: str) -> bool:
        if self.is_local:
            return os.path.exists(path)
        self.fs.invalidate_cache(path)  # listing caches miss what other processes wrote
        return bool(self.fs.exists(path))


def _restore(url: str, catalog: str | None, storage_options: dict[str, Any], fsync: bool) -> Home:
    return Home(url, catalog=catalog, storage_options=storage_options, fsync=fsync)
