"""The catalog's versioned schema: migration ``n`` takes the catalog from version n-1 to n.

Append a migration to change the schema; never edit one that has shipped.
Timestamps are UTC (``TIMESTAMP`` without time zone). JSON columns hold JSON text.
All objects live in the catalog database attached as ``nbflow`` (see catalog.py).
"""

from __future__ import annotations

RUN_STATUSES = ("running", "succeeded", "failed", "cancelled", "crashed")
TASK_STATUSES = ("pending", "running", "succeeded", "failed", "cached", "cloned", "cancelled")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_V1_TABLES = f"""
CREATE TABLE runs (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    notebook_path VARCHAR,
    notebook_hash VARCHAR,
    git_commit VARCHAR,
    git_dirty BOOLEAN,
    "user" VARCHAR,
    host VARCHAR,
    python VARCHAR,
    packages JSON,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    status VARCHAR NOT NULL CHECK (status IN {_in(RUN_STATUSES)}),
    driver_pid INTEGER,
    driver_host VARCHAR,
    origin_run INTEGER,
    error VARCHAR,
    PRIMARY KEY (flow, run_id)
);
CREATE TABLE params (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    value JSON,
    type VARCHAR,
    PRIMARY KEY (flow, run_id, name)
);
CREATE TABLE tags (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    tag VARCHAR NOT NULL,
    PRIMARY KEY (flow, run_id, tag)
);
CREATE TABLE tasks (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    step VARCHAR NOT NULL,
    task_index INTEGER NOT NULL,
    foreach_element JSON,
    status VARCHAR NOT NULL CHECK (status IN {_in(TASK_STATUSES)}),
    cache_key VARCHAR,
    cached_from VARCHAR,
    attempt INTEGER,
    pid INTEGER,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    duration_s DOUBLE,
    peak_memory BIGINT,
    error VARCHAR,
    python VARCHAR,
    packages JSON,
    kernel_mode VARCHAR,
    PRIMARY KEY (flow, run_id, step, task_index)
);
CREATE TABLE artifacts (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    step VARCHAR NOT NULL,
    task_index INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    type VARCHAR,
    hash VARCHAR,
    size BIGINT,
    format VARCHAR,
    repr VARCHAR,
    shape JSON,
    schema JSON,
    metric DOUBLE,
    persisted BOOLEAN NOT NULL,
    reason VARCHAR
);
CREATE VIEW metrics AS
    SELECT flow, run_id, step, task_index, name, metric AS value
    FROM artifacts WHERE metric IS NOT NULL;
"""

_V1_COMMENTS: dict[str, dict[str, str]] = {
    "runs": {
        "": "One row per run of a notebook (flow). Times are UTC.",
        "flow": "The notebook's stem, e.g. 'classifier'",
        "run_id": "Per-flow run number, 1, 2, ...; pathspec FLOW/RUN_ID",
        "notebook_path": "Path of the notebook that was executed",
        "notebook_hash": "Content hash of the notebook's normalized cells",
        "git_commit": "HEAD commit of the notebook's repository, if any",
        "git_dirty": "True if the repository had uncommitted changes",
        "user": "Who started the run",
        "host": "Machine the run was started on",
        "python": "Driver's Python version",
        "packages": "Driver's package versions, JSON object name -> version",
        "started_at": "When the run started (UTC)",
        "ended_at": "When the run ended (UTC); NULL while running",
        "status": "running | succeeded | failed | cancelled | crashed",
        "driver_pid": "PID of the driver process (to detect a crashed run)",
        "driver_host": "Host of the driver process",
        "origin_run": "For --resume: the run whose tasks were cloned",
        "error": "Why the run failed, if it did",
    },
    "params": {
        "": "Run parameters, one row per parameter",
        "value": "The parameter's value as JSON",
        "type": "Python type name of the value (int, float, str, list, ...)",
    },
    "tags": {"": "Tags given with --tag"},
    "tasks": {
        "": "One row per task: a step has task 0, a branch one task per foreach element",
        "task_index": "0 for a step; 0..n-1 for a branch's tasks",
        "foreach_element": "The branch element of this task as JSON (its repr if not JSON)",
        "status": "pending | running | succeeded | failed | cached | cloned | cancelled",
        "cache_key": "Hash of everything the task's result depends on",
        "cached_from": "For cached/cloned tasks: pathspec FLOW/RUN/STEP/INDEX reused",
        "attempt": "1 for the first attempt; more with --retry",
        "pid": "PID of the task's kernel",
        "started_at": "When the task started (UTC)",
        "ended_at": "When the task ended (UTC)",
        "duration_s": "Wall time of the task in seconds",
        "peak_memory": "Peak resident memory of the task's kernel, bytes",
        "error": "The failing cell's traceback, if the task failed",
        "python": "Python version of the task's kernel",
        "packages": "Package versions in the task's kernel, JSON object",
        "kernel_mode": "How the kernel was started (e.g. zygote, pool, fresh, dask)",
    },
    "artifacts": {
        "": "One row per name a task bound; load values with the client API",
        "name": "The variable name",
        "type": "Qualified type name of the value",
        "hash": "xxh3-128 content hash: the object's name in <home>/objects",
        "size": "Stored size in bytes",
        "format": "arrow (Arrow IPC file, DataFrames) | pickle (cloudpickle protocol 5)",
        "repr": "Short repr of the value (at most 200 characters)",
        "shape": "Shape of a DataFrame/array as a JSON list",
        "schema": "DataFrame columns as JSON object column -> dtype",
        "metric": "The value as a number, for numeric scalars (also in view metrics)",
        "persisted": "False if the value could not be serialized",
        "reason": "Why the value was not persisted",
    },
}


