"""The ONNX Runtime GenAI model builder as a with-past route (``--route genai``): it writes ``model.onnx``
(fused ``GroupQueryAttention``, rotary inside the op, no ``position_ids``) and ``genai_config.json`` from
the local folder, in a child process (it prints progress and imports its own copies of the builders).
The graph is judged by the same generation parity as the exporters' graphs; the loop reads its packed
attention from the :class:`~.layout.CacheLayout`."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._util import first_line
from ..results import RouteAttempt
from .layout import CacheLayout

__all__ = ["INSTALL", "ROUTE", "GenaiBuild", "GenaiRoute", "build_genai", "genai_route", "installed"]

ROUTE = "genai"
INSTALL = "pip install 'onnxbridge[genai]'"
# what the builder writes that belongs beside model.onnx (its tokenizer files are the source's, copied anyway)
PRODUCTS = ("model.onnx", "model.onnx.data", "genai_config.json")


def installed() -> bool:
    """Whether ``onnxruntime_genai`` (its model builder) can be imported."""
    return importlib.util.find_spec("onnxruntime_genai") is not None


@dataclass(frozen=True)
class GenaiBuild:
    """What one builder run gave: the files written (``files``, empty when it failed), why it failed."""

    files: tuple[Path, ...]
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def build_genai(folder: Path, out: Path, *, precision: str = "fp32", provider: str = "cpu") -> GenaiBuild:
    """``python -m onnxruntime_genai.models.builder -i folder -o out -p precision -e provider`` (offline,
    its cache inside ``out``); the error names what the builder refused, or says the extra is missing."""
    t0 = time.perf_counter()
    if not installed():
        return GenaiBuild((), 0.0, f"not installed: {INSTALL}")
    work = out / "build"
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder), "-o", str(work)]
    cmd += ["-p", precision, "-e", provider, "-c", str(out / "cache")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0 or not (work / "model.onnx").is_file():
        return GenaiBuild((), seconds, _why(done.stderr + done.stdout, folder))
    return GenaiBuild(tuple(work / n for n in PRODUCTS if (work / n).is_file()), seconds)


def _why(output: str, folder: Path) -> str:
    """The builder's failure in a line: an unsupported architecture named as config.json names it."""
    import json

    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception)\b", ln)]
    last = (errors or lines or ["no output"])[-1][:300]
    if "not currently supported" in last or "NotImplementedError" in last:
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        arch = ", ".join(config.get("architectures") or []) or "this architecture"
        return f"the GenAI model builder does not support {arch} (model_type {config.get('model_type')!r})"
    if "tokenizer" in last.lower():
        return f"the GenAI model builder needs the folder's tokenizer files ({last})"
    return f"the GenAI model builder failed: {last}"


@dataclass(frozen=True)
class GenaiRoute:
    """The GenAI route's attempt; when it won, its graph's layout and opset (its files are in the folder
    ``genai_route`` was given) and the generation verdict that judged it (None: not validated)."""

    attempt: RouteAttempt
    layout: CacheLayout | None = None
    opset: int = 0
    generation: Any = None


def genai_route(folder: Path, into: Path, check: Callable[[Path], Any] | None) -> GenaiRoute:
    """Build ``folder`` with the GenAI model builder (fp32, CPU); ``check(dir)`` (generation parity over
    a folder holding the graph) judges it. When it passes, ``model.onnx``, its data and
    ``genai_config.json`` are moved into ``into``; else the attempt says why the route lost."""
    import onnx
    import onnxruntime as ort

    if not folder.is_dir():
        why = f"the GenAI model builder reads a Hugging Face folder; {folder} is a Python source"
        return GenaiRoute(RouteAttempt(ROUTE, False, 0.0, why, exported=False))
    work = into / f".{ROUTE}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        built = build_genai(folder, work)
        if not built.ok:
            return GenaiRoute(RouteAttempt(ROUTE, False, built.seconds, built.error, exported=False))
        graph = work / "build" / "model.onnx"
        t0 = time.perf_counter()
        try:
            session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
            layout = CacheLayout.from_graph(session, graph)
            generation = check(graph.parent) if check is not None else None
        except Exception as e:  # noqa: BLE001 - a graph ONNX Runtime cannot run is a lost route, reported
            why = f"ONNX Runtime could not run the GenAI graph: {first_line(e, 300)}"
            return GenaiRoute(RouteAttempt(ROUTE, False, built.seconds, why, exported=True, valid_onnx=False))
        seconds = built.seconds + time.perf_counter() - t0
        if generation is not None and not generation.passed:
            why = f"generation parity: {generation.summary()}"
            attempt = RouteAttempt(ROUTE, False, seconds, why, exported=True, valid_onnx=True, parity=False)
            return GenaiRoute(attempt, generation=generation)
        opset = next(
            (o.version for o in onnx.load(str(graph), load_external_data=False).opset_import if not o.domain), 0
        )
        for f in built.files:
            shutil.move(str(f), into / f.name)
        passed = None if generation is None else True
        attempt = RouteAttempt(ROUTE, True, seconds, exported=True, valid_onnx=True, parity=passed)
        return GenaiRoute(attempt, layout, opset, generation)
    finally:
        shutil.rmtree(work, ignore_errors=True)
