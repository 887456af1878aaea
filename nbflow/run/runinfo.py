"""Facts about where and from what a run was made: git, user, host, versions."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass

# Distributions whose versions every run records (the task kernels add what they import).
# nbflow itself is recorded by its import name, whatever the distribution is called
# (``jupyter-nbflow`` on PyPI, where the name ``nbflow`` belongs to another project).
RECORDED_PACKAGES = (
    "papermill", "nbclient", "ipykernel", "jupyter_client", "duckdb", "pandas",
    "pyarrow", "cloudpickle", "fsspec", "numpy", "scikit-learn",
)


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    dirty: bool | None


def git_info(directory: str) -> GitInfo:
    """The commit checked out where the notebook lives, and whether the tree has changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return GitInfo(None, None)
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit, bool(status))


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")


def host() -> str:
    return socket.gethostname()


def python_version() -> str:
    return f"{platform.python_implementation()} {sys.version.split()[0]}"


def package_versions() -> dict[str, str]:
    """The versions of ``RECORDED_PACKAGES`` that are installed (and nbflow's own).

    Read from the ``*.dist-info/METADATA`` files found in one listing of each ``sys.path``
    directory, the distribution ``importlib.metadata`` would find first: importing
    ``importlib.metadata`` and asking it eleven times costs a fully cached run ≈50 ms.
    A name found only some other way (an ``.egg-info``, a zip on ``sys.path``) is asked
    of ``importlib.metadata`` after all."""
    from nbflow import __version__

    wanted = {_normalized(name): name for name in RECORDED_PACKAGES}
    found: dict[str, str] = {}
    unsure = False  # a path entry or metadata layout this scan does not read
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            unsure = unsure or os.path.isfile(entry)  # a zip: importlib reads it
            continue
        for item in names:
            if item.endswith(".egg-info"):
                unsure = True
                continue
            if not item.endswith(".dist-info"):
                continue
            name = wanted.get(_normalized(item[: -len(".dist-info")].partition("-")[0]))
            if name is None or name in found:
                continue
            version = _metadata_version(os.path.join(entry or ".", item, "METADATA"))
            if version is not None:
                found[name] = version
    if unsure and len(found) < len(RECORDED_PACKAGES):
        from importlib import metadata

        for name in RECORDED_PACKAGES:
            if name not in found:
                try:
                    found[name] = metadata.version(name)
                except metadata.PackageNotFoundError:
                    continue
    return {"nbflow": __version__, **{n: found[n] for n in RECORDED_PACKAGES if n in found}}


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _metadata_version(path: str) -> str | None:
    """The ``Version:`` header of a METADATA file (headers end at the first blank line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
                if not line.strip():
                    return None
    except OSError:
        return None
    return None
