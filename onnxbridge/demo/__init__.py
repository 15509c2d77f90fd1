"""``onnxbridge demo``: the whole pipeline on bundled models, no downloads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..results import Report

__all__ = ["DEMO_MODELS", "DemoModel", "run_demo"]


@dataclass(frozen=True)
class DemoModel:
    name: str
    source: str
    inputs: tuple[str, ...]


DEMO_MODELS = (
    DemoModel("small_cnn", "onnxbridge.demo.models:small_cnn", ("pixel_values:batch,3,32,32:float32",)),
    DemoModel(
        "tiny_text_classifier",
        "onnxbridge.demo.models:tiny_text_classifier",
        ("input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"),
    ),
)


def run_demo(
    out_dir: str | Path = "onnxbridge-demo",
    *,
    provider: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> list[Report]:
    """Convert, simplify and validate each bundled model into ``out_dir``; write a report per model."""
    from ..api import convert
    from ..errors import InputError
    from ..overlays import write_with_overlays

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder", "choose another --out-dir")
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for m in DEMO_MODELS:
        say = (lambda text, n=m.name: progress(f"{n}: {text}")) if progress else None
        report = convert(m.source, out / f"{m.name}.onnx", inputs=m.inputs, provider=provider, progress=say)
        write_with_overlays(report, out / f"{m.name}.report.md")
        report.write(out / f"{m.name}.report.json")
        reports.append(report)
    return reports
