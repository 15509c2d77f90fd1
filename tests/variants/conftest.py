"""Shared files for the variant tests: the engineered classifier, its cluster inputs as fixtures, and
small timing settings (speed is gated in these tests only through --min-speedup 0 or an impossible rule:
timing on a shared machine is not a unit-test signal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.variants import models

FAST = {"warmup": 1, "runs": 3, "rounds": 1}


@pytest.fixture(scope="session")
def classifier_files(tmp_path_factory) -> Path:
    """classifier.onnx and clusters.npz (8 cases of 4 points: even cases calibrate, odd ones judge)."""
    import onnx

    from onnxbridge.parity.fixtures import write_fixtures

    folder = tmp_path_factory.mktemp("classifier")
    onnx.save(models.classifier_onnx(), str(folder / "classifier.onnx"))
    write_fixtures(
        folder / "clusters.npz", inputs=[(f"c{i}", {"x": models.cluster_inputs(4, 100 + i)[0]}) for i in range(8)]
    )
    return folder


@pytest.fixture
def classifier(classifier_files, tmp_path) -> Path:
    """A private copy of classifier.onnx (variants are written beside it)."""
    import shutil

    return Path(shutil.copy(classifier_files / "classifier.onnx", tmp_path / "classifier.onnx"))


def rerun(path: Path, x):
    """The file's outputs on ONNX Runtime CPU, straight (no onnxbridge code in between)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
