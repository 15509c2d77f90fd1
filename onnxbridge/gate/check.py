"""``onnxbridge check``: plan from the cache, run what changed (on an executor), write and record as results come.

Planning reads the manifest, ``stat``s and (only where needed) hashes the files each model depends
on, and compares the result with the model's last recorded pass. A model whose fingerprint is
unchanged is skipped; when every model is, neither onnx, onnxruntime, Ray nor any framework is imported.
The rest run on an executor (``gate/executors``: local processes or Ray tasks); each outcome is
handled here, in this process, as it arrives: ``--update``'s files are written (``gate/outputs``),
then the pass is recorded. Ctrl-C stops the run; the passes recorded until then are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import EXIT_USAGE, InputError, OnnxBridgeError
from ..options import ExecutorOptions
from .cache import (
    Cache,
    FileHasher,
    Fingerprint,
    package_versions,
    replay_packages,
    source_packages,
    state_dir,
)
from .deps import source_files
from .executors import Progress
from .executors.kind import ExecutorKind, ExecutorKinds
from .manifest import Manifest, ModelEntry, load_manifest
from .outputs import onnx_files, publish_update
from .results import UPDATE_HINT, CheckReport, GateStatus, Location, ModelResult
from .runner import Outcome, Task, missing_onnx

__all__ = ["check"]


@dataclass(frozen=True)
class _Plan:
    entry: ModelEntry
    task: Task | None = None
    result: ModelResult | None = None  # decided without running anything (unchanged, missing files)
    fingerprint: Fingerprint | None = None


def check(
    config: str | Path | None = None,
    *,
    models: Sequence[str] | None = None,
    jobs: int | None = None,
    update: bool = False,
    force: bool = False,
    cwd: str | Path | None = None,
    progress: Progress | None = None,
    executor: str | ExecutorOptions | None = None,
    retries: int | None = None,
    executors: ExecutorKinds | None = None,
) -> CheckReport:
    """Check every declared model (or those named in ``models``) and return a :class:`CheckReport`.

    ``config`` is the manifest (default: ``onnxbridge.toml`` or ``pyproject.toml`` found from ``cwd``
    upwards). ``executor``: ``local`` (default), ``ray`` or ``ray:ADDRESS``, or an
    :class:`~onnxbridge.options.ExecutorOptions`. ``jobs`` > 1 checks models in that many worker
    processes (0: one per CPU); with Ray, the CPUs of the local instance. ``retries``: how often a
    model whose Ray worker died is run again. ``update`` re-exports every selected model and rewrites
    its ONNX file and fixtures; ``force`` ignores the cache. A bad manifest raises ``ManifestError``
    (exit 2); problems of one model are in its result. ``executors``: the registry ``executor`` is looked
    up in (default ``gate/executors/registry.py``).
    """
    t0 = time.perf_counter()
    say = progress or (lambda _: None)
    extra = {k: v for k, v in (("jobs", jobs), ("retries", retries)) if v is not None}
    options = ExecutorOptions.parse(executor, **extra)
    if executors is None:
        from .executors.registry import EXECUTORS

        executors = EXECUTORS
    kind = executors.resolve(options)  # an unknown executor or option it does not take: exit 2 before any work
    manifest = load_manifest(config, cwd=cwd)
    selected = manifest.select(list(models or ()))
    recovered = _recover(manifest.root, selected)
    cache = Cache.load(manifest.root)
    hasher = FileHasher(manifest.root, cache.files)
    runtime = package_versions(replay_packages())
    plans = {e.name: _plan(e, manifest, cache, hasher, runtime, update=update, force=force) for e in selected}
    todo = [p.task for p in plans.values() if p.task is not None]
    keep = {m.name for m in manifest.models}
    try:
        done = _run(
            todo, kind, options, say, lambda o: _finish(plans[o.result.name], o, manifest, cache, hasher, runtime)
        )
    except BaseException:  # Ctrl-C: what passed and was written until now stays recorded
        cache.save(hasher.table, keep=keep)
        raise
    notes: list[str] = ([cache.note] if cache.note else []) + recovered
    results = tuple(plan.result or done[name] for name, plan in plans.items())
    note = cache.save(hasher.table, keep=keep)
    if note:
        notes.append(note)
    return CheckReport(
        config=str(manifest.path),
        root=str(manifest.root),
        results=results,
        seconds=time.perf_counter() - t0,
        update=update,
        jobs=options.jobs if options.jobs is not None else kind.default_jobs,
        notes=tuple(notes),
        executor=str(options),
    )


def _run(
    todo: list[Task],
    kind: ExecutorKind,
    options: ExecutorOptions,
    say: Progress,
    finish: Callable[[Outcome], ModelResult],
) -> dict[str, ModelResult]:
    """Run the tasks on the executor; each outcome is finished here, in this process, as it arrives."""
    done: dict[str, ModelResult] = {}
    if not todo:
        return done  # nothing to run: no executor started, Ray not even imported
    with contextlib.closing(kind.make(options).run(todo, say)) as outcomes:
        for outcome in outcomes:
            result = finish(outcome)
            done[result.name] = result
            say(f"{len(done)}/{len(todo)} done ({result.name}: {result.status})")
    return done


def _finish(
    plan: _Plan, outcome: Outcome, manifest: Manifest, cache: Cache, hasher: FileHasher, runtime: dict[str, str]
) -> ModelResult:
    """Write what the worker made (``--update``), then record the pass, unless it ran with other versions."""
    result, entry = outcome.result, plan.entry
    if outcome.staged is not None:
        try:
            publish_update(entry, manifest.root, state_dir(manifest.root), outcome.staged)
        except OSError as e:
            return replace(
                result,
                status=GateStatus.ERROR,
                exit_code=EXIT_USAGE,
                checks=(),
                worst=None,
                message=f"could not write {entry.onnx} and {entry.fixtures}: {e.strerror or e}",
                hint="make the folder writable (nothing was written for this model) and rerun "
                "onnxbridge check --update",
            )
    if result.status not in (GateStatus.PASSED, GateStatus.UPDATED):
        return result
    drift = version_drift(outcome.versions)
    if drift:
        return replace(result, notes=(*result.notes, f"not recorded as a pass: it ran with {', '.join(drift)}"))
    _record(plan, result, manifest, cache, hasher, runtime)
    return result


def version_drift(versions: dict[str, str]) -> list[str]:
    """Packages a worker ran with at another version than this environment's (``onnx 1.20 (here 1.21)``)."""
    here = package_versions(tuple(versions))
    return [f"{name} {v} (here {here[name]})" for name, v in sorted(versions.items()) if here.get(name) != v]


