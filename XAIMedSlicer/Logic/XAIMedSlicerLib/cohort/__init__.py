"""Cohort runs on Dask: many cases x methods, each result in the one explanation layout, keyed by a hash.

* ``cases``: ``cases.csv`` (one row per case, paths relative to the CSV);
* ``keys``: the content hash of a result (image bytes, model weights, method, canonical parameters);
* ``plugin``: a distributed WorkerPlugin that loads each model once per worker;
* ``task``: the worker function (file paths in, result folder written atomically, a summary row out);
* ``runner``: the task graph on a LocalCluster or an existing scheduler, skipping finished keys;
* ``summary``: the per case x method table as CSV, Parquet and in a study database.
"""

from .cases import Case, read_cases  # noqa: F401
from .keys import result_key  # noqa: F401
from .runner import CohortRun, run_cohort, run_serial  # noqa: F401
