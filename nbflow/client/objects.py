"""Read-only views of what nbflow recorded, in Metaflow's shape.

``Flow("classifier").latest_run["knn"].task.data.knn``. Rows come from the catalog
when an object is made; artifact values load from the store only when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from nbflow.client import lineage
from nbflow.client.final import ARTIFACT_COLUMNS as _ARTIFACT_COLUMNS
from nbflow.client.final import Source, final_sources
from nbflow.client.final import record_from_row as _record
from nbflow.client.pathspec import parse_pathspec
from nbflow.errors import PathspecError, StoreError
from nbflow.store.catalog import Catalog
from nbflow.store.home import Home
from nbflow.store.serialize import ArtifactRecord, load_artifact

_RUN_COLUMNS = (
    "flow", "run_id", "notebook_path", "notebook_hash", "git_commit", "git_dirty", '"user"',
    "host", "python", "packages", "started_at", "ended_at", "status", "origin_run", "error",
    "driver_pid", "driver_host",
)
_TASK_COLUMNS = (
    "step", "task_index", "foreach_element", "status", "cache_key", "cached_from", "attempt",
    "pid", "started_at", "ended_at", "duration_s", "peak_memory", "error", "python",
    "packages", "kernel_mode", "cache_parts",
)


def open_home(home: Home | str | None) -> Home:
    """The home to read: ``home`` itself, a path or URL, or the default (``NBFLOW_HOME``,
    else ``./.nbflow``)."""
    return home if isinstance(home, Home) else Home(home)


def _home(home: Home | str | None) -> Home:
    """The home to read; it must exist (reading never creates one)."""
    return open_home(home).require()


def _catalog(home: Home) -> Catalog:
    return Catalog(home.catalog_path, home)


class Flow:
    """All runs of one notebook (its stem)."""

    def __init__(self, name: str, *, home: Home | str | None = None) -> None:
        self.name = name
        self.home = _home(home)
        self._catalog = _catalog(self.home)

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def runs(self, *tags: str, status: str | None = None) -> list[Run]:
        """Runs newest first, optionally only those with every tag and/or one status."""
        sql = "SELECT run_id FROM runs WHERE flow = ?"
        params: list[Any] = [self.name]
        if status:
            sql += " AND status = ?"
            params.append(status)
        for tag in tags:
            sql += " AND run_id IN (SELECT run_id FROM tags WHERE flow = ? AND tag = ?)"
            params += [self.name, tag]
        rows = self._catalog.execute_read(sql + " ORDER BY run_id DESC", params)
        return [Run(f"{self.name}/{r[0]}", home=self.home, _via=None) for r in rows]

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs())

    def __getitem__(self, run_id: int | str) -> Run:
        return Run(f"{self.name}/{run_id}", home=self.home, _via=f"Flow({self.name!r})[{run_id}]")

    @property
    def latest_run(self) -> Run | None:
        return self._latest("", "latest_run")

    @property
    def latest_successful_run(self) -> Run | None:
        return self._latest(" AND status = 'succeeded'", "latest_successful_run")

    def _latest(self, condition: str, via: str) -> Run | None:
        """One catalog round trip: the newest matching run's row."""
        rows = self._catalog.execute_read(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE flow = ?{condition} "
            "ORDER BY run_id DESC LIMIT 1",
            [self.name],
        )
        if not rows:
            return None
        return Run(f"{self.name}/{rows[0][1]}", home=self.home, _row=rows[0],
                   _via=f"Flow({self.name!r}).{via}")


