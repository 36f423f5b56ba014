"""Where a stage's work runs: in this process or on a Dask cluster (docs/scale_out.md)."""

from creditflow.execution.executor import Executor, InProcess, executor_for

__all__ = ["Executor", "InProcess", "executor_for"]
