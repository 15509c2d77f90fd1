"""The work on one model, in this process or a worker: replay, check against the source, re-export, update.

- ``replay``: the golden fixtures on the committed ONNX file (ONNX Runtime only, no framework);
- ``full``: replay, then the committed ONNX file against the source on the fixtures' inputs, then a
  fresh export into a temporary folder, validated against the source (skipped with ``reexport = false``);
- ``update``: export the source, validate it, and only when parity holds stage the ONNX file (and its
  external data) and the fixtures (the source's outputs on the validation inputs) in a scratch folder:
  the submitting process publishes them (``gate/outputs.py``), never the worker, which may run on
  another machine.

Frameworks and ONNX Runtime are imported here, inside the functions, never by the planner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_INTERNAL, EXIT_OK, EXIT_PARITY, InputError, OnnxBridgeError
from ..options.providers import provider_label
from ..results import ParityReport
from ..sources import on_sys_path
from .manifest import ModelEntry
from .outputs import StagedFiles
from .results import UPDATE_HINT, GateStatus, Location, ModelResult, worst_of

if TYPE_CHECKING:
    from ..parity.check import OnePassCheck
    from ..runtime.sessions import OrtRunner

__all__ = ["Task", "Outcome", "run_task", "missing_onnx", "MODES"]

MODES = ("replay", "full", "update")

_WHAT = {
    "replay": "the committed ONNX file no longer reproduces its golden outputs",
    "source": "the committed ONNX file no longer matches its source",
    "export": "a fresh export no longer matches the source",
    "update": "the fresh export does not match the source; nothing was written",
}


@dataclass(frozen=True)
class Task:
    """One model to check; everything a worker process needs, picklable."""

    entry: ModelEntry
    root: str
    location: Location
    source: str  # the SOURCE with its file made absolute
    mode: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What a worker hands back: the model's result and, after ``--update``, the files to write."""

    result: ModelResult
    staged: StagedFiles | None = None
    versions: dict[str, str] = field(default_factory=dict)  # where it ran, when not in this environment


def run_task(task: Task) -> Outcome:
    """Check one model; never raises: errors become a result with their exit code."""
    t0 = time.perf_counter()
    staged = None
    try:
        if task.mode == "update":
            result, staged = _update(task)
        else:
            result = _check(task)
    except OnnxBridgeError as e:
        result = _result(task, GateStatus.ERROR, e.message, hint=e.hint, exit_code=e.exit_code)
    except Exception as e:  # a bug below us; keep checking the other models
        result = _result(
            task,
            GateStatus.ERROR,
            f"internal error: {type(e).__name__}: {str(e).strip()[:300]}",
            hint="rerun with --debug --jobs 1 and report it if it looks like a bug",
            exit_code=EXIT_INTERNAL,
        )
    return Outcome(dataclasses.replace(result, seconds=time.perf_counter() - t0), staged)


def _result(task: Task, status: GateStatus, message: str, **kw) -> ModelResult:
    return ModelResult(
        name=task.entry.name,
        status=status,
        location=task.location,
        onnx=task.entry.onnx,
        source=task.entry.source,
        reasons=task.reasons,
        message=message,
        **kw,
    )


@contextlib.contextmanager
def _project_imports(root: str) -> Iterator[None]:
    """Import the project's modules afresh from ``root``, and forget them afterwards.

    ``package.module:NAME`` sources import from the project root whatever the working directory.
    A module of the project imported earlier in this process (an older version of a helper, or a
    same-named module of another project) must not stand in for the file as it is now.
    """
    installed = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}

    def ours(name: str) -> bool:
        if name.startswith("_onnxbridge_src_"):
            return True
        if name == "onnxbridge" or name.startswith("onnxbridge."):
            return False
        file = getattr(sys.modules.get(name), "__file__", None)
        return (
            file is not None and _inside(file, root) and not any(_inside(file, prefix) for prefix in installed)
        )  # a venv inside the project

    for name in [n for n in list(sys.modules) if ours(n)]:
        sys.modules.pop(name, None)
    before = set(sys.modules)
    try:
        with on_sys_path(Path(root)):
            yield
    finally:
        for name in [n for n in set(sys.modules) - before if ours(n)]:
            sys.modules.pop(name, None)


def _inside(file: str, root: str) -> bool:
    try:
        return Path(file).resolve().is_relative_to(Path(root).resolve())
    except (OSError, ValueError):
        return False


def _check(task: Task) -> ModelResult:
    from ..parity.cases import fixture_cases
    from ..parity.check import one_pass
    from ..parity.fixtures import FixtureRunner, read_fixtures
    from ..publish import locked, scratch_dir
    from ..runtime.sessions import OrtRunner
    from .cache import state_dir

    entry, root = task.entry, Path(task.root)
    onnx_path = root / entry.onnx
    # shared: a concurrent --update publishes the pair under the exclusive lock, never mid-read
    with locked({onnx_path.parent, (root / entry.fixtures).parent}, shared=True):
        golden = read_fixtures(root / entry.fixtures, hint=UPDATE_HINT, where=str(task.location))
        if not golden.inputs or not golden.outputs or golden.legacy:
            raise InputError(
                f"fixtures file {entry.fixtures} does not hold matching inputs and outputs ({task.location})",
                UPDATE_HINT,
            )
        if not onnx_path.is_file():
            raise missing_onnx(entry)
        committed = OrtRunner(onnx_path, entry.provider)
    # the check convert and --update judged the committed file with: outputs computed in float16 / bfloat16
    # are judged at that type's tolerances here too
    check = one_pass(
        tolerances=entry.parity_config().tolerances, candidate=committed.model, cases=fixture_cases(golden.inputs)
    )
    reports: dict[str, ParityReport] = {}
    replay = FixtureRunner(
        golden, golden.inputs, committed.output_names, hint="the ONNX file's outputs were renamed; " + UPDATE_HINT
    )
    reports["replay"] = check.report(replay, committed)
    framework = None
    route = None
    notes: list[str] = []
    if task.mode == "full" and reports["replay"].passed:
        with _project_imports(task.root):
            framework, notes, reports["source"] = _against_source(task, committed, check)
            del committed  # the source model and both sessions are gone before the re-export loads them anew
            if reports["source"].passed and entry.reexport:
                export = _export(task, scratch_dir(state_dir(root)))
                route = export.conversion.route if export.conversion else None
                if export.validation is not None:
                    reports["export"] = export.validation
    return _verdict(task, reports, framework, route, tuple(notes))