class Run:
    """One execution of a notebook: ``Run("classifier/3")``."""

    def __init__(self, pathspec: str, *, home: Home | str | None = None,
                 _row: tuple[Any, ...] | None = None, _via: str | None = "") -> None:
        spec = parse_pathspec(pathspec)
        if spec.run is None or spec.step is not None:
            raise PathspecError(f"{pathspec!r} is not a run pathspec", hint="write FLOW/RUN")
        self.home = _home(home)
        self._catalog = _catalog(self.home)
        self.flow, self.id = spec.flow, spec.run
        self.pathspec = f"{self.flow}/{self.id}"
        self._row = self._load_row(_row)
        if _via is not None:  # None: listed, not read (Flow.runs)
            lineage.note_run(self.flow, self.id, _via or f"Run({self.pathspec!r})")

    def _load_row(self, given: tuple[Any, ...] | None) -> dict[str, Any]:
        rows = [given] if given is not None else self._catalog.execute_read(
            f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE flow = ? AND run_id = ?",
            [self.flow, self.id],
        )
        if not rows:
            known = self._catalog.execute_read(
                "SELECT max(run_id) FROM runs WHERE flow = ?", [self.flow])[0][0]
            hint = (f"flow {self.flow!r} has runs 1..{known}" if known
                    else f"no runs of {self.flow!r} are recorded in {self.home.url}")
            raise PathspecError(f"run {self.pathspec} does not exist", hint=hint)
        row = dict(zip([c.strip('"') for c in _RUN_COLUMNS], rows[0], strict=True))
        from nbflow.store.crashed import looks_crashed

        if looks_crashed(row["status"], row["driver_host"], row["driver_pid"], row["started_at"]):
            row["status"] = "crashed"  # what the next `nbflow execute` will record
        return row

    def __repr__(self) -> str:
        return f"Run({self.pathspec!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        return str(self._row["status"])

    @property
    def successful(self) -> bool:
        return self.status == "succeeded"

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def created_at(self) -> datetime:
        return self._row["started_at"]

    @property
    def finished_at(self) -> datetime | None:
        return self._row["ended_at"]

    @property
    def notebook_path(self) -> str:
        return str(self._row["notebook_path"])

    @property
    def git_commit(self) -> str | None:
        return self._row["git_commit"]

    @property
    def git_dirty(self) -> bool | None:
        return self._row["git_dirty"]

    @property
    def packages(self) -> dict[str, str]:
        return json.loads(self._row["packages"] or "{}")

    @property
    def user(self) -> str | None:
        return self._row["user"]

    @property
    def error(self) -> str | None:
        return self._row["error"]

    @property
    def params(self) -> dict[str, Any]:
        rows = self._catalog.execute_read(
            "SELECT name, value FROM params WHERE flow = ? AND run_id = ? ORDER BY name",
            [self.flow, self.id],
        )
        return {name: json.loads(value) for name, value in rows}

    @property
    def tags(self) -> list[str]:
        rows = self._catalog.execute_read(
            "SELECT tag FROM tags WHERE flow = ? AND run_id = ? ORDER BY tag", [self.flow, self.id]
        )
        return [r[0] for r in rows]

    @property
    def executed_notebook(self) -> str:
        return f"{self.home.run_prefix(self.flow, self.id)}/notebook.ipynb"

    def steps(self) -> list[Step]:
        """The run's steps in cell order (those that never ran included)."""
        rows = self._catalog.execute_read(
            "SELECT step FROM steps WHERE flow = ? AND run_id = ? ORDER BY cell",
            [self.flow, self.id],
        )
        return [Step(self, r[0]) for r in rows]

    def dag(self) -> list[dict[str, Any]]:
        """The planned steps: kind, cell, parents, inputs, outputs (cell order)."""
        rows = self._catalog.execute_read(
            "SELECT step, kind, cell, foreach, as_var, parents, inputs, outputs FROM steps "
            "WHERE flow = ? AND run_id = ? ORDER BY cell",
            [self.flow, self.id],
        )
        keys = ("step", "kind", "cell", "foreach", "as_var", "parents", "inputs", "outputs")
        found = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            for key in ("parents", "inputs", "outputs"):
                item[key] = json.loads(item[key] or "[]")
            found.append(item)
        return found

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps())

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """What this run's tasks read of other runs: one dict per read, with ``task`` (the
        reader), ``kind`` (run | artifact), ``read`` (pathspec), ``name``, ``hash``, ``via``."""
        return _lineage(self._catalog, self.flow, self.id, "", [])

    @property
    def upstream_runs(self) -> list[str]:
        """Pathspecs of the runs this run's tasks read, in first-read order."""
        return list(dict.fromkeys("/".join(e["read"].split("/")[:2]) for e in self.lineage))

    def __getitem__(self, step: str) -> Step:
        names = [s.name for s in self.steps()]
        if step not in names:
            raise KeyError(f"run {self.pathspec} has no step {step!r} (steps: {', '.join(names)})")
        return Step(self, step)

    def __contains__(self, step: str) -> bool:
        return step in {s.name for s in self.steps()}

    @property
    def data(self) -> Data:
        """The final value of every name, as the kernel would hold it after running the
        notebook top to bottom: each name from its last producer in cell order; a
        branch's name is the list of its tasks' namespaces."""
        found = final_sources(self._catalog, "SELECT ?, ?", [self.flow, self.id])
        return Data(self, found.get((self.flow, self.id), {}))


_LINEAGE_COLUMNS = ("step", "task_index", "kind", "read_flow", "read_run", "read_step",
                    "read_task_index", "read_name", "read_hash", "via")


