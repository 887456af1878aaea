"""What the package promises about platforms and its own name holds.

Peak memory is bytes on every OS, a system without POSIX locks or ``fork`` gets a clear
message instead of an AttributeError, the jupyter_client internals the kernel layer
overrides still exist in the installed version, and the distribution is
``jupyter-nbflow`` while everything a user types stays ``nbflow``.
"""

from __future__ import annotations

import os
import re
import resource
import sys
from pathlib import Path
from typing import Any

import pytest
from nbtest import ROOT


class _Usage:
    ru_maxrss = 2048


@pytest.mark.parametrize(("platform", "expected"), [("linux", 2048 * 1024), ("darwin", 2048)])
def test_peak_memory_is_bytes_on_linux_and_macos(
        monkeypatch: pytest.MonkeyPatch, platform: str, expected: int) -> None:
    from nbflow.kernel.runtime import peak_memory_bytes

    monkeypatch.setattr(resource, "getrusage", lambda who: _Usage())
    assert peak_memory_bytes(platform) == expected


def test_peak_memory_of_this_process_is_plausible() -> None:
    from nbflow.kernel.runtime import peak_memory_bytes

    assert 10 * 2**20 < peak_memory_bytes() < 64 * 2**30


def test_catalog_without_posix_locks_says_so(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from nbflow.errors import CatalogError
    from nbflow.store.catalog import Catalog

    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: import fails
    with pytest.raises(CatalogError, match="no POSIX file locks") as info:
        Catalog(tmp_path / "catalog.duckdb").create()
    assert "WSL" in str(info.value.hint)


def test_fork_mode_without_os_fork_says_so(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from nbflow.kernel._manager import KernelStartError
    from nbflow.kernel.launcher import KernelLauncher

    monkeypatch.delattr(os, "fork")
    with KernelLauncher(cwd=str(tmp_path), mode="fork") as launcher, \
            pytest.raises(KernelStartError, match="os.fork is not available"):
        launcher.start()


# Private members of jupyter_client that nbflow/kernel/_manager.py overrides or calls;
# pyproject pins jupyter_client below the next major version for them.
PRIVATE = {
    "jupyter_client.manager.KernelManager": (
        "_async_start_kernel", "_async_pre_start_kernel", "_async_launch_kernel",
        "_async_post_start_kernel"),
    "jupyter_client.asynchronous.AsyncKernelClient": ("_async_wait_for_ready",),
}


@pytest.mark.parametrize("owner", PRIVATE)
def test_jupyter_client_internals_we_override_exist(owner: str) -> None:
    import importlib

    module, name = owner.rsplit(".", 1)
    cls: Any = getattr(importlib.import_module(module), name)
    assert [m for m in PRIVATE[owner] if not hasattr(cls, m)] == []


def test_distribution_is_jupyter_nbflow_and_the_rest_is_nbflow() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    assert re.search(r'^name = "jupyter-nbflow"', pyproject, re.MULTILINE)
    assert re.search(r'^nbflow = "nbflow.cli.main:main"', pyproject, re.MULTILINE)
    assert '"jupyter_client>=8.6,<9"' in pyproject
    assert "pip install jupyter-nbflow" in (ROOT / "README.md").read_text()


def test_runs_record_nbflow_version_whatever_the_distribution_is_called() -> None:
    import nbflow
    from nbflow.run.runinfo import package_versions

    assert package_versions()["nbflow"] == nbflow.__version__


def test_recorded_package_versions_are_those_importlib_metadata_finds() -> None:
    from importlib import metadata

    from nbflow.run.runinfo import RECORDED_PACKAGES, package_versions

    expected = {}
    for name in RECORDED_PACKAGES:
        try:
            expected[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    assert {k: v for k, v in package_versions().items() if k != "nbflow"} == expected
