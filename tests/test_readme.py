"""Every command in the README works when pasted in order, after the first one.

The blocks of ``README.md`` and then of ``example_notebooks/README.md`` run in
document order, in one temporary copy of ``example_notebooks/`` with a fresh home
(``./.nbflow`` of that folder, no ``NBFLOW_HOME``), from its root, as a newcomer at
the repository's root would:

* a ```` ```bash ```` block runs line by line (``\\``-continued lines joined), each line
  with ``bash -c``; it must exit 0 and print no traceback. ``pip install`` lines are
  skipped: the test environment is that installation.
* a ```` ```python ```` block runs as one script with the test's Python.
* a block directly preceded by a line ``<!-- readme-test: skip: REASON -->`` is not
  run (notebook cells, line magics, a command that needs a cluster or a browser, this
  test suite itself). Every other bash or python block runs: a new section's commands
  are tested unless it says why not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from nbtest import EXAMPLES, ROOT

READMES = (ROOT / "README.md", EXAMPLES / "README.md")
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    readme: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip: str | None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, with their skip reasons."""
    found, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None or not opening.group(1):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = lines[i - 1] if i > 0 else ""
        reason = SKIP.search(before)
        found.append(Block(path.name, i + 1, opening.group(1), "\n".join(lines[i + 1:end]),
                           reason.group(1) if reason else None))
        i = end + 1
    return found


def commands(code: str) -> list[str]:
    """A bash block's commands: one per line, backslash continuations joined."""
    joined = code.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_block_parser_sees_skips_and_commands(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("<!-- readme-test: skip: needs a cluster -->\n```bash\ndask scheduler\n```\n"
                  "text\n```bash\n# comment\nnbflow runs \\\n  --help   # trailing\n```\n")
    first, second = blocks(md)
    assert first.skip == "needs a cluster" and second.skip is None
    assert commands(second.code) == ["nbflow runs    --help   # trailing"]


def _run(block: Block, cwd: Path, env: dict[str, str]) -> None:
    where = f"{block.readme} line {block.line}"
    if block.language == "python":
        done = subprocess.run([sys.executable, "-c", block.code], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{where}: python block failed\n{done.stderr}"
        return
    for command in commands(block.code):
        if command.startswith("pip install"):
            continue
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{where}: `{command}` exited {done.returncode}\n{output}"
        assert "Traceback (most recent call last)" not in output, f"{where}: `{command}`\n{output}"


def test_readme_commands_work_in_order(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(EXAMPLES, work / "example_notebooks",
                    ignore=shutil.ignore_patterns(".nbflow", "*.executed.ipynb", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBFLOW_")}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    ran = []
    for readme in READMES:
        for block in blocks(readme):
            if block.skip is None and block.language in ("bash", "python"):
                _run(block, work, env)
                ran.append(f"{block.readme}:{block.line}")
    assert len(ran) >= 5, ran
    assert (work / ".nbflow" / "catalog.duckdb").exists()
    assert not (work / "example_notebooks" / ".nbflow").exists()  # one home, at the root


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_every_block_runs_or_says_why_not(readme: Path) -> None:
    for block in blocks(readme):
        if block.language not in ("bash", "python"):
            assert block.skip is not None or block.language in ("", "text", "yaml", "json"), block
