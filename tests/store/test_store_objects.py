"""The content-addressed object store on a real local disk and on fsspec's memory://."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import BinaryIO

import pytest

from nbflow.errors import StoreError
from nbflow.store.home import Home
from nbflow.store.objects import ObjectStore, hash_bytes


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_identical_bytes_are_stored_once(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    h1, n1 = store.put_bytes(b"hello")
    h2, n2 = store.put_stream(lambda f: f.write(b"hel") and f.write(b"lo"))
    h3, _ = store.put_bytes(b"other")
    assert (h1, n1) == (h2, n2) == (hash_bytes(b"hello"), 5)
    assert h3 != h1
    assert all_files(tmp_path / "objects") == sorted(
        [f"{h1[:2]}/{h1[2:]}", f"{h3[:2]}/{h3[2:]}"]
    )
    with store.open(h1) as f:
        assert f.read() == b"hello"
    assert store.local_path(h1) == str(tmp_path / "objects" / h1[:2] / h1[2:])


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))

    def write(f: BinaryIO) -> None:
        f.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.put_stream(write)
    assert all_files(tmp_path / "objects") == []
    assert not store.exists(hash_bytes(b"partial"))


def test_object_is_invisible_until_complete(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    final = store.path(hash_bytes(b"abcdef"))
    seen_during_write: list[bool] = []

    def write(f: BinaryIO) -> None:
        f.write(b"abc")
        seen_during_write.append(os.path.exists(final))
        f.write(b"def")

    store.put_stream(write)
    assert seen_during_write == [False]
    assert Path(final).read_bytes() == b"abcdef"
    assert all_files(tmp_path / "objects") == [os.path.relpath(final, tmp_path / "objects")]


def test_a_small_object_already_stored_is_not_written_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached re-run stores its foreach elements again: no temporary file, no fsync."""
    store = ObjectStore(str(tmp_path / "objects"))
    hash, _ = store.put_stream(lambda f: f.write(b"element"))
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    opened: list[str] = []
    real_open = open

    def tracking_open(path: str, *args: object, **kwargs: object) -> object:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", tracking_open)
    assert store.put_stream(lambda f: f.write(b"elem") and f.write(b"ent")) == (hash, 7)
    assert synced == [] and opened == []
    new, _ = store.put_stream(lambda f: f.write(b"new element"))  # a new one is made durable
    assert synced and Path(store.path(new)).read_bytes() == b"new element"
    assert all_files(tmp_path / "objects") == sorted(
        [f"{hash[:2]}/{hash[2:]}", f"{new[:2]}/{new[2:]}"])


def test_a_large_object_streams_through_a_temporary_file(tmp_path: Path) -> None:
    from nbflow.store.objects import SPOOL_BYTES

    store = ObjectStore(str(tmp_path / "objects"))
    chunk = os.urandom(SPOOL_BYTES // 3 + 1)
    seen_tmp: list[list[str]] = []

    def write(f: BinaryIO) -> None:
        for _ in range(4):
            f.write(chunk)
            seen_tmp.append(os.listdir(tmp_path / "objects" / ".tmp")
                            if (tmp_path / "objects" / ".tmp").exists() else [])

    hash, size = store.put_stream(write)
    assert size == 4 * len(chunk) and hash == hash_bytes(chunk * 4)
    assert [len(names) for names in seen_tmp] == [0, 0, 1, 1]  # spilled past SPOOL_BYTES
    assert Path(store.path(hash)).read_bytes() == chunk * 4
    assert all_files(tmp_path / "objects") == [f"{hash[:2]}/{hash[2:]}"]
    hash2, _ = store.put_stream(write)  # the same large bytes again: still one object
    assert hash2 == hash and all_files(tmp_path / "objects") == [f"{hash[:2]}/{hash[2:]}"]


def test_concurrent_writers_of_the_same_bytes(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    payload = os.urandom(1 << 20)
    results: list[tuple[str, int]] = []

    def put() -> None:
        results.append(store.put_stream(lambda f: f.write(payload)))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert all_files(tmp_path / "objects") == [f"{results[0][0][:2]}/{results[0][0][2:]}"]
    assert store.read_bytes(results[0][0]) == payload


def test_missing_object_and_bad_hash(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"), fsync=False)
    with pytest.raises(StoreError, match="missing"):
        store.open("0" * 32)
    with pytest.raises(StoreError, match="not an object hash"):
        store.path("../../etc/passwd")


def test_memory_home_object_store() -> None:
    home = Home(f"memory://nbflow-test-{uuid.uuid4().hex}")
    store = home.objects
    assert not store.is_local and store.local_path("0" * 32) is None
    h, n = store.put_stream(lambda f: f.write(b"x" * 1000))
    assert store.put_bytes(b"x" * 1000) == (h, n)
    assert store.exists(h) and store.read_bytes(h) == b"x" * 1000
    assert home.fs.ls(f"{home.root}/objects/{h[:2]}", detail=False) == [store.path(h)]

    def fail(f: BinaryIO) -> None:
        f.write(b"half")
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.put_stream(fail)
    assert home.fs.find(home.root) == [store.path(h)]
