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
import dataclasses
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
else:
    try:
        # duckdb 2 ships its engine as the module ``_duckdb``: ``duckdb.connect`` is
        # ``_duckdb.connect`` and the errors are its classes. The ``duckdb`` package on top
        # adds a Python relational API whose import costs ≈110 ms of CPU, most of a fully
        # cached re-run's. SQL on the catalog needs only the engine; scanning Python
        # objects (Arrow tables, DataFrames: ``_registered``) needs the package.
        import _duckdb as duckdb
    except ImportError:  # duckdb 1.x: the package is the only way in
        import duckdb

from nbflow.errors import CatalogError, QueryError
from nbflow.store import schema
from nbflow.store.events import CatalogEvent, RunFinished, RunRecord, TaskFinished, TaskStarted
from nbflow.store.home import Home

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


CRASH_ERROR = "the nbflow process running it died"
# The runs still recorded 'running', with what tells whether their driver died
# (``nbflow.store.crashed.crashed_among``): flow, run_id, host, pid, start, last event.
_RUNNING_RUNS = (
    "SELECT flow, run_id, driver_host, driver_pid, started_at, "
    "(SELECT max(greatest(t.started_at, t.ended_at)) FROM nbflow.main.tasks t "
    " WHERE t.flow = r.flow AND t.run_id = r.run_id) "
    "FROM nbflow.main.runs r WHERE status = 'running'")
_CRASHED_VIEWS = f"""
CREATE OR REPLACE TEMP VIEW runs AS
    SELECT r.* REPLACE (
        CASE WHEN c.flow IS NULL THEN r.status ELSE 'crashed' END AS status,
        CASE WHEN c.flow IS NULL THEN r.ended_at ELSE coalesce(r.ended_at, c.ended_at)
            END AS ended_at,
        CASE WHEN c.flow IS NULL THEN r.error ELSE coalesce(r.error, '{CRASH_ERROR}')
            END AS error)
    FROM nbflow.main.runs r LEFT JOIN temp._nbflow_crashed c USING (flow, run_id);
CREATE OR REPLACE TEMP VIEW tasks AS
    SELECT t.* REPLACE (
        CASE WHEN c.flow IS NOT NULL AND t.status IN ('running', 'pending') THEN 'failed'
            ELSE t.status END AS status,
        CASE WHEN c.flow IS NOT NULL AND t.status IN ('running', 'pending')
            THEN coalesce(t.error, '{CRASH_ERROR}') ELSE t.error END AS error)
    FROM nbflow.main.tasks t LEFT JOIN temp._nbflow_crashed c USING (flow, run_id);
"""


# -- value conversion ---------------------------------------------------------------


