"""The Dask cluster and S3 server fixtures live in ``daskcluster`` (a module with a name of
its own: ``from conftest import ...`` would find whichever conftest was imported last)."""

from daskcluster import cluster, run_dask, s3, s3_home  # noqa: F401  (fixtures)