def _plan(
    entry: ModelEntry,
    manifest: Manifest,
    cache: Cache,
    hasher: FileHasher,
    runtime: dict[str, str],
    *,
    update: bool,
    force: bool,
) -> _Plan:
    where = manifest.location(entry)
    source = manifest.source_for_load(entry)
    if update:
        return _Plan(entry, Task(entry, str(manifest.root), where, source, "update", ("--update",)))
    onnx_sha = _onnx_digest(hasher, entry)
    if onnx_sha is None:
        return _Plan(entry, result=_error(entry, where, missing_onnx(entry)))
    fixtures_sha = hasher.digest(entry.fixtures)
    if fixtures_sha is None:
        return _Plan(
            entry,
            result=_error(
                entry,
                where,
                InputError(
                    f"fixtures file {entry.fixtures} of model '{entry.name}' does not exist",
                    f"{UPDATE_HINT} (the fixtures hold the golden inputs and outputs the ONNX file is replayed on)",
                ),
            ),
        )
    last = cache.last_pass(entry.name)
    framework = entry.framework or (last[1].get("framework") if last else None) or _guess_framework(entry)
    sources, notes = _sources(entry, manifest.root, hasher, last, cache.imports)
    fp = Fingerprint(
        entry.digest, onnx_sha, fixtures_sha, sources, runtime, package_versions(source_packages(framework))
    )
    if force or last is None:
        mode, reasons = "full", ["--force" if force else "no recorded pass"]
    else:
        old, rec = last
        if fp.source_key != old.source_key:
            mode, reasons = "full", fp.changes(old, source=True) or ["fingerprint changed"]
            reasons += [r for r in fp.changes(old, source=False) if r not in reasons]
        elif fp.replay_key != old.replay_key:
            mode, reasons = "replay", fp.changes(old, source=False) or ["fingerprint changed"]
        else:
            result = ModelResult(
                name=entry.name,
                status=GateStatus.UNCHANGED,
                location=where,
                onnx=entry.onnx,
                source=entry.source,
                message=f"since its pass at {rec.get('passed_at', '?')}: {rec.get('summary', '')}".rstrip(": "),
                framework=rec.get("framework"),
                notes=notes,
                last_passed=rec.get("passed_at"),
            )
            return _Plan(entry, result=result, fingerprint=fp)
    task = Task(entry, str(manifest.root), where, source, mode, tuple(reasons))
    return _Plan(entry, task, fingerprint=fp)


