"""The DuckDB catalog on a real file: ids, events, schema, threads and processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nbflow.errors import CatalogError
from nbflow.store import schema
from nbflow.store.catalog import STORAGE_VERSION, Catalog
from nbflow.store.events import RunFinished, RunRecord, TaskFinished, TaskStarted
from nbflow.store.serialize import ArtifactRecord


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(tmp_path / "home" / "catalog.duckdb").create()  # a writer creates it


def test_run_ids_are_allocated_per_flow(catalog: Catalog) -> None:
    ids = [catalog.new_run(RunRecord(flow)) for flow in ["a", "a", "b", "a", "b"]]
    assert ids == [1, 2, 1, 3, 2]
    rows = catalog.execute_read("SELECT flow, run_id, status FROM runs ORDER BY flow, run_id")
    assert rows == [("a", 1, "running"), ("a", 2, "running"), ("a", 3, "running"),
                    ("b", 1, "running"), ("b", 2, "running")]


def test_new_run_records_params_and_tags(catalog: Catalog) -> None:
    run = RunRecord(
        "clf", notebook_path="/nb/clf.ipynb", notebook_hash="h", git_commit="abc",
        git_dirty=True, user="me", host="box", python="3.11", packages={"pandas": "3.1"},
        started_at=1_700_000_000.25, driver_pid=42, driver_host="box",
        params={"test_size": 0.2, "grid": [0.1, 1.0], "dataset": "iris", "odd": float("nan")},
        param_types={"dataset": "str"}, tags=["exp", "exp", "v2"],
    )
    run_id = catalog.new_run(run)
    params = catalog.execute_read(
        "SELECT name, value, type FROM params WHERE run_id = ? ORDER BY name", [run_id]
    )
    assert params == [("dataset", '"iris"', "str"), ("grid", "[0.1, 1.0]", "list"),
                      ("odd", '"nan"', "float"), ("test_size", "0.2", "float")]
    assert catalog.execute_read("SELECT tag FROM tags ORDER BY tag") == [("exp",), ("v2",)]
    df = catalog.query("SELECT * FROM runs")
    row = df.iloc[0]
    assert row["user"] == "me" and bool(row["git_dirty"]) and json.loads(row["packages"]) == {
        "pandas": "3.1"
    }
    assert str(row["started_at"]) == "2023-11-14 22:13:20.250000"  # UTC


def test_events_are_applied(catalog: Catalog) -> None:
    run_id = catalog.new_run(RunRecord("clf"))
    art = [
        ArtifactRecord("score", "float", "ab" * 16, 10, "pickle", "0.9", metric=0.9,
                       persisted=True),
        ArtifactRecord("df", "pandas.DataFrame", "cd" * 16, 99, "arrow", "DataFrame", [2, 1],
                       {"a": "float64"}, persisted=True),
        ArtifactRecord("gen", "generator", repr="<generator>", reason="TypeError: no"),
    ]
    catalog.apply([
        TaskStarted("clf", run_id, "sweep", 0, foreach_element={"C": 1.0}, pid=11,
                    started_at=100.0, kernel_mode="zygote"),
        TaskStarted("clf", run_id, "sweep", 1, foreach_element=2.0, pid=12, started_at=100.0),
    ])
    assert catalog.execute_read(
        "SELECT task_index, status, foreach_element, pid FROM tasks ORDER BY task_index"
    ) == [(0, "running", '{"C": 1.0}', 11), (1, "running", "2.0", 12)]
    catalog.apply([
        TaskFinished("clf", run_id, "sweep", 0, "failed", ended_at=101.0, error="Traceback"),
        TaskStarted("clf", run_id, "sweep", 0, foreach_element={"C": 1.0}, pid=13,
                    started_at=102.0, attempt=2),
        TaskFinished("clf", run_id, "sweep", 0, "succeeded", ended_at=103.5, duration_s=1.5,
                     peak_memory=1 << 20, cache_key="k0", artifacts=art, python="3.11",
                     packages={"x": "1"}),
        TaskFinished("clf", run_id, "sweep", 1, "succeeded", ended_at=104.0, artifacts=art[:1]),
        TaskFinished("clf", run_id, "load", 0, "cached", ended_at=99.0, started_at=99.0,
                     cached_from="clf/0/load/0", cache_key="kl"),
        RunFinished("clf", run_id, "succeeded", ended_at=105.0),
    ])
    tasks = catalog.query("SELECT * FROM tasks ORDER BY step, task_index")
    assert tasks[["step", "task_index", "status", "attempt", "error"]].values.tolist() == [
        ["load", 0, "cached", 1, None], ["sweep", 0, "succeeded", 2, None],
        ["sweep", 1, "succeeded", 1, None],
    ]
    assert tasks["pid"].tolist()[1] == 13 and tasks["cached_from"].tolist()[0] == "clf/0/load/0"
    assert catalog.execute_read(
        "SELECT name, persisted, reason, shape, schema FROM artifacts "
        "WHERE task_index = 0 ORDER BY name"
    ) == [("df", True, None, "[2, 1]", '{"a": "float64"}'), ("gen", False, "TypeError: no",
                                                              None, None),
          ("score", True, None, None, None)]
    assert catalog.execute_read("SELECT task_index, name, value FROM metrics ORDER BY 1") == [
        (0, "score", 0.9), (1, "score", 0.9)]
    assert catalog.execute_read("SELECT status, epoch(ended_at) FROM runs") == [
        ("succeeded", 105.0)]


def test_a_bad_batch_changes_nothing(catalog: Catalog) -> None:
    run_id = catalog.new_run(RunRecord("clf"))
    with pytest.raises(CatalogError, match="clf/99"):
        catalog.apply([TaskStarted("clf", run_id, "s", 0), RunFinished("clf", 99, "failed")])
    with pytest.raises(CatalogError):
        catalog.apply([TaskFinished("clf", run_id, "s", 0, "exploded")])  # type: ignore[arg-type]
    assert catalog.execute_read("SELECT count(*) FROM tasks") == [(0,)]


def test_queries_are_read_only_and_errors_are_catalog_errors(catalog: Catalog) -> None:
    catalog.new_run(RunRecord("clf"))
    with pytest.raises(CatalogError):
        catalog.query("DELETE FROM runs")
    with pytest.raises(CatalogError, match="no_such_table"):
        catalog.execute_read("SELECT * FROM no_such_table")
    assert catalog.execute_read("SELECT count(*) FROM runs") == [(1,)]


def test_schema_comments_and_storage_version(catalog: Catalog) -> None:
    assert catalog.schema_version() == schema.SCHEMA_VERSION
    tags = catalog.execute_read(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'nbflow'"
    )
    assert tags == [(STORAGE_VERSION + "+",)]
    uncommented = catalog.execute_read(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'nbflow' "
        "AND table_name = 'tasks' AND comment IS NULL AND column_name NOT IN "
        "('flow', 'run_id', 'step')"
    )
    assert uncommented == []
    again = Catalog(catalog.path)  # a second opener finds the schema current
    assert again.schema_version() == schema.SCHEMA_VERSION


@pytest.fixture(scope="session")
def old_duckdb_python() -> str:
    """A Python with DuckDB 1.5 (a user's kernel may have an older DuckDB than the runner):
    $NBFLOW_OLD_DUCKDB_PYTHON, or a virtual environment made once under ~/.cache."""
    given = os.environ.get("NBFLOW_OLD_DUCKDB_PYTHON")
    if given:
        return given
    import sys
    from pathlib import Path

    venv = Path.home() / ".cache" / "nbflow-tests" / "duckdb-1.5"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "duckdb==1.5.6"], check=True)
    return str(python)


def test_older_duckdb_reads_the_catalog(catalog: Catalog, old_duckdb_python: str) -> None:
    run_id = catalog.new_run(RunRecord("clf", params={"a": 1}))
    catalog.apply([TaskStarted("clf", run_id, "s", 0)])
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, c.execute('SELECT count(*) FROM tasks').fetchall())"
    )
    out = subprocess.run([old_duckdb_python, "-c", code, catalog.path],
                         capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 1)[1].strip() == "[(1,)]" and out.startswith("1."), out


def test_threads_share_one_catalog(catalog: Catalog) -> None:
    run_id = catalog.new_run(RunRecord("clf"))
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(15):
                Catalog(catalog.path).apply([TaskStarted("clf", run_id, f"t{t}", i)])
                catalog.execute_read("SELECT count(*) FROM tasks")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert catalog.execute_read("SELECT count(*) FROM tasks") == [(60,)]


def test_waits_for_a_process_that_ignores_the_flock(catalog: Catalog) -> None:
    catalog.new_run(RunRecord("clf"))
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(0.7); c.close()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, catalog.path],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    start = time.monotonic()
    assert catalog.new_run(RunRecord("clf")) == 2
    assert time.monotonic() - start > 0.2
    assert holder.wait(10) == 0


# -- several processes: every acknowledged commit must be there --------------------------

WRITERS, TX_PER_WRITER = 4, 200


def _writer(path: str, run_id: int, writer: int, acked: Any) -> None:
    catalog = Catalog(path)
    for i in range(TX_PER_WRITER):
        catalog.apply([TaskStarted("clf", run_id, f"w{writer}", i, pid=os.getpid())])
        acked.put((writer, i))


def _reader(path: str, stop: Any, out: Any) -> None:
    catalog = Catalog(path)
    counts = []
    while not stop.is_set():
        counts.append(catalog.execute_read("SELECT count(*) FROM tasks")[0][0])
        time.sleep(0.02)  # a widget's pace is seconds; faster polling starves writers
    out.put(counts)


def test_several_processes_lose_no_commit(catalog: Catalog) -> None:
    run_id = catalog.new_run(RunRecord("clf"))
    ctx = mp.get_context("spawn")
    acked, counts_q, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    writers = [ctx.Process(target=_writer, args=(catalog.path, run_id, w, acked))
               for w in range(WRITERS)]
    reader = ctx.Process(target=_reader, args=(catalog.path, stop, counts_q))
    reader.start()
    for p in writers:
        p.start()
    acknowledged = [acked.get(timeout=120) for _ in range(WRITERS * TX_PER_WRITER)]
    for p in writers:
        p.join(60)
        assert p.exitcode == 0
    stop.set()
    counts = counts_q.get(timeout=60)
    reader.join(60)
    assert reader.exitcode == 0

    rows = set(catalog.execute_read("SELECT step, task_index FROM tasks"))
    missing = {(f"w{w}", i) for w, i in acknowledged} - rows
    assert not missing, f"{len(missing)} acknowledged commits lost"
    assert len(rows) == WRITERS * TX_PER_WRITER
    assert len(counts) > 5 and counts == sorted(counts)  # readers saw progress, never regress


def test_start_run_is_one_transaction_that_marks_dead_runs_crashed(tmp_path: Path) -> None:
    """``nbflow execute``'s first catalog write: it creates the catalog, marks this host's
    runs whose driver died crashed (their unfinished tasks failed), records the new run
    and reads what it was asked, all in one write transaction (no other attach)."""
    import socket

    from nbflow.store import catalog as catalog_module

    path = tmp_path / "home" / "catalog.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    earlier = Catalog(path).create()
    crashed_id = earlier.new_run(RunRecord("f", driver_pid=int(dead.stdout),
                                           driver_host=socket.gethostname()))
    earlier.apply([TaskStarted("f", crashed_id, "a", 0, pid=1)])
    live_id = earlier.new_run(RunRecord("g", driver_pid=os.getpid(),
                                        driver_host=socket.gethostname()))
    catalog_module._SHARED.clear()  # a new process: nothing known about the file yet
    attaches: list[bool] = []
    fresh = Catalog(path)
    real = fresh._attached

    def counting(*, write: bool) -> Any:
        attaches.append(write)
        return real(write=write)

    fresh._attached = counting  # type: ignore[method-assign]
    started = fresh.start_run(RunRecord("f"), read=(
        "SELECT flow, run_id, status FROM runs ORDER BY flow, run_id", []))
    assert attaches == [True]
    assert started.run_id == crashed_id + 1 and started.crashed == [("f", crashed_id)]
    assert started.rows == [("f", crashed_id, "crashed"), ("f", crashed_id + 1, "running"),
                            ("g", live_id, "running")]
    assert fresh.execute_read("SELECT status FROM tasks WHERE run_id = ?",
                              [crashed_id]) == [("failed",)]


def test_start_run_creates_a_missing_catalog(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "new" / "catalog.duckdb")
    assert catalog.start_run(RunRecord("f")).run_id == 1
    assert catalog.schema_version() == schema.SCHEMA_VERSION


def test_the_catalog_needs_only_duckdbs_engine_until_it_scans_python_tables(
        tmp_path: Path) -> None:
    """Reading and writing the catalog imports the engine (``_duckdb`` on duckdb 2), not
    the ``duckdb`` package's Python layer (≈110 ms of CPU); registering an Arrow table for
    a query imports the package, which sets the engine's scans of Python objects up."""
    pytest.importorskip("_duckdb", reason="duckdb 1.x has no separate engine module")
    probe = (
        "import sys\n"
        "from nbflow.store.catalog import Catalog\n"
        "from nbflow.store.events import RunRecord\n"
        f"c = Catalog({str(tmp_path / 'catalog.duckdb')!r})\n"
        "run_id = c.start_run(RunRecord('f')).run_id\n"
        "rows = c.execute_read('SELECT flow, run_id FROM runs')\n"
        "frame = c.query('SELECT count(*) AS n FROM runs')\n"
        "before = 'duckdb' in sys.modules\n"
        "import pyarrow as pa\n"
        "scanned = c.query('SELECT sum(x) AS s FROM t', tables={'t': pa.table({'x': [1, 2]})})\n"
        "print(rows, int(frame['n'][0]), before, int(scanned['s'][0]))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[('f',", "1)]", "1", "False", "3"]


def test_a_reader_and_a_writer_refuse_a_catalog_newer_than_this_nbflow(tmp_path: Path) -> None:
    from nbflow.store import catalog as catalog_module

    path = tmp_path / "catalog.duckdb"
    Catalog(path).create().apply_sql(
        [("INSERT INTO schema_version VALUES (?, now())", [schema.SCHEMA_VERSION + 1])])
    for attempt in (lambda c: c.execute_read("SELECT 1"), lambda c: c.new_run(RunRecord("f"))):
        catalog_module._SHARED.clear()  # a new process
        with pytest.raises(CatalogError, match="newer than this nbflow understands"):
            attempt(Catalog(path))
