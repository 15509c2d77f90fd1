"""The executors ``check --executor`` knows: one registration line per executor."""

from __future__ import annotations

from . import local, ray_tasks
from .kind import ExecutorKinds

__all__ = ["EXECUTORS"]

EXECUTORS = ExecutorKinds()
EXECUTORS.register(local.KIND)
EXECUTORS.register(ray_tasks.KIND)
