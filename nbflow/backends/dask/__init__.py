"""The ``dask`` backend: each ready task runs on a Dask distributed cluster.

``--scheduler tcp://HOST:PORT`` (or ``$DASK_SCHEDULER_ADDRESS``) connects to a running
scheduler; ``--scheduler local:N`` starts a ``LocalCluster`` of N single-threaded
workers. nbflow must be installed, at the driver's version, on the scheduler and on
every worker; that is checked on connect.
"""

from __future__ import annotations

import os
from typing import Any

from nbflow.errors import BackendError
from nbflow.run.options import RunOptions

CONNECT_TIMEOUT_S = 10.0
_HINT = ("start one with `dask scheduler` and `dask worker tcp://HOST:PORT`, pass "
         "--scheduler tcp://HOST:PORT (or set DASK_SCHEDULER_ADDRESS), or try --scheduler local:2")


class DaskBackend:
    name = "dask"

    def __init__(self, options: RunOptions) -> None:
        self.address = options.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or ""
        self.client: Any = None
        self.cluster: Any = None

    def connect(self) -> None:
        if not self.address:
            raise BackendError("--backend dask needs a Dask scheduler", hint=_HINT)
        try:
            import distributed
        except ImportError:
            raise BackendError("--backend dask needs the `distributed` package",
                               hint="pip install 'nbflow[dask]'") from None
        if self.address.startswith("local:"):
            self._start_local(distributed, self.address.removeprefix("local:"))
        else:
            self._connect(distributed)
        try:
            self._check_versions()
            self._wait_for_workers()
        except BaseException:
            self.close()
            raise

    def _start_local(self, distributed: Any, count: str) -> None:
        if not count.isdigit() or int(count) < 1:
            raise BackendError(f"--scheduler {self.address!r}: local:N needs a positive N",
                               hint="e.g. --scheduler local:2")
        import logging

        logging.getLogger("distributed").setLevel(logging.ERROR)  # nanny chatter on shutdown
        self.cluster = distributed.LocalCluster(
            n_workers=int(count), threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None)
        self.client = distributed.Client(self.cluster)

    def _connect(self, distributed: Any) -> None:
        import logging

        # A lost scheduler is reported by the task it failed, with what to do: the
        # client's own "Failed to reconnect" log line would only say it twice, worse.
        logging.getLogger("distributed.client").addFilter(_no_reconnect_error)  # once: a set
        timeout = float(os.environ.get("NBFLOW_DASK_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S))
        try:
            self.client = distributed.Client(self.address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendError(f"cannot reach the Dask scheduler at {self.address}: "
                               f"{type(exc).__name__}: {exc}", hint=_HINT) from None

    def _check_versions(self) -> None:
        from nbflow import __version__
        from nbflow.backends.dask.worker import nbflow_version

        where: dict[str, object] = {}
        try:
            where["the scheduler"] = self.client.run_on_scheduler(nbflow_version)
        except Exception as exc:
            where["the scheduler"] = exc
        for address, found in self.client.run(nbflow_version, on_error="return").items():
            where[f"worker {address}"] = found
        wrong = {w: v for w, v in where.items() if v != __version__}
        if wrong:
            found_text = "; ".join(
                f"{w}: {v if isinstance(v, str) else 'nbflow not importable (' + str(v) + ')'}"
                for w, v in sorted(wrong.items()))
            raise BackendError(
                f"the Dask cluster at {self.address} does not run this nbflow ({__version__}): "
                f"{found_text}",
                hint=f"install nbflow {__version__} where the scheduler and the workers run, "
                     "then restart them")

    def _wait_for_workers(self) -> None:
        if self.client.scheduler_info()["workers"]:
            return
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise BackendError(f"the Dask scheduler at {self.address} has no workers",
                               hint="start some: dask worker " + self.address) from None

    def describe(self) -> str:
        workers = self.client.scheduler_info()["workers"] if self.client else {}
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        return f"dask {self.address}, {len(workers)} workers, {threads} threads"

    def slots(self, requested: int) -> int:
        """Twice the cluster's threads: each worker has its next task already when one
        ends, instead of idling for a round trip to the driver. Dask queues the rest."""
        workers = self.client.scheduler_info()["workers"]
        return max(1, 2 * sum(w.get("nthreads", 1) for w in workers.values()))

    def executor(self, **context: Any) -> Any:
        from nbflow.backends.dask.executor import DaskExecutor

        return DaskExecutor(client=self.client, **context)

    def close(self) -> None:
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # closing after the scheduler died must not hide the run
                    pass


def _no_reconnect_error(record: Any) -> bool:
    return not record.getMessage().startswith("Failed to reconnect")
