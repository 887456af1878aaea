"""A real JupyterLab for the browser tests: its own port, token, settings and config.

The nbflow server extension is enabled by a copy of the config file the wheel installs
(``jupyter-config/``), and the lab extension is loaded from this tree's build
(``nbflow/labextension``, made by ``pip install`` or ``cd labextension && jlpm build``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "nbflow" / "labextension"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "nbflow-lab-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_settings(root: Path, windowing: str) -> Path:
    settings = root / "settings" / "@jupyterlab"
    news = settings / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)  # no "get notified about news?" toast
    (news / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    tracker = settings / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": windowing}))
    return root / "settings"


@contextmanager
def jupyterlab(root: Path, work: Path, *, windowing: str = "full",
               extra_env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Start JupyterLab on ``work`` with nbflow's server and lab extensions; yield its URL."""
    config = root / "config"
    (config / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
    shipped = REPO / "jupyter-config" / "jupyter_server_config.d" / "nbflow.json"
    (config / "jupyter_server_config.d" / "nbflow.json").write_text(shipped.read_text())
    labext = root / "labextensions"
    labext.mkdir(exist_ok=True)
    if not (labext / "nbflow").exists():
        (labext / "nbflow").symlink_to(BUILT, target_is_directory=True)
    settings = write_settings(root, windowing)
    port = free_port()
    env = {**os.environ, "NBFLOW_HOME": str(work / ".nbflow"), "JUPYTER_CONFIG_DIR": str(config),
           **(extra_env or {})}
    log_path = root / "lab.log"
    log = open(log_path, "w")  # noqa: SIM115  (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.root_dir={work}", f"--IdentityProvider.token={TOKEN}",
         "--LabApp.expose_app_in_browser=True",
         f"--LabApp.extra_labextensions_path={labext}",
         f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
                time.sleep(0.3)
        _check_loads_this_build(url)
        yield {"url": url, "work": work, "out": root, "log": log_path}
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _check_loads_this_build(url: str) -> None:
    """The lab must load this tree's build, not the copy an install put in sys.prefix
    (the ``extra_labextensions_path`` comes first, so a build here wins)."""
    built = BUILT / "package.json"
    if not built.exists():
        return
    load = json.loads(built.read_text())["jupyterlab"]["_build"]["load"]
    page = urllib.request.urlopen(f"{url}/lab?token={TOKEN}", timeout=30).read().decode()
    assert load in page, f"JupyterLab does not load {BUILT} ({load} is not in its page config)"
