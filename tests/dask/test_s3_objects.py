"""The object store on moto's S3 server: a large object goes up in one exclusive PUT."""

from __future__ import annotations

import os

from nbflow.store.home import Home


def test_a_large_object_is_one_put_if_absent(s3, s3_home):
    import s3fs

    store = Home(s3_home).objects
    data = os.urandom(101 * 2**20)  # over s3fs's multipart threshold (2 × 50 MiB)
    hash, size = store.put_bytes(data)
    assert size == len(data)
    fs = s3fs.S3FileSystem()
    info = fs.info(store.path(hash), refresh=True)
    assert info["size"] == len(data)
    # A multipart upload's ETag ends in "-<parts>"; one PUT's is the plain MD5.
    assert "-" not in info["ETag"].strip('"'), info["ETag"]
    # Storing the same bytes again is a no-op, and the bytes read back intact.
    assert store.put_stream(lambda f: f.write(data)) == (hash, size)
    assert store.read_bytes(hash) == data
