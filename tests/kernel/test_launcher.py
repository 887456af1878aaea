"""KernelLauncher + execute_notebook on real kernels: fork, spawn, isolation, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from kernel_helpers import notebook, text_of
from papermill.exceptions import PapermillExecutionError

from nbflow.kernel.execute import CellTimeoutError, KernelDiedError, execute_notebook
from nbflow.kernel.launcher import KernelLauncher

ROOT = Path(__file__).resolve().parents[2]


def run(kernel, *sources: str, timeout: float | None = 30):
    return execute_notebook(notebook(*sources), kernel, cwd=kernel.cwd, timeout=timeout)


def test_forked_kernel_runs_a_notebook(launcher: KernelLauncher) -> None:
    kernel = launcher.start()
    try:
        assert kernel.mode == "fork" and kernel.fallback_reason is None
        assert kernel.km.has_kernel
        out = run(kernel, "x = 20", "print(x + 1)", "x * 2",
                  "import os; print(os.getpid(), os.getcwd(), os.environ['NBFLOW_TEST'])")
        assert text_of(out.cells[1]) == "21"
        assert text_of(out.cells[2]) == "40"
        pid, cwd, env = text_of(out.cells[3]).split()
        assert int(pid) == kernel.pid and cwd == kernel.cwd and env == "launcher"
    finally:
        kernel.shutdown()
    assert not psutil.pid_exists(kernel.pid)
    assert not Path(kernel.km.connection_file).exists()


def test_forked_kernels_are_isolated(launcher: KernelLauncher) -> None:
    a, b = launcher.start(), launcher.start(env={"NBFLOW_TASK": "b"})
    try:
        assert a.pid != b.pid
        run(a, "secret = 42")
        probe = "print('secret' in globals(), os.environ.get('NBFLOW_TASK'))"
        assert text_of(run(b, "import os", probe).cells[1]) == "False b"
        assert text_of(run(a, "import os", probe).cells[1]) == "True None"
        draws = [text_of(run(k, "import numpy as np; print(np.random.rand())").cells[0])
                 for k in (a, b)]
        assert draws[0] != draws[1], "forked kernels share numpy's random stream"
    finally:
        a.shutdown()
        b.shutdown()


def test_cell_error_raises_papermill_error(launcher: KernelLauncher) -> None:
    kernel = launcher.start()
    try:
        with pytest.raises(PapermillExecutionError) as err:
            run(kernel, "a = 1", "raise ValueError('bad value')", "never = 1")
        assert err.value.ename == "ValueError" and err.value.evalue == "bad value"
        assert err.value.exec_count == 2
    finally:
        kernel.shutdown()


def test_timeout_kills_a_hung_cell(launcher: KernelLauncher) -> None:
    kernel = launcher.start()
    began = time.monotonic()
    with pytest.raises(CellTimeoutError) as err:
        run(kernel, "x = 1", "while True: pass", timeout=2)
    assert time.monotonic() - began < 2 + 3
    assert isinstance(err.value, TimeoutError) and err.value.cell == 2
    assert "did not finish within 2 s" in str(err.value) and "killed" in str(err.value)
    assert not kernel.is_alive and not psutil.pid_exists(kernel.pid)


def test_a_kernel_that_dies_mid_cell_is_reported(launcher: KernelLauncher) -> None:
    kernel = launcher.start()
    try:
        with pytest.raises(KernelDiedError) as err:
            run(kernel, "import os, signal", "os.kill(os.getpid(), signal.SIGKILL)")
        assert err.value.exit_code == -9 and err.value.cell == 2
    finally:
        kernel.shutdown()


def test_interrupt_reaches_a_forked_kernel(launcher: KernelLauncher) -> None:
    kernel = launcher.start()
    try:
        timer = threading.Timer(1.0, kernel.km.interrupt_kernel)
        timer.start()
        with pytest.raises(PapermillExecutionError) as err:
            run(kernel, "import time", "time.sleep(60)")
        timer.join()
        assert err.value.ename == "KeyboardInterrupt"
        # Interrupted, not dead: the kernel keeps its state and runs the next notebook.
        assert text_of(run(kernel, "print(time.time() > 0)").cells[0]) == "True"
    finally:
        kernel.shutdown()


def test_preloaded_numpy_and_pandas_work_like_in_a_spawned_kernel(
    launcher: KernelLauncher, spawn_launcher: KernelLauncher
) -> None:
    cells = (
        "import numpy as np, pandas as pd, json\n"
        "from threadpoolctl import threadpool_info",
        "a = np.arange(40000, dtype=float).reshape(200, 200) % 7\n"
        "print(float((a @ a.T).sum()))",
        "df = pd.DataFrame({'k': list('abcab'), 'v': [1, 2, 3, 4, 5]})\n"
        "print(df.groupby('k').v.sum().to_dict())",
        "a @ a.T;\n"  # a BLAS call: the pool is at its working size afterwards
        "print(json.dumps(sorted(i['num_threads'] for i in threadpool_info()"
        " if i['internal_api'] == 'openblas')))",
    )
    results = {}
    for name, source in (("fork", launcher), ("spawn", spawn_launcher)):
        kernel = source.start()
        try:
            assert kernel.mode == name
            out = run(kernel, *cells)
            results[name] = [text_of(c) for c in out.cells[1:]]
        finally:
            kernel.shutdown()
    assert results["fork"][1] == "{'a': 5, 'b': 7, 'c': 3}"
    assert results["fork"] == results["spawn"]  # same sums, same BLAS thread counts
    assert "numpy" in launcher.preload_report()[sys.executable]["preloaded"]


def test_spawn_fallback_is_reported_and_runs_the_notebook(
    spawn_launcher: KernelLauncher, kernelspec_dir: Path
) -> None:
    kernel = spawn_launcher.start()
    try:
        assert kernel.mode == "spawn" and "spawn mode was requested" in kernel.fallback_reason
        assert text_of(run(kernel, "x = 2", "print(x * 21)").cells[1]) == "42"
    finally:
        kernel.shutdown()
    assert not psutil.pid_exists(kernel.pid)

    # A kernelspec jupyter_client must start with its own provisioner cannot be forked.
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "custom", "language": "python",
            "metadata": {"kernel_provisioner": {"provisioner_name": "local-provisioner"}}}
    (kernelspec_dir / "custom").mkdir()
    (kernelspec_dir / "custom" / "kernel.json").write_text(json.dumps(spec))
    with KernelLauncher(cwd=spawn_launcher.cwd) as auto:
        kernel = auto.start("custom")
        try:
            assert kernel.mode == "spawn" and "provisioner" in kernel.fallback_reason
            assert text_of(run(kernel, "print(6 * 7)").cells[0]) == "42"
        finally:
            kernel.shutdown()


def test_no_process_left_after_close(tmp_path: Path) -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with KernelLauncher(cwd=str(tmp_path), prestart=2) as lau:
        kernels = [lau.start() for _ in range(3)]
        kernels[0].shutdown()
        run(kernels[1], "import subprocess; p = subprocess.Popen(['sleep', '60'])")
        time.sleep(0.5)  # let the prestarter fill up
        spawned = kernels + [lau.start("python3")]
        during = {p.pid for p in me.children(recursive=True)} - before
        assert {k.pid for k in spawned[1:]} <= during
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p in me.children(recursive=True) if p.pid not in before]
        if not left:
            break
        time.sleep(0.05)
    assert not left, [(p.pid, p.status(), p.cmdline()) for p in left]
    alive = [pid for pid in during if _alive(pid)]
    assert not alive, [(pid, psutil.Process(pid).cmdline()) for pid in alive]


def _alive(pid: int) -> bool:
    """Still running: a zombie is dead (only its exit status is left, perhaps for PID 1)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


