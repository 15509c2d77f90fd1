"""Tiny ONNX models for the overlay tests: a 60-node chain, right and with a planted weight error."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.localize.onnx_chain import chain

BAD_WEIGHT = "W5"  # scaled by 1.5: node mm5 is the first to diverge


@pytest.fixture(scope="session")
def chain_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("overlay-chain")
    paths = {"good": folder / "good.onnx", "bad": folder / "bad.onnx", "same": folder / "same.onnx"}
    onnx.save(chain(), paths["good"])
    onnx.save(chain(), paths["same"])
    onnx.save(chain(scale={BAD_WEIGHT: 1.5}), paths["bad"])
    return paths
