"""Task runners for the sharded batch inference: threads in the flow's process, or a Dask cluster."""

from __future__ import annotations

from typing import Literal

TaskRunnerKind = Literal["thread", "dask"]


def make_task_runner(kind: TaskRunnerKind = "thread", address: str | None = None, workers: int = 2,
                     processes: bool = False):
    """A Prefect task runner.

    ``thread``: a thread pool of ``workers`` threads. ``dask``: prefect-dask's ``DaskTaskRunner`` on
    the scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786`` for a multi-machine cluster), or on a
    temporary local cluster of ``workers`` single-threaded workers (processes when ``processes``;
    threads otherwise, which start in seconds because they share the flow's Prefect client).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        import logging

        from prefect_dask import DaskTaskRunner

        logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster start/stop chatter
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                              "processes": processes, "dashboard_address": None})
    raise ValueError(f"task runner must be 'thread' or 'dask', got {kind!r}")
