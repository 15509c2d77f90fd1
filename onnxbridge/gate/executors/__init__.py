"""Where ``onnxbridge check`` runs each model's work: an executor takes tasks and yields their outcomes.

An executor runs :func:`~onnxbridge.gate.runner.run_task` for every task, somewhere, and yields one
:class:`~onnxbridge.gate.runner.Outcome` per task as soon as it finishes (in any order). It never
raises for one model's problem (a worker that died is an error outcome for that model), and it
never writes into the project: the caller writes what an outcome carries, one at a time. When the
caller stops early (Ctrl-C, or closing the iterator), the executor cancels the tasks still running.

- ``local`` (the default): this process, or a pool of worker processes (``--jobs``), where a model
  whose worker died is run again alone; no Ray import.
- ``ray``: one Ray task per model, with its own resource request, on a cluster or a local Ray
  instance started for the run (``onnxbridge[ray]``).

Each is declared by its module (``KIND``) and registered in ``registry.py`` (``EXECUTORS``).
"""

from __future__ import annotations

from .base import Executor, Progress, worker_died

__all__ = ["Executor", "Progress", "worker_died"]