def _recover(root: Path, entries: Sequence[ModelEntry]) -> list[str]:
    """Finish (or clear away) what a killed run left beside the models' files and in ``.onnxbridge/``."""
    from ..publish import recover

    folders = {root / ".onnxbridge"} | {(root / p).parent for e in entries for p in (e.onnx, e.fixtures)}
    return recover(*folders)


def _onnx_digest(hasher: FileHasher, entry: ModelEntry) -> str | None:
    """The ONNX file's sha256, combined with its external data's when it has some."""
    onnx_rel, data_rel = onnx_files(entry)
    onnx_sha = hasher.digest(onnx_rel)
    data_sha = hasher.digest(data_rel) if onnx_sha is not None else None
    if data_sha is None:
        return onnx_sha
    return hashlib.sha256(f"{onnx_sha}+{data_sha}".encode()).hexdigest()


def _sources(
    entry: ModelEntry, root: Path, hasher: FileHasher, last, imports: dict[str, list]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Hashes of the model's source files; the recorded list is reused while none of them changed,
    and a rescan parses only the files that did (``imports``)."""
    if last is not None and not entry.watch:
        old = last[0]
        if (
            old.entry == entry.digest
            and old.sources
            and all(hasher.digest(rel) == sha for rel, sha in old.sources.items())
        ):
            return dict(old.sources), ()
    found = source_files(entry, root, imports)
    hashes = {rel: hasher.digest(rel) for rel in found.files}
    return {k: v for k, v in hashes.items() if v is not None}, found.notes


def _guess_framework(entry: ModelEntry) -> str | None:
    """The framework a model file's suffix names (Python sources are known once loaded)."""
    if entry.source_file is not None or not Path(entry.source).suffix:
        return None
    from ..converters.registry import default_registry

    return default_registry().for_suffix(Path(entry.source).suffix)


def _error(entry: ModelEntry, where: Location, e: OnnxBridgeError) -> ModelResult:
    return ModelResult(
        name=entry.name,
        status=GateStatus.ERROR,
        location=where,
        onnx=entry.onnx,
        source=entry.source,
        message=e.message,
        hint=e.hint,
        exit_code=e.exit_code,
    )


def _record(
    plan: _Plan, result: ModelResult, manifest: Manifest, cache: Cache, hasher: FileHasher, runtime: dict[str, str]
) -> None:
    """Remember a pass; after --update the fingerprint is taken again from the files just written."""
    entry = plan.entry
    framework = result.framework or (cache.models.get(entry.name) or {}).get("framework")
    fp = plan.fingerprint
    if fp is None:  # --update
        for rel in (*onnx_files(entry), entry.fixtures):
            hasher.table.pop(rel, None)
        onnx_sha, fixtures_sha = _onnx_digest(hasher, entry), hasher.digest(entry.fixtures)
        if onnx_sha is None or fixtures_sha is None:
            return
        sources, _ = _sources(entry, manifest.root, hasher, None, cache.imports)
        fp = Fingerprint(
            entry.digest, onnx_sha, fixtures_sha, sources, runtime, package_versions(source_packages(framework))
        )
    else:
        for rel in (*onnx_files(entry), entry.fixtures):  # changed while checked (a concurrent --update)?
            hasher.table.pop(rel, None)
        if (_onnx_digest(hasher, entry), hasher.digest(entry.fixtures)) != (fp.onnx, fp.fixtures):
            return
        if result.framework:  # the framework is known for sure once the source was loaded
            fp = replace(fp, export_versions=package_versions(source_packages(result.framework)))
    cache.record_pass(
        entry.name, fp, [*onnx_files(entry), entry.fixtures, *fp.sources], framework=framework, summary=result.message
    )
