"""A real Dask cluster (``dask scheduler`` + ``dask worker`` processes on 127.0.0.1) and a
local S3 server (moto's ThreadedMotoServer), shared by the tests of this package."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nbtest import ROOT, nbflow_command, wait_for_workers

BUCKET = "nbflow-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3:
    endpoint: str
    env: dict[str, str]

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "FSSPEC_S3_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # this process reads the home too (client API, sql)
    import fsspec.config

    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint
    import s3fs

    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir(BUCKET)
    yield S3(endpoint, env)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def client(self) -> object:
        from distributed import Client

        return Client(self.address, timeout=30)


def process_env(extra: dict[str, str], pythonpath: str = str(ROOT)) -> dict[str, str]:
    return {**os.environ, **extra, "PYTHONPATH": pythonpath}


def start_cluster(env: dict[str, str], workers: int, log: Path,
                  worker_env: dict[str, str] | None = None) -> Cluster:
    """A scheduler process and ``workers`` single-threaded workers (under one nanny process).
    They run in ``log`` so that ``python -m`` does not put this checkout on their path."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], env=env, cwd=log, stdout=open(log / "scheduler.log", "wb"),
                                 stderr=subprocess.STDOUT)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nworkers", str(workers), "--nthreads", "1", "--host",
                               "127.0.0.1", "--no-dashboard"], env=worker_env or env, cwd=log,
                              stdout=open(log / "workers.log", "wb"), stderr=subprocess.STDOUT)
    cluster = Cluster(address, env, [scheduler, worker])
    wait_for_workers(address, workers)
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for process in reversed(cluster.processes):
        process.terminate()
    for process in cluster.processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def cluster(s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    log = tmp_path_factory.mktemp("dask-logs")
    started = start_cluster(process_env(s3.env), 2, log)
    yield started
    stop_cluster(started)


@pytest.fixture
def s3_home(s3: S3, request: pytest.FixtureRequest) -> str:
    return s3.url(f"{request.node.name}-{time.time_ns()}")


@pytest.fixture
def run_dask(cluster: Cluster, s3_home: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``nbflow ARGS --backend dask --scheduler ADDRESS --home s3://…`` from ``tmp_path``;
    the catalog is ``tmp_path/.nbflow/catalog.duckdb`` (the default with a remote home)."""

    def run(*args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        full = {**process_env(cluster.env), "NBFLOW_HOME": s3_home, **(env or {})}
        command = [*nbflow_command(), *args]
        if args and args[0] == "execute":
            command += ["--backend", "dask", "--scheduler", cluster.address]
        return subprocess.run(command, capture_output=True, text=True, env=full, cwd=tmp_path,
                              timeout=timeout)

    return run
