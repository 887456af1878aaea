"""Facts about where and from what a run was made: git, user, host, versions."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

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
    from nbflow import __version__

    found = {"nbflow": __version__}
    for name in RECORDED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