_MANY = textwrap.dedent(
    """
    import sys, concurrent.futures as cf
    from nbformat.v4 import new_code_cell, new_notebook
    from nbflow.kernel.launcher import KernelLauncher
    from nbflow.kernel.execute import execute_notebook
    nb = new_notebook(cells=[new_code_cell("print(6 * 7)")],
                      metadata={"kernelspec": {"name": "python3", "language": "python",
                                               "display_name": "p"}})
    def one(lau):
        k = lau.start()
        try:
            out = execute_notebook(nb, k, cwd=k.cwd, timeout=60)
            assert out.cells[0].outputs[0].text == "42\\n", out.cells[0].outputs
            return k.mode
        finally:
            k.shutdown()
    mode, count = sys.argv[1], int(sys.argv[2])
    with KernelLauncher(mode=mode) as lau, cf.ThreadPoolExecutor(4) as pool:
        modes = list(pool.map(lambda _: one(lau), range(count)))
    assert set(modes) == {mode}, modes
    print("ok", len(modes))
    """
)


@pytest.mark.parametrize(("mode", "count"), [("fork", 20), ("spawn", 3)])
def test_two_drivers_starting_kernels_concurrently_never_collide(
    tmp_path: Path, mode: str, count: int
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen([sys.executable, "-c", _MANY, mode, str(count)], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert out.split() == ["ok", str(count)]


def test_importing_the_launcher_does_not_import_papermill() -> None:
    code = "import sys, nbflow.kernel.launcher; print('papermill' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_closing_while_a_task_finds_the_fork_server_dead(tmp_path: Path) -> None:
    # Cancelling a run closes the launcher while task threads still ask it for the fork
    # server; one that finds it dead (being closed) drops it. That must not break close().
    lau = KernelLauncher(cwd=str(tmp_path))
    zygote, reason = lau._usable_zygote(sys.executable)
    assert zygote is not None, reason
    stop = zygote.close

    def close_while_a_task_asks() -> None:
        stop()
        lau._usable_zygote(sys.executable)  # what a task thread does at this moment

    zygote.close = close_while_a_task_asks  # type: ignore[method-assign]
    lau.close()
    assert not zygote.alive() and zygote.process.poll() is not None
