"""The DuckDB catalog of runs, params, tags, tasks and artifacts (nbflow's only duckdb importer).

No connection to the catalog file outlives one operation. Each operation:

1. takes this process's lock for the catalog (threads take turns),
2. takes ``fcntl.flock`` on ``<catalog>.lock`` — exclusive to write, shared to read —
   blocking until it is granted (duckdb 2.0 loses commits between processes without it,
   see shared/CATALOG_NOTES.md),
3. ATTACHes the file to a per-process in-memory DuckDB connection, runs one
   transaction, DETACHes (which checkpoints and closes the file), releases the locks.

Attaching costs ≈1 ms where opening a fresh DuckDB instance costs 15–30 ms; the
in-memory connection holds no file, so other processes are never blocked by it.
Files are created with ``STORAGE_VERSION 'v1.4.0'`` so DuckDB 1.4/1.5 can read them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import duckdb

from nbflow.errors import CatalogError
from nbflow.store import schema
from nbflow.store.events import CatalogEvent, RunFinished, RunRecord, TaskFinished, TaskStarted

STORAGE_VERSION = "v1.4.0"
_ALIAS = "nbflow"
_LOCK_RETRY_S = 120.0  # only for processes that open the file without our flock


def _posix_locks(path: str) -> Any:
    """The ``fcntl`` module, or a clear error where the OS has no POSIX file locks."""
    try:
        import fcntl
    except ImportError:
        raise CatalogError(
            f"cannot lock the catalog {path}: this system ({sys.platform}) has no POSIX file "
            "locks (fcntl), which nbflow needs to share a catalog between processes safely",
            hint="run nbflow on Linux or macOS (on Windows, inside WSL)", catalog=path,
        ) from None
    return fcntl


# -- per-process state: one in-memory connection and one lock per catalog file ----------------


class _Shared:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.schema_ok = False

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = duckdb.connect(":memory:")
        return self.con

    def discard(self) -> None:
        con, self.con = self.con, None
        if con is not None:
            with contextlib.suppress(duckdb.Error):
                con.close()


_SHARED: dict[str, _Shared] = {}
_GUARD = threading.Lock()


def _reset_after_fork() -> None:
    global _GUARD
    _GUARD = threading.Lock()
    _SHARED.clear()  # the parent's connections and locks are not ours to use


os.register_at_fork(after_in_child=_reset_after_fork)


def _shared(path: str) -> _Shared:
    with _GUARD:
        return _SHARED.setdefault(path, _Shared())


# -- value conversion ---------------------------------------------------------------


def _ts(epoch: float | None) -> dt.datetime | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(tzinfo=None)


def _json_default(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def _json(value: Any) -> str:
    """Valid JSON for any value: non-JSON parts become their repr (NaN too)."""
    try:
        return json.dumps(value, allow_nan=False, default=_json_default)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(repr(value))


def _json_or_null(value: Any) -> str | None:
    return None if value is None else _json(value)


# -- the catalog ------------------------------------------------------------------------


class Catalog:
    """The catalog at ``path`` (a local file). Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.realpath(os.fspath(path))
        self.lock_path = self.path + ".lock"

    def __repr__(self) -> str:
        return f"Catalog({self.path!r})"

    # -- writing ----------------------------------------------------------------------

    def new_run(self, run: RunRecord) -> int:
        """Allocate the flow's next run id and record the run, its params and tags."""
        with self._transaction(write=True) as con:
            row = con.execute(
                "SELECT coalesce(max(run_id), 0) + 1 FROM runs WHERE flow = ?", [run.flow]
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
            con.execute(
                """INSERT INTO runs (flow, run_id, notebook_path, notebook_hash, git_commit,
                    git_dirty, "user", host, python, packages, started_at, status, driver_pid,
                    driver_host, origin_run)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [run.flow, run_id, run.notebook_path, run.notebook_hash, run.git_commit,
                 run.git_dirty, run.user, run.host, run.python, _json(run.packages),
                 _ts(run.started_at if run.started_at is not None else time.time()),
                 run.status, run.driver_pid, run.driver_host, run.origin_run],
            )
            params = [
                [run.flow, run_id, name, _json(value),
                 run.param_types.get(name) or type(value).__name__]
                for name, value in run.params.items()
            ]
            if params:
                con.executemany("INSERT INTO params VALUES (?, ?, ?, ?, ?)", params)
            tags = [[run.flow, run_id, tag] for tag in dict.fromkeys(run.tags)]
            if tags:
                con.executemany("INSERT INTO tags VALUES (?, ?, ?)", tags)
            steps = [
                [run.flow, run_id, s["step"], s["kind"], s.get("cell"), s.get("foreach"),
                 s.get("as_var"), _json(s.get("parents", [])), _json(s.get("inputs", [])),
                 _json(s.get("outputs", []))]
                for s in run.steps
            ]
            if steps:
                con.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", steps)
        return run_id

    def apply(self, events: Sequence[CatalogEvent]) -> None:
        """Record a batch of events in one transaction (all or nothing)."""
        if not events:
            return
        with self._transaction(write=True) as con:
            for event in events:
                if isinstance(event, TaskStarted):
                    _task_started(con, event)
                elif isinstance(event, TaskFinished):
                    _task_finished(con, event)
                elif isinstance(event, RunFinished):
                    _run_finished(con, event)
                else:
                    raise CatalogError(f"not a catalog event: {event!r}")

    def apply_sql(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run a few parameterized writes as one transaction (repairs, not run events)."""
        with self._transaction(write=True) as con:
            for sql, params in statements:
                con.execute(sql, params)

    # -- reading ----------------------------------------------------------------------

    def query(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        tables: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a read-only query; a pandas DataFrame. ``tables`` registers Arrow tables
        or DataFrames under the given names for the query (e.g. loaded artifacts)."""
        with self._transaction(write=False) as con, _registered(con, tables):
            return _run(con, sql, params).df()

    def execute_read(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query; rows as tuples (no pandas)."""
        with self._transaction(write=False) as con:
            return _run(con, sql, params).fetchall()

    def schema_version(self) -> int:
        return int(self.execute_read("SELECT max(version) FROM schema_version")[0][0])

    # -- sessions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        self._ensure_schema()
        with self._attached(write=write) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                raise CatalogError(f"commit to the catalog {self.path} failed: {exc}") from exc

    @contextlib.contextmanager
    def _attached(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        shared = _shared(self.path)
        with shared.lock, self._flock(exclusive=write):
            con = shared.connection()
            self._attach(con, write=write)
            try:
                yield con
            except duckdb.Error as exc:
                raise CatalogError(str(exc), catalog=self.path) from exc
            finally:
                try:
                    con.execute("USE memory")
                    con.execute(f"DETACH {_ALIAS}")
                except duckdb.Error:
                    shared.discard()  # never leave the file attached

    @contextlib.contextmanager
    def _flock(self, *, exclusive: bool) -> Iterator[None]:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fcntl = _posix_locks(self.path)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _attach(self, con: duckdb.DuckDBPyConnection, *, write: bool) -> None:
        path = self.path.replace("'", "''")
        options = f"STORAGE_VERSION '{STORAGE_VERSION}'" if write else "READ_ONLY"
        deadline = time.monotonic() + _LOCK_RETRY_S
        delay = 0.005
        while True:
            try:
                con.execute(f"ATTACH '{path}' AS {_ALIAS} ({options})")
                con.execute(f"USE {_ALIAS}")
                return
            except duckdb.IOException as exc:
                # Only a process that ignores our flock (a user's own duckdb) gets here.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise CatalogError(
                        f"cannot open the catalog {self.path}: {exc}",
                        hint="another program holds the DuckDB file open; close it",
                        catalog=self.path,
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    # -- schema -----------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        shared = _shared(self.path)
        if shared.schema_ok:
            return
        if os.path.exists(self.path):
            with self._attached(write=False) as con:
                version = _version(con)
            if version == schema.SCHEMA_VERSION:
                shared.schema_ok = True
                return
        self._migrate()
        shared.schema_ok = True

    def _migrate(self) -> None:
        """Bring the catalog to ``schema.SCHEMA_VERSION``, one migration per transaction."""
        with self._attached(write=True) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
            )
            version = _version(con)
            if version > schema.SCHEMA_VERSION:
                raise CatalogError(
                    f"the catalog {self.path} has schema version {version}, newer than this "
                    f"nbflow understands ({schema.SCHEMA_VERSION})",
                    hint="upgrade nbflow",
                )
            for number in range(version + 1, schema.SCHEMA_VERSION + 1):
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(schema.MIGRATIONS[number - 1])
                    con.execute(
                        "INSERT INTO schema_version VALUES (?, ?)", [number, _ts(time.time())]
                    )
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    raise


def _version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [_ALIAS, "schema_version"],
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | Mapping[str, Any] | None
) -> duckdb.DuckDBPyConnection:
    return con.execute(sql, params) if params else con.execute(sql)


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Any] | None) -> Iterator[None]:
    names = list(tables or {})
    for name in names:
        con.register(name, tables[name])  # type: ignore[index]
    try:
        yield
    finally:
        for name in names:
            con.unregister(name)