def _lineage(catalog: Catalog, flow: str, run: int, where: str,
             args: list[Any]) -> list[dict[str, Any]]:
    rows = catalog.execute_read(
        f"SELECT {', '.join(_LINEAGE_COLUMNS)} FROM lineage WHERE flow = ? AND run_id = ?{where} "
        "ORDER BY step, task_index, rowid", [flow, run, *args])
    found = []
    for row in rows:
        item = dict(zip(_LINEAGE_COLUMNS, row, strict=True))
        read = f"{item['read_flow']}/{item['read_run']}"
        if item["kind"] == "artifact":
            read += f"/{item['read_step']}/{item['read_task_index']}"
        found.append({"task": f"{flow}/{run}/{item['step']}/{item['task_index']}",
                      "kind": item["kind"], "read": read, "name": item["read_name"],
                      "hash": item["read_hash"], "via": item["via"]})
    return found


class Step:
    def __init__(self, run: Run, name: str) -> None:
        self.run = run
        self.name = name
        self.pathspec = f"{run.pathspec}/{name}"

    def __repr__(self) -> str:
        return f"Step({self.pathspec!r})"

    def tasks(self) -> list[Task]:
        rows = self.run._catalog.execute_read(
            "SELECT task_index FROM tasks WHERE flow = ? AND run_id = ? AND step = ? "
            "ORDER BY task_index",
            [self.run.flow, self.run.id, self.name],
        )
        return [Task(self, r[0]) for r in rows]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks())

    def __getitem__(self, index: int) -> Task:
        return Task(self, int(index))

    @property
    def task(self) -> Task:
        """The step's task (the first one, for a branch)."""
        return Task(self, 0)


class Task:
    def __init__(self, step: Step, index: int) -> None:
        self.step = step
        self.index = index
        self.run = step.run
        self.pathspec = f"{step.pathspec}/{index}"
        rows = self.run._catalog.execute_read(
            f"SELECT {', '.join(_TASK_COLUMNS)} FROM tasks "
            "WHERE flow = ? AND run_id = ? AND step = ? AND task_index = ?",
            [self.run.flow, self.run.id, step.name, index],
        )
        if not rows:
            raise PathspecError(f"task {self.pathspec} does not exist",
                                hint=f"list the tasks with: nbflow dump {step.pathspec}")
        self._row = dict(zip(_TASK_COLUMNS, rows[0], strict=True))

    def __repr__(self) -> str:
        return f"Task({self.pathspec!r}, status={self.status!r})"

    def __getattr__(self, name: str) -> Any:
        row = self.__dict__.get("_row", {})
        if name in row:
            return row[name]
        raise AttributeError(name)

    @property
    def successful(self) -> bool:
        return self.status in ("succeeded", "cached", "cloned")

    @property
    def finished_at(self) -> datetime | None:
        return self._row["ended_at"]

    def __getitem__(self, name: str) -> DataArtifact:
        """``task["model"].data``, as in Metaflow: one artifact, its value loaded on first use."""
        artifacts = self.artifacts
        if name not in artifacts:
            raise KeyError(f"task {self.pathspec} has no artifact {name!r} "
                           f"(it has: {', '.join(artifacts) or 'none'})")
        return DataArtifact(self, artifacts[name])

    def __contains__(self, name: str) -> bool:
        return name in self.artifacts

    def __iter__(self) -> Iterator[DataArtifact]:
        """The task's artifacts, by name."""
        return (DataArtifact(self, record) for record in self.artifacts.values())

    @property
    def artifacts(self) -> dict[str, ArtifactRecord]:
        rows = self.run._catalog.execute_read(
            f"SELECT {', '.join(_ARTIFACT_COLUMNS)} FROM artifacts "
            "WHERE flow = ? AND run_id = ? AND step = ? AND task_index = ? ORDER BY name",
            [self.run.flow, self.run.id, self.step.name, self.index],
        )
        return {row[0]: _record(row) for row in rows}

    @property
    def data(self) -> Data:
        return Data(self.run, {n: Source(self.step.name, self.index, record)
                               for n, record in self.artifacts.items()})

    @property
    def lineage(self) -> list[dict[str, Any]]:
        """What the task read of other runs through the client API (see ``Run.lineage``)."""
        return _lineage(self.run._catalog, self.run.flow, self.run.id,
                        " AND step = ? AND task_index = ?", [self.step.name, self.index])

    @property
    def cache_parts(self) -> dict[str, Any]:
        """What the task's cache key hashed, part by part."""
        parts = self._row.get("cache_parts")
        return json.loads(parts) if parts else {}

    @property
    def snapshots(self) -> dict[str, str]:
        """``--snapshot`` files as they were when the task ran: path -> content hash."""
        return dict(self.cache_parts.get("snapshots", {}))

    def snapshot(self, path: str) -> bytes:
        """The content ``path`` (relative to the notebook) had when the task ran."""
        snapshots = self.snapshots
        if path not in snapshots:
            raise KeyError(f"{self.pathspec} has no snapshot of {path!r} "
                           f"(it has: {', '.join(sorted(snapshots)) or 'none'})")
        return self.run.home.objects.read_bytes(snapshots[path])

    @property
    def log_path(self) -> str:
        """The executed task notebook; for a cached or cloned task, the original's."""
        origin = self._row.get("cached_from")
        spec = parse_pathspec(origin or self.pathspec)
        assert spec.run is not None and spec.step is not None and spec.task is not None
        prefix = self.run.home.task_prefix(spec.flow, spec.run, spec.step, spec.task)
        return f"{prefix}/notebook.ipynb"

    def executed_notebook(self) -> Any:
        import nbformat

        return nbformat.reads(self.run.home.read_text(self.log_path), as_version=4)

    def _streams(self, name: str) -> str:
        from nbflow.kernel.tasknb import cell_role

        try:
            nb = self.executed_notebook()
        except (StoreError, OSError):  # no log yet (the task has not ended) or it is gone
            return ""
        parts = []
        for cell in nb.cells:
            if cell_role(cell)[0] != "step":
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == name:
                    parts.append(output.get("text", ""))
        return "".join(parts)

    @property
    def traceback(self) -> str | None:
        """The failing cell's traceback from the executed notebook (plain text), if any."""
        from nbflow.kernel.tasknb import error_traceback

        try:
            nb = self.executed_notebook()
        except (StoreError, OSError):
            return None
        return error_traceback(nb)

    @property
    def stdout(self) -> str:
        return self._streams("stdout")

    @property
    def stderr(self) -> str:
        return self._streams("stderr")


