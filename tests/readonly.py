"""Running the real CLI on a read-only home.

As root, permission bits do not stop a write, so the home is made read-only with a bind
mount in a private mount namespace (``unshare -m``); as another user, ``chmod -R a-w``
does. Either way the test also compares a snapshot of the tree (paths, sizes, mtimes).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nbtest import nbflow_command

Runner = Callable[..., subprocess.CompletedProcess[str]]


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: (size, mtime in ns)."""
    state = {}
    for path in [root, *root.rglob("*")]:
        info = path.stat()
        state[str(path.relative_to(root))] = (info.st_size if path.is_file() else 0,
                                              info.st_mtime_ns)
    return state


def _can_bind_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / / 2>&1 || "
                            "mount --bind -o ro /tmp /tmp"], capture_output=True)
    return probe.returncode == 0


@contextlib.contextmanager
def read_only(home: Path) -> Iterator[Runner]:
    """A runner of ``nbflow ARGS`` (or ``program ARGS``) that sees ``home`` read-only (``$NBFLOW_HOME`` = home)."""
    env = {**os.environ, "NBFLOW_HOME": str(home)}
    if _can_bind_mount():
        def run(*args: str, cwd: Path, timeout: float = 240,
                program: list[str] | None = None) -> subprocess.CompletedProcess[str]:
            command = shlex.join([*(program or nbflow_command()), *args])
            script = f"mount --bind -o ro {shlex.quote(str(home))} {shlex.quote(str(home))} " \
                     f"&& exec {command}"
            return subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                                  text=True, env=env, cwd=cwd, timeout=timeout)
        yield run
        return
    if os.geteuid() == 0:
        pytest.skip("running as root without `unshare -m`: cannot make a home read-only")
    modes = {p: p.stat().st_mode for p in [home, *home.rglob("*")]}
    for path in modes:
        path.chmod(modes[path] & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def run_chmod(*args: str, cwd: Path, timeout: float = 240,
                  program: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*(program or nbflow_command()), *args], capture_output=True,
                              text=True,
                              env=env, cwd=cwd, timeout=timeout)
    try:
        yield run_chmod
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