def query_tables(
    sql: str, tables: Mapping[str, Any], params: Sequence[Any] | None = None
) -> Any:
    """Query Arrow tables / DataFrames (no catalog involved); a pandas DataFrame."""
    con = duckdb.connect(":memory:")
    try:
        with _registered(con, tables):
            return _run(con, sql, params).df()
    finally:
        con.close()


# -- event handlers ---------------------------------------------------------------------


def _task_started(con: duckdb.DuckDBPyConnection, e: TaskStarted) -> None:
    con.execute(
        """INSERT INTO tasks (flow, run_id, step, task_index, foreach_element, status, attempt,
               pid, started_at, kernel_mode, queued_at)
           VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
           ON CONFLICT (flow, run_id, step, task_index) DO UPDATE SET
               foreach_element = excluded.foreach_element, status = 'running',
               attempt = excluded.attempt, pid = excluded.pid, started_at = excluded.started_at,
               kernel_mode = excluded.kernel_mode, ended_at = NULL, duration_s = NULL,
               error = NULL, queued_at = coalesce(excluded.queued_at, queued_at)""",
        [e.flow, e.run_id, e.step, e.index, _json_or_null(e.foreach_element), e.attempt, e.pid,
         _ts(e.started_at), e.kernel_mode, _ts(e.queued_at)],
    )