def _against_source(task: Task, committed: OrtRunner, check: OnePassCheck) -> tuple[str, list[str], ParityReport]:
    """(framework, notes, parity of the committed ONNX file against the source); the source model
    is released on return (a large model is never held twice)."""
    from ..api._stages import load_source

    converter, loaded = load_source(task.source, task.entry.export_options())
    report = check.report(converter.reference_runner(loaded), committed)
    return converter.framework, list(loaded.notes), report


def _verdict(
    task: Task, reports: dict[str, ParityReport], framework: str | None, route: str | None, notes: tuple[str, ...]
) -> ModelResult:
    checks = tuple(reports)
    failed = next((name for name, r in reports.items() if not r.passed), None)
    if failed is not None:
        worst = worst_of(failed, reports[failed])
        message = f"{_WHAT[failed]}: {worst.describe() if worst else reports[failed].summary()}"
        hint = (
            "if the change is intended, run `onnxbridge check --update` and commit the new ONNX file and fixtures"
            if failed in ("replay", "source")
            else "the exporter changed or the source exports differently now; see the validation in --json"
        )
        return _result(
            task,
            GateStatus.FAILED,
            message,
            hint=hint,
            exit_code=EXIT_PARITY,
            checks=checks,
            worst=worst,
            framework=framework,
            validations=reports,
            notes=notes,
        )
    replay = reports["replay"]
    worst = max(
        (w for w in (worst_of(n, r) for n, r in reports.items()) if w and w.max_abs is not None),
        key=lambda w: w.max_abs or 0.0,
        default=None,
    )  # max_abs is set on every one kept
    parts = [f"replay {len(replay.cases)} case(s) on {provider_label(replay.provider_used)}"]
    if "source" in reports:
        parts.append(f"source ({framework}) {len(reports['source'].cases)} case(s)")
    if "export" in reports:
        parts.append(f"re-export ({route}) {len(reports['export'].cases)} case(s)")
    if worst is not None:
        parts.append(f"worst max_abs {worst.max_abs:.3g}")
    return _result(
        task,
        GateStatus.PASSED,
        ", ".join(parts),
        exit_code=EXIT_OK,
        checks=checks,
        worst=worst,
        framework=framework,
        validations=reports,
        notes=notes,
    )


def _export(task: Task, folder: Path, *, save: bool = False):
    """``convert`` of the entry into ``folder`` (removed by the caller), validated against the source;
    the ONNX file is named as the entry's, so its external data (if any) is named for its place."""
    import shutil

    from ..api import convert_with

    files = {"save_inputs": folder / "inputs.npz", "save_outputs": folder / "outputs.npz"} if save else {}
    try:
        return convert_with(task.source, folder / Path(task.entry.onnx).name, task.entry.convert_options(**files))
    finally:
        if not save:
            shutil.rmtree(folder, ignore_errors=True)


def _update(task: Task) -> tuple[ModelResult, StagedFiles | None]:
    import shutil

    from ..publish import scratch_dir
    from .cache import state_dir
    from .outputs import stage_update

    entry, root = task.entry, Path(task.root)
    folder = scratch_dir(state_dir(root))  # same file system as the outputs: publishing renames
    staged = None
    try:
        with _project_imports(task.root):
            report = _export(task, folder, save=True)
        validation = report.validation
        assert validation is not None
        route = report.conversion.route if report.conversion else None
        if not validation.passed:
            worst = worst_of("update", validation)
            return _result(
                task,
                GateStatus.FAILED,
                f"{_WHAT['update']}: {worst.describe() if worst else validation.summary()}",
                hint="fix the model or the export (see onnxbridge convert for details); the committed "
                "files were left as they were",
                exit_code=EXIT_PARITY,
                checks=("update",),
                worst=worst,
                framework=report.framework,
                validations={"update": validation},
            ), None
        staged = stage_update(entry, folder, report, route)  # published by the submitting process
    finally:
        if staged is None:
            shutil.rmtree(folder, ignore_errors=True)
    worst = worst_of("update", validation)
    message = f"wrote {entry.onnx} ({route}) and {entry.fixtures} ({len(validation.cases)} case(s))" + (
        f", worst max_abs {worst.max_abs:.3g}" if worst and worst.max_abs is not None else ""
    )
    return _result(
        task,
        GateStatus.UPDATED,
        message,
        exit_code=EXIT_OK,
        checks=("update",),
        worst=worst,
        framework=report.framework,
        validations={"update": validation},
        notes=report.notes,
    ), staged


def missing_onnx(entry: ModelEntry) -> InputError:
    """The error of a model whose committed ONNX file is gone."""
    return InputError(
        f"ONNX file {entry.onnx} of model '{entry.name}' does not exist",
        f"restore it (git checkout -- {entry.onnx}), or {UPDATE_HINT} on purpose",
    )