def _comments(spec: dict[str, dict[str, str]]) -> str:
    statements = []
    for table, columns in spec.items():
        for column, text in columns.items():
            quoted = text.replace("'", "''")
            target = f"TABLE {table}" if not column else f'COLUMN {table}."{column}"'
            statements.append(f"COMMENT ON {target} IS '{quoted}';")
    statements.append("COMMENT ON VIEW metrics IS 'Numeric scalar artifacts: name, value';")
    return "\n".join(statements)


_V2_STEPS = """
CREATE TABLE steps (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    step VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    cell INTEGER,
    foreach VARCHAR,
    as_var VARCHAR,
    parents JSON,
    inputs JSON,
    outputs JSON,
    PRIMARY KEY (flow, run_id, step)
);
"""

_V2_COMMENTS: dict[str, dict[str, str]] = {
    "steps": {
        "": "The DAG of a run as planned: one row per %%step/%%branch cell",
        "kind": "step | branch",
        "cell": "1-based position of the step's cell in the notebook",
        "foreach": "For a branch: the name it iterates over",
        "as_var": "For a branch: the loop variable (--as)",
        "parents": "Upstream steps, JSON list (inferred edges and --after)",
        "inputs": "Names the step reads, JSON list",
        "outputs": "Names the step binds, JSON list (a branch exports its own name)",
    },
}


MIGRATIONS: list[str] = [
    _V1_TABLES + _comments(_V1_COMMENTS),
    _V2_STEPS + _comments(_V2_COMMENTS).replace(
        "COMMENT ON VIEW metrics IS 'Numeric scalar artifacts: name, value';", ""
    ),
    "ALTER TABLE tasks ADD COLUMN cache_parts JSON;"
    "COMMENT ON COLUMN tasks.cache_parts IS "
    "'What the cache key hashes, part by part (nbflow why compares these)';"
    "CREATE INDEX tasks_cache_key ON tasks (cache_key);",
    # Recording a task replaces its artifact rows: without an index that is a scan of
    # every artifact of every run, per task.
    "CREATE INDEX artifacts_task ON artifacts (flow, run_id, step, task_index);",
    # One clock per task, said in words (the old comments did not say which moment
    # started_at was, and duration_s was measured from another one).
    "ALTER TABLE tasks ADD COLUMN queued_at TIMESTAMP;" + _comments({"tasks": {
        "queued_at": "When the task was ready (its parents done) and handed to a worker (UTC)",
        "started_at": "When its kernel was up and began executing the task notebook (UTC); "
                      "queued_at to started_at is waiting for a worker plus kernel start-up",
        "ended_at": "When the task notebook finished executing (UTC)",
        "duration_s": "Execution time, ended_at - started_at, in seconds (kernel start-up "
                      "excluded); 0 for a cached or cloned task; the time the terminal prints",
    }}).replace("COMMENT ON VIEW metrics IS 'Numeric scalar artifacts: name, value';", ""),
    "ALTER TABLE tasks ADD COLUMN retry_errors VARCHAR;"
    "COMMENT ON COLUMN tasks.retry_errors IS "
    "'Why earlier attempts failed, one line per attempt: attempt N: error';",
]

_V5_LINEAGE = """
CREATE TABLE lineage (
    flow VARCHAR NOT NULL,
    run_id INTEGER NOT NULL,
    step VARCHAR NOT NULL,
    task_index INTEGER NOT NULL,
    kind VARCHAR NOT NULL CHECK (kind IN ('run', 'artifact')),
    read_flow VARCHAR NOT NULL,
    read_run INTEGER NOT NULL,
    read_step VARCHAR,
    read_task_index INTEGER,
    read_name VARCHAR,
    read_hash VARCHAR,
    via VARCHAR
);
CREATE INDEX lineage_task ON lineage (flow, run_id, step, task_index);
"""

_V5_COMMENTS: dict[str, dict[str, str]] = {
    "lineage": {
        "": "What a task read of other runs through the client API (from its manifest's "
            "lineage list): the reading task (flow, run_id, step, task_index) and what it read",
        "kind": "run (a run it resolved) | artifact (a value it loaded)",
        "read_flow": "Flow of the run read",
        "read_run": "Run id read; pathspec READ_FLOW/READ_RUN",
        "read_step": "For an artifact: the step that produced it",
        "read_task_index": "For an artifact: the producing task's index",
        "read_name": "For an artifact: its name",
        "read_hash": "For an artifact: the content hash that was read",
        "via": "How it was reached: Flow('x').latest_successful_run, Run('x/4'), data, sql",
    },
}


MIGRATIONS.append(
    _V5_LINEAGE + _comments(_V5_COMMENTS).replace(
        "COMMENT ON VIEW metrics IS 'Numeric scalar artifacts: name, value';", "")
    + "COMMENT ON COLUMN artifacts.format IS 'How the value is stored: pickle (cloudpickle "
      "protocol 5), arrow (Arrow IPC, DataFrames), npy (NumPy arrays), or the name of a "
      "serializer (custom:NAME: registered with nbflow.register_serializer)';"
)

SCHEMA_VERSION = len(MIGRATIONS)