def _task_finished(con: duckdb.DuckDBPyConnection, e: TaskFinished) -> None:
    key = [e.flow, e.run_id, e.step, e.index]
    con.execute(
        """INSERT INTO tasks (flow, run_id, step, task_index, status, attempt, started_at,
               ended_at, duration_s, peak_memory, error, cache_key, cached_from, python,
               packages, foreach_element, cache_parts, queued_at)
           VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (flow, run_id, step, task_index) DO UPDATE SET
               status = excluded.status, started_at = coalesce(started_at, excluded.started_at),
               foreach_element = coalesce(excluded.foreach_element, foreach_element),
               ended_at = excluded.ended_at, duration_s = excluded.duration_s,
               peak_memory = excluded.peak_memory, error = excluded.error,
               cache_key = excluded.cache_key, cached_from = excluded.cached_from,
               python = excluded.python, packages = excluded.packages,
               cache_parts = excluded.cache_parts,
               queued_at = coalesce(queued_at, excluded.queued_at)""",
        [*key, e.status, _ts(e.started_at), _ts(e.ended_at), e.duration_s, e.peak_memory,
         e.error, e.cache_key, e.cached_from, e.python, _json(e.packages),
         _json_or_null(e.foreach_element), _json_or_null(e.cache_parts), _ts(e.queued_at)],
    )
    con.execute(
        "DELETE FROM artifacts WHERE flow = ? AND run_id = ? AND step = ? AND task_index = ?",
        key,
    )
    rows = [
        [*key, a.name, a.type, a.hash, a.size, a.format, a.repr, _json_or_null(a.shape),
         _json_or_null(a.schema), a.metric, a.persisted, a.reason]
        for a in e.artifacts
    ]
    if rows:
        con.executemany(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    con.execute(
        "DELETE FROM lineage WHERE flow = ? AND run_id = ? AND step = ? AND task_index = ?", key)
    read = lineage_rows(e.flow, e.run_id, e.step, e.index, e.lineage)
    if read:
        con.executemany("INSERT INTO lineage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", read)


def lineage_rows(flow: str, run_id: int, step: str, index: int,
                 lineage: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The ``lineage`` rows of one reading task, from its manifest's ``lineage`` list."""
    return [[flow, run_id, step, index, e.get("kind"), e.get("flow"), e.get("run"),
             e.get("step"), e.get("index"), e.get("name"), e.get("hash"), e.get("via")]
            for e in lineage]


def _run_finished(con: duckdb.DuckDBPyConnection, e: RunFinished) -> None:
    row = con.execute(
        "UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE flow = ? AND run_id = ?",
        [e.status, _ts(e.ended_at if e.ended_at is not None else time.time()), e.error,
         e.flow, e.run_id],
    ).fetchone()
    if not row or not row[0]:
        raise CatalogError(f"run {e.flow}/{e.run_id} is not in the catalog")
