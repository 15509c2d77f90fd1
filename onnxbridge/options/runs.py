"""Options of where the gate runs (executors) and of localisation (``debug``, ``validate --localize``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ._common import as_path

__all__ = ["ExecutorOptions", "LocalizeOptions"]


@dataclass(frozen=True)
class ExecutorOptions:
    """Where ``check`` runs each model's work: ``local`` processes, or tasks on a Ray cluster.

    ``kind`` names an executor of the registry (``gate/executors/registry.py``), which checks the name
    and what that executor takes (an address, shipping) before any work.

    ``address`` (Ray only) names a running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
    without one, a local Ray instance is started for the run. ``jobs``: local worker processes
    (None: 1, 0: one per CPU), or the CPUs of the local Ray instance (None or 0: every CPU); a
    cluster's own resources decide there. ``retries``: how often a model whose worker died
    (killed, out of memory; a Ray task or a local pool process) is run again before it is reported as an error. ``ship``: send the
    project folder to the cluster's workers (default: when an address is given).
    """

    kind: str = "local"
    address: str | None = None
    jobs: int | None = None
    retries: int = 2
    ship: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", (self.kind or "local").strip().lower())
        if self.address is not None and not self.address.strip():
            raise UsageError(
                f"--executor {self.kind}: with no address after the colon",
                "write --executor ray (a local Ray instance) or --executor ray:HOST:PORT",
            )
        if self.jobs is not None and (isinstance(self.jobs, bool) or self.jobs < 0):
            raise UsageError(f"--jobs {self.jobs}: must be 0 (one per CPU) or more", "pass --jobs N with N >= 1")
        if isinstance(self.retries, bool) or not 0 <= self.retries <= 10:
            raise UsageError(
                f"--retries {self.retries}: must be between 0 and 10",
                "a model whose worker keeps dying is an error after a few tries",
            )

    @classmethod
    def parse(cls, spec: str | ExecutorOptions | None, **kw: Any) -> ExecutorOptions:
        """``local``, ``ray`` or ``ray:ADDRESS`` (the rest after the first colon is the address)."""
        if isinstance(spec, ExecutorOptions):
            return dataclasses.replace(spec, **kw) if kw else spec
        kind, sep, address = (spec or "local").strip().partition(":")
        return cls(kind, address.strip() if sep else None, **kw)

    @property
    def shipped(self) -> bool:
        """Whether the project folder travels to the workers (it is not on their disks)."""
        return self.ship if self.ship is not None else self.address is not None

    def __str__(self) -> str:
        return self.kind + (f":{self.address}" if self.address else "")


@dataclass(frozen=True)
class LocalizeOptions:
    """How ``debug`` (and ``validate --localize``) localise a divergence: the memory budget for the
    intermediate values held at once, and the folder the minimal failing subgraph is written to."""

    budget_mb: float = 64.0
    repro_dir: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.budget_mb, (int, float)) or not math.isfinite(self.budget_mb) or self.budget_mb <= 0:
            raise UsageError(
                f"--budget-mb {self.budget_mb!r} must be a positive number of megabytes", "e.g. --budget-mb 64"
            )
        object.__setattr__(self, "budget_mb", float(self.budget_mb))
        object.__setattr__(self, "repro_dir", as_path(self.repro_dir))

    @property
    def budget_bytes(self) -> int:
        return int(self.budget_mb * (1 << 20))