def _ts(epoch: float | None) -> dt.datetime | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


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
    """The catalog at ``path`` (a local file). Safe across threads and processes.

    With ``home``, every write is first stored in the run's journal there (the truth
    ``nbflow catalog rebuild`` replays), and reads show a run whose driver died as
    ``crashed``, ended at its last heartbeat, without writing anything.
    Reading never creates the catalog, its folder or its lock file.
    """

    def __init__(self, path: str | os.PathLike[str], home: Home | None = None) -> None:
        self.path = os.path.realpath(os.fspath(path))
        self.lock_path = self.path + ".lock"
        self.home = home

    def __repr__(self) -> str:
        return f"Catalog({self.path!r})"

    # -- writing ----------------------------------------------------------------------

    def new_run(self, run: RunRecord, *, run_id: int | None = None) -> int:
        """Allocate the flow's next run id (or take ``run_id``, when rebuilding) and record
        the run, its params and tags."""
        if run.started_at is None:
            run = dataclasses.replace(run, started_at=time.time())
        with self._transaction(write=True) as con:
            return self._insert_run(con, run, run_id)

    def start_run(self, run: RunRecord, *, read: tuple[str, Sequence[Any]] | None = None
                  ) -> StartedRun:
        """What ``nbflow execute`` does before its first task, as ONE transaction (each
        write transaction costs tens of milliseconds, a cached re-run's whole budget):
        create or migrate the catalog if needed, mark this host's runs whose driver died
        as crashed (``nbflow.store.crashed``), record the new run, and run the read-only
        query ``read`` (sql, params) on the tables as they are then."""
        from nbflow.store.crashed import crash_statements, crashed_among

        if run.started_at is None:
            run = dataclasses.replace(run, started_at=time.time())
        with self._transaction(write=True) as con:
            running = con.execute(_RUNNING_RUNS).fetchall()
            crashed = crashed_among(running, self.home)
            for flow, crashed_id, ended in crashed:
                for sql, params in crash_statements(flow, crashed_id, ended):
                    con.execute(sql, params)
            run_id = self._insert_run(con, run, None)
            rows = _run(con, read[0], read[1]).fetchall() if read is not None else []
        return StartedRun(run_id, [(f, r) for f, r, _ in crashed], rows)

    def _insert_run(self, con: duckdb.DuckDBPyConnection, run: RunRecord,
                    run_id: int | None) -> int:
        if run_id is None:
            row = con.execute(
                "SELECT coalesce(max(run_id), 0) + 1 FROM runs WHERE flow = ?", [run.flow]
            ).fetchone()
            assert row is not None
            run_id = int(row[0])
        if self.home is not None:
            from nbflow.store.journal import record_new_run

            record_new_run(self.home, run, run_id)
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
        _insert_rows(con, "params", params, 5)
        _insert_rows(con, "tags", [[run.flow, run_id, tag] for tag in dict.fromkeys(run.tags)], 3)
        steps = [
            [run.flow, run_id, s["step"], s["kind"], s.get("cell"), s.get("foreach"),
             s.get("as_var"), _json(s.get("parents", [])), _json(s.get("inputs", [])),
             _json(s.get("outputs", []))]
            for s in run.steps
        ]
        _insert_rows(con, "steps", steps, 10)
        return run_id

    def apply(self, events: Sequence[CatalogEvent]) -> None:
        """Record a batch of events in one transaction (all or nothing)."""
        if not events:
            return
        events = [dataclasses.replace(e, ended_at=time.time())
                  if isinstance(e, RunFinished) and e.ended_at is None else e for e in events]
        with self._transaction(write=True) as con:
            if self.home is not None:
                from nbflow.store.journal import record_events

                record_events(self.home, list(events))
            for kind, group in _bulk_groups(events):
                if kind is TaskStarted:
                    _tasks_started(con, group)
                elif kind is TaskFinished:
                    _tasks_finished(con, group)
                else:
                    _run_finished(con, group[0])

    def apply_sql(self, statements: Sequence[tuple[str, Sequence[Any]]], *,
                  run: tuple[str, int] | None = None) -> None:
        """Run a few parameterized writes as one transaction (repairs, not run events).
        With ``run`` (flow, run id) they are journaled with that run and rebuilt with it."""
        with self._transaction(write=True) as con:
            if run is not None and self.home is not None:
                from nbflow.store.journal import record_sql

                record_sql(self.home, run[0], run[1], list(statements))
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
        with self._transaction(write=False) as con, _registered(con, tables), \
                self._live_status(con):
            return _run(con, sql, params).df()

    def execute_read(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query; rows as tuples (no pandas)."""
        with self._transaction(write=False) as con, self._live_status(con):
            return _run(con, sql, params).fetchall()

    def create(self) -> Catalog:
        """For writers: create the catalog (or migrate it) if needed, before the first read."""
        self._ensure_schema(write=True)
        return self

    def schema_version(self) -> int:
        return int(self.execute_read("SELECT max(version) FROM schema_version")[0][0])

    # -- rebuilding -------------------------------------------------------------------

    def replace_with(self, new_path: str) -> None:
        """Swap the finished catalog file ``new_path`` in for this one, atomically: a
        reader sees the old file or the new one, never a mix."""
        shared = _shared(self.path)
        with shared.lock, self._flock(exclusive=True):
            os.replace(new_path, self.path)
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + ".wal")  # belonged to the old file
            with contextlib.suppress(FileNotFoundError):
                os.remove(new_path + ".lock")
            shared.discard()
            shared.schema_ok = False

    def differences(self, other_path: str) -> list[TableDiff]:
        """Row by row, every table of the catalog at ``other_path`` against this one (as a
        reader sees it: a dead driver's run is crashed)."""
        self._ensure_schema(write=False)
        other = os.path.realpath(other_path).replace("'", "''")
        diffs = []
        with self._attached(write=False) as con:
            con.execute(f"ATTACH '{other}' AS rebuilt (READ_ONLY)")
            try:
                with self._live_status(con):
                    for table in _tables(con, "rebuilt"):
                        diff = _table_diff(con, table)
                        if diff.only_catalog or diff.only_rebuilt:
                            diffs.append(diff)
            finally:
                con.execute("DETACH rebuilt")
        return diffs

    @contextlib.contextmanager
    def _live_status(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Within one read, views ``runs`` and ``tasks`` show a run whose driver died as
        ``crashed`` (its unfinished tasks ``failed``), as the next writer will record it."""
        from nbflow.store.crashed import crashed_among

        rows = con.execute(_RUNNING_RUNS).fetchall()
        crashed = crashed_among(rows, self.home)
        if not crashed:
            yield
            return
        con.execute("CREATE OR REPLACE TEMP TABLE _nbflow_crashed "
                    "(flow VARCHAR, run_id INTEGER, ended_at TIMESTAMP)")
        con.executemany("INSERT INTO temp._nbflow_crashed VALUES (?, ?, ?)",
                        [[f, r, _ts(t)] for f, r, t in crashed])
        con.execute(_CRASHED_VIEWS)
        try:
            yield
        finally:
            con.execute("DROP VIEW IF EXISTS temp.main.runs; DROP VIEW IF EXISTS temp.main.tasks;"
                        "DROP TABLE IF EXISTS temp._nbflow_crashed")

    # -- sessions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with _ctrl_c_stays_ctrl_c():
            yield from self._transaction_body(write=write)

    def _transaction_body(self, *, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        shared = _shared(self.path)
        if not write and not shared.schema_ok and not os.path.exists(self.path):
            self._ensure_schema(write=False)  # raises: no catalog here
        with self._attached(write=write) as con:
            if not shared.schema_ok:  # checked (or migrated) in this same attach
                if write:
                    self._migrate_on(con)
                    shared.schema_ok = True
                else:
                    shared.schema_ok = self._readable(_version(con))
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
            try:
                self._attach(con, write=write)
            except BaseException:  # e.g. interrupted half-way: start afresh next time
                shared.discard()
                raise
            try:
                yield con
            except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException,
                    duckdb.ConversionException, duckdb.InvalidInputException) as exc:
                raise QueryError(str(exc).strip(), catalog=self.path,
                                 hint="tables: runs, tasks, steps, artifacts, params, metrics, "
                                      "tags") from exc
            except (duckdb.IOException, duckdb.SerializationException,
                    duckdb.InternalException, duckdb.FatalException) as exc:
                shared.discard()
                raise self._damaged(exc) from exc
            except duckdb.Error as exc:
                if "corrupt" in str(exc).lower() or "checksum" in str(exc).lower():
                    shared.discard()
                    raise self._damaged(exc) from exc
                raise CatalogError(str(exc), catalog=self.path) from exc
            finally:
                try:
                    con.execute("USE memory")
                    con.execute(f"DETACH {_ALIAS}")
                except (duckdb.Error, RuntimeError) as exc:
                    shared.discard()  # never leave the file attached
                    if _interrupted(exc):
                        raise KeyboardInterrupt from None

    @contextlib.contextmanager
    def _flock(self, *, exclusive: bool) -> Iterator[None]:
        if exclusive:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fcntl = _posix_locks(self.path)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        else:
            fcntl = _posix_locks(self.path)
            try:
                fd = os.open(self.lock_path, os.O_RDONLY)
            except OSError:  # no writer has used this catalog through nbflow: none to wait for
                yield
                return
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
                if "lock" not in str(exc).lower():
                    raise self._damaged(exc) from exc
                if time.monotonic() > deadline:
                    raise CatalogError(
                        f"cannot open the catalog {self.path}: {exc}",
                        hint="another program holds the DuckDB file open; close it",
                        catalog=self.path,
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except duckdb.Error as exc:
                _shared(self.path).discard()  # a failed attach may invalidate the connection
                raise self._damaged(exc) from exc

    def _damaged(self, exc: BaseException) -> CatalogError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return CatalogError(
            f"the catalog {self.path} is damaged or unreadable: {first}",
            hint="recreate it from the runs' journals and manifests with "
                 f"`nbflow catalog rebuild --home {os.path.dirname(self.path)}`"
                 if self.home is None else
                 f"recreate it from the runs' journals and manifests with "
                 f"`nbflow catalog rebuild --home {self.home.url}`",
            catalog=self.path,
        )

    # -- schema -----------------------------------------------------------------------

    def _ensure_schema(self, *, write: bool = True) -> None:
        shared = _shared(self.path)
        if shared.schema_ok:
            return
        if os.path.exists(self.path):
            with self._attached(write=False) as con:
                version = _version(con)
            if version == schema.SCHEMA_VERSION:
                shared.schema_ok = True
                return
            if not write and not self._readable(version):
                return  # a reader reads an older schema as it is; the next writer migrates
        elif not write:
            raise CatalogError(
                f"no catalog at {self.path}",
                hint="nothing has run with this home yet; `nbflow catalog rebuild` recreates "
                     "a lost catalog from the runs' journals",
                catalog=self.path,
            )
        self._migrate()
        shared.schema_ok = True

    def _readable(self, version: int) -> bool:
        """For a reader: True if ``version`` is current, False if older (read as it is,
        the next writer migrates); a newer one is an error."""
        if version > schema.SCHEMA_VERSION:
            raise self._too_new(version)
        return version == schema.SCHEMA_VERSION

    def _too_new(self, version: int) -> CatalogError:
        return CatalogError(
            f"the catalog {self.path} has schema version {version}, newer than this "
            f"nbflow understands ({schema.SCHEMA_VERSION})",
            hint="upgrade nbflow",
        )

    def _migrate(self) -> None:
        """Bring the catalog to ``schema.SCHEMA_VERSION``, one migration per transaction."""
        with self._attached(write=True) as con:
            self._migrate_on(con)

    def _migrate_on(self, con: duckdb.DuckDBPyConnection) -> None:
        """``_migrate`` on an attached, writable catalog; a current one is only read."""
        if _version(con) == schema.SCHEMA_VERSION:
            return
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
        )
        version = _version(con)
        if version > schema.SCHEMA_VERSION:
            raise self._too_new(version)
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


@dataclasses.dataclass
class StartedRun:
    run_id: int
    crashed: list[tuple[str, int]]  # (flow, run_id) of the runs just marked crashed
    rows: list[tuple[Any, ...]]  # what ``start_run``'s ``read`` query returned


@dataclasses.dataclass
class TableDiff:
    table: str
    only_catalog: list[tuple[Any, ...]]
    only_rebuilt: list[tuple[Any, ...]]


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
        "AND table_name <> 'schema_version' ORDER BY table_name", [database]).fetchall()
    return [r[0] for r in rows]


def _table_diff(con: duckdb.DuckDBPyConnection, table: str) -> TableDiff:
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'rebuilt' "
        "AND table_name = ? ORDER BY column_index", [table]).fetchall()]
    mine = {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?",
        [_ALIAS, table]).fetchall()}
    listed = ", ".join(f'"{c}"' for c in columns if c in mine) or "*"
    here = f"SELECT {listed} FROM {table}" if mine else f"SELECT {listed} FROM rebuilt.{table} WHERE false"
    there = f"SELECT {listed} FROM rebuilt.main.{table}"
    return TableDiff(
        table,
        con.execute(f"({here}) EXCEPT ALL ({there})").fetchall(),
        con.execute(f"({there}) EXCEPT ALL ({here})").fetchall(),
    )


def _interrupted(exc: BaseException | None) -> bool:
    """Ctrl-C during a query: DuckDB takes the signal and raises an error of its own."""
    while exc is not None:
        if isinstance(exc, duckdb.InterruptException) or (
                isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()):
            return True
        exc = exc.__cause__
    return False


@contextlib.contextmanager
def _ctrl_c_stays_ctrl_c() -> Iterator[None]:
    """A Ctrl-C (or the lab's cancel, a SIGINT) that lands in a catalog query is a
    KeyboardInterrupt again, so the run is cancelled cleanly instead of crashing."""
    try:
        yield
    except (duckdb.Error, RuntimeError, CatalogError) as exc:
        if _interrupted(exc):
            raise KeyboardInterrupt from None
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
    if names:
        import duckdb as package  # noqa: F401 (sets up the engine's scans of Python objects)
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


_BULK_ROWS = 250  # rows per statement: a few thousand parameters


def _bulk_groups(events: Sequence[CatalogEvent]) -> list[tuple[type, list[Any]]]:
    """The batch as groups of one event type, each touching every task at most once,
    in an order with the same result as applying the events one by one.

    Each task event writes only its own task's rows, so events of different tasks
    commute: the k-th event of every task goes into round k (a task's own events keep
    their order), and one statement per round and type does the work of many (a single
    upsert costs DuckDB ≈5 ms whatever its row count). A run's end is a barrier."""
    groups: list[tuple[type, list[Any]]] = []
    rounds: list[dict[type, list[Any]]] = []
    seen: dict[tuple[Any, ...], int] = {}

    def flush() -> None:
        for by_type in rounds:
            groups.extend((kind, group) for kind, group in by_type.items())
        rounds.clear()
        seen.clear()

    for event in events:
        if isinstance(event, (TaskStarted, TaskFinished)):
            key = (event.flow, event.run_id, event.step, event.index)
            n = seen[key] = seen.get(key, -1) + 1
            if n == len(rounds):
                rounds.append({})
            rounds[n].setdefault(type(event), []).append(event)
        elif isinstance(event, RunFinished):
            flush()
            groups.append((RunFinished, [event]))
        else:
            raise CatalogError(f"not a catalog event: {event!r}")
    flush()
    return groups


def _values(width: int, rows: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * rows)


def _chunks(rows: list[list[Any]]) -> Iterator[tuple[list[list[Any]], list[Any]]]:
    for i in range(0, len(rows), _BULK_ROWS):
        chunk = rows[i:i + _BULK_ROWS]
        yield chunk, [value for row in chunk for value in row]


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[list[Any]],
                 width: int) -> None:
    """INSERT the rows with one statement per chunk (``executemany`` runs one statement per
    row, each costing DuckDB about a millisecond)."""
    for chunk, params in _chunks(rows):
        con.execute(f"INSERT INTO {table} VALUES {_values(width, len(chunk))}", params)


def _tasks_started(con: duckdb.DuckDBPyConnection, events: list[TaskStarted]) -> None:
    rows = [[e.flow, e.run_id, e.step, e.index, _json_or_null(e.foreach_element), e.attempt,
             e.pid, _ts(e.started_at), e.kernel_mode, _ts(e.queued_at)] for e in events]
    for chunk, params in _chunks(rows):
        con.execute(
            f"""INSERT INTO tasks (flow, run_id, step, task_index, foreach_element, status,
                   attempt, pid, started_at, kernel_mode, queued_at)
               SELECT flow, run_id, step, task_index, foreach_element, 'running', attempt,
                   pid, started_at, kernel_mode, queued_at
               FROM (VALUES {_values(10, len(chunk))}) AS v(flow, run_id, step, task_index,
                   foreach_element, attempt, pid, started_at, kernel_mode, queued_at)
               ON CONFLICT (flow, run_id, step, task_index) DO UPDATE SET
                   foreach_element = excluded.foreach_element, status = 'running',
                   attempt = excluded.attempt, pid = excluded.pid,
                   started_at = excluded.started_at,
                   kernel_mode = excluded.kernel_mode, ended_at = NULL, duration_s = NULL,
                   retry_errors = CASE WHEN tasks.error IS NULL THEN tasks.retry_errors ELSE
                       concat_ws(chr(10), tasks.retry_errors,
                                 'attempt ' || tasks.attempt || ': ' || tasks.error) END,
                   error = NULL, queued_at = coalesce(excluded.queued_at, queued_at)""",
            params,
        )


def _tasks_finished(con: duckdb.DuckDBPyConnection, events: list[TaskFinished]) -> None:
    rows = [[e.flow, e.run_id, e.step, e.index, e.status, _ts(e.started_at), _ts(e.ended_at),
             e.duration_s, e.peak_memory, e.error, e.cache_key, e.cached_from, e.python,
             _json(e.packages), _json_or_null(e.foreach_element), _json_or_null(e.cache_parts),
             _ts(e.queued_at)] for e in events]
    for chunk, params in _chunks(rows):
        con.execute(
            f"""INSERT INTO tasks (flow, run_id, step, task_index, status, attempt, started_at,
                   ended_at, duration_s, peak_memory, error, cache_key, cached_from, python,
                   packages, foreach_element, cache_parts, queued_at)
               SELECT flow, run_id, step, task_index, status, 1, started_at, ended_at,
                   duration_s, peak_memory, error, cache_key, cached_from, python, packages,
                   foreach_element, cache_parts, queued_at
               FROM (VALUES {_values(17, len(chunk))}) AS v(flow, run_id, step, task_index,
                   status, started_at, ended_at, duration_s, peak_memory, error, cache_key,
                   cached_from, python, packages, foreach_element, cache_parts, queued_at)
               ON CONFLICT (flow, run_id, step, task_index) DO UPDATE SET
                   status = excluded.status,
                   started_at = coalesce(started_at, excluded.started_at),
                   foreach_element = coalesce(excluded.foreach_element, foreach_element),
                   ended_at = excluded.ended_at, duration_s = excluded.duration_s,
                   peak_memory = excluded.peak_memory, error = excluded.error,
                   cache_key = excluded.cache_key, cached_from = excluded.cached_from,
                   python = excluded.python, packages = excluded.packages,
                   cache_parts = excluded.cache_parts,
                   queued_at = coalesce(queued_at, excluded.queued_at)""",
            params,
        )
    keys = [[e.flow, e.run_id, e.step, e.index] for e in events]
    for table in ("artifacts", "lineage"):
        for chunk, params in _chunks(keys):
            con.execute(
                f"""DELETE FROM {table} USING (VALUES {_values(4, len(chunk))})
                       AS k(flow, run_id, step, task_index)
                   WHERE {table}.flow = k.flow AND {table}.run_id = k.run_id
                       AND {table}.step = k.step AND {table}.task_index = k.task_index""",
                params,
            )
    artifacts = [
        [e.flow, e.run_id, e.step, e.index, a.name, a.type, a.hash, a.size, a.format, a.repr,
         _json_or_null(a.shape), _json_or_null(a.schema), a.metric, a.persisted, a.reason]
        for e in events for a in e.artifacts
    ]
    for chunk, params in _chunks(artifacts):
        con.execute(f"INSERT INTO artifacts VALUES {_values(15, len(chunk))}", params)
    read = [row for e in events
            for row in lineage_rows(e.flow, e.run_id, e.step, e.index, e.lineage)]
    for chunk, params in _chunks(read):
        con.execute(f"INSERT INTO lineage VALUES {_values(12, len(chunk))}", params)


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