class DataArtifact:
    """One artifact of a task (``task["name"]``): what the catalog knows of it, and its
    value as ``.data``, loaded from the store on first access (Metaflow's shape)."""

    def __init__(self, task: Task, record: ArtifactRecord) -> None:
        self.task = task
        self.record = record
        self.id = record.name
        self.pathspec = f"{task.pathspec}/{record.name}"

    def __repr__(self) -> str:
        return f"DataArtifact({self.pathspec!r}, type={self.record.type!r})"

    @property
    def data(self) -> Any:
        # through Data (it loads and notes the lineage), without reading the catalog again
        name = self.record.name
        task = self.task
        return getattr(Data(task.run, {name: Source(task.step.name, task.index, self.record)}),
                       name)

    @property
    def sha(self) -> str | None:
        """The content hash the value is stored under (None: not persisted)."""
        return self.record.hash

    @property
    def finished_at(self) -> datetime | None:
        return self.task.finished_at


class Data:
    """Artifacts by attribute, each loaded from the store on first access."""

    def __init__(self, run: Run,
                 sources: dict[str, Source]) -> None:
        self._run = run
        self._sources = sources
        self._values: dict[str, Any] = {}

    def __dir__(self) -> list[str]:
        return sorted(self._sources)

    def __contains__(self, name: str) -> bool:
        return name in self._sources

    def __repr__(self) -> str:
        return f"<data of {self._run.pathspec}: {', '.join(sorted(self._sources))}>"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._sources:
            raise AttributeError(
                f"{self._run.pathspec} has no artifact {name!r} "
                f"(it has: {', '.join(sorted(self._sources)) or 'none'})"
            )
        if name not in self._values:
            step, index, record = self._sources[name]
            if record is None:
                self._values[name] = self._join(step)
            else:
                self._values[name] = load_artifact(self._run.home.objects, record)
                lineage.note_artifact(self._run.flow, self._run.id, step, index, name,
                                      record.hash, "data")
        return self._values[name]

    def _join(self, step: str) -> list[Any]:
        """A branch's result as a join sees it: one lazy namespace per task, in order."""
        from nbflow.kernel.namespace import Namespace

        store = self._run.home.objects
        run = self._run
        rows = run._catalog.execute_read(  # every task's artifacts in one query
            f"SELECT t.task_index, {', '.join('a.' + c for c in _ARTIFACT_COLUMNS)} FROM tasks t "
            "LEFT JOIN artifacts a ON a.flow = t.flow AND a.run_id = t.run_id "
            "AND a.step = t.step AND a.task_index = t.task_index "
            "WHERE t.flow = ? AND t.run_id = ? AND t.step = ? ORDER BY t.task_index, a.name",
            [run.flow, run.id, step])
        by_task: dict[int, dict[str, ArtifactRecord]] = {}
        for index, *artifact in rows:
            records = by_task.setdefault(index, {})
            if artifact[0] is not None:
                records[artifact[0]] = _record(tuple(artifact))
        joined = []
        for index, records in by_task.items():

            def loader(name: str, records: dict[str, ArtifactRecord] = records,
                       task_index: int = index) -> Any:
                lineage.note_artifact(run.flow, run.id, step, task_index, name,
                                      records[name].hash, "data")
                return load_artifact(store, records[name])

            joined.append(Namespace(label=f"{step}[{index}]", lazy=set(records),
                                    loader=loader))
        return joined

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)
