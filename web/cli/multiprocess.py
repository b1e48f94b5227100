"""The folder uvicorn's workers share their metrics through (prometheus-client's multiprocess mode).

prometheus-client chooses its mode when it is first imported, from
PROMETHEUS_MULTIPROC_DIR: set here before uvicorn starts its workers (each a
fresh interpreter), and read into the settings (`metrics_folder`). The folder
is new at every start, so no count of an earlier run is added in, and removed
at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

FOLDER = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """With several workers, a fresh folder for their metrics, named in the environment; else nothing."""
    if workers < 2:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="orders-metrics-")
    before = os.environ.get(FOLDER)
    os.environ[FOLDER] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(FOLDER, None)
        else:
            os.environ[FOLDER] = before
        shutil.rmtree(folder, ignore_errors=True)
