"""Real reports validate against the published JSON Schemas (docs/schema/), non-finite metrics included."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tests.parity import onnx_models

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schema"


def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for one schema, with the others registered for cross-file $refs."""
    from referencing import Registry, Resource

    schemas = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.schema.json")}
    registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in schemas.values()]
        + [(n, Resource.from_contents(s)) for n, s in schemas.items()]
    )
    schema = schemas[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def check(name: str, data: dict) -> dict:
    errors = sorted(validator(name).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    return data


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("schema")
    onnx_models.save(onnx_models.mlp(), folder / "mlp.onnx")
    onnx_models.save(onnx_models.flatten_rows(), folder / "good.onnx")
    onnx_models.save(onnx_models.flatten_rows(fixed_batch=2), folder / "baked.onnx")
    onnx_models.save(_scale(1.0), folder / "one.onnx")
    onnx_models.save(_scale(0.0, divide=True), folder / "inf.onnx")
    return folder


def _scale(k: float, divide: bool = False):
    """y = x * k, or y = x / k (x / 0 is infinite)."""
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(np.array(k, np.float32), "k")
    return onnx_models._model(
        [helper.make_node("Div" if divide else "Mul", ["x", "k"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [const],
    )


def test_convert_report_matches_the_schema(run_cli, tmp_path):
    rep = tmp_path / "r.json"
    r = run_cli(
        "convert",
        "onnxbridge.demo.models:small_cnn",
        "-o",
        tmp_path / "cnn.onnx",
        "--input",
        "pixel_values:batch,3,32,32",
        "--report",
        rep,
    )
    assert r.code == 0, r.err
    d = check("report.schema.json", json.loads(rep.read_text()))
    assert d["command"] == "convert" and d["validation"]["cases"][0]["kind"] == "seed"
    assert {c["kind"] for c in d["validation"]["cases"]} == {"seed", "axis"}


def test_a_failing_validation_with_infinite_errors_writes_valid_json(run_cli, files):
    """An output off by infinity: --json must not crash on it, and the schema says null."""
    r = run_cli("validate", files / "one.onnx", files / "inf.onnx", "--json")
    assert r.code == 1
    d = check("report.schema.json", json.loads(r.out))
    out = d["validation"]["cases"][0]["outputs"][0]
    assert out["max_abs"] is None and out["passed"] is False and "Inf" in out["nan_or_inf"]
    assert d["validation"]["histogram_edges"][-1] is None


def test_a_sweep_break_is_typed_in_the_json(run_cli, files):
    """Cases carry their kind, axis, size and the side that failed: nothing to parse out of a label."""
    r = run_cli("validate", files / "good.onnx", files / "baked.onnx", "--json")
    assert r.code == 1
    d = check("report.schema.json", json.loads(r.out))
    broken = [c for c in d["validation"]["cases"] if not c["passed"]]
    assert [(c["kind"], c["axis"], c["size"]) for c in broken] == [
        ("axis", "batch", 1),
        ("axis", "batch", 5),
        ("axis", "batch", 11),
    ]
    assert {c["failed_side"] for c in broken} == {"candidate"}
    assert d["validation"]["broken_axes"] == {"batch": [1, 5, 11]}


def test_simplify_optimize_bench_and_inspect_reports_match_their_schemas(run_cli, files, tmp_path):
    r = run_cli("simplify", files / "mlp.onnx", "-o", tmp_path / "s.onnx", "--optimize", "cpu", "--json")
    assert r.code == 0, r.err
    d = check("report.schema.json", json.loads(r.out))
    assert d["optimize"]["target"] == "cpu"
    r = run_cli("bench", files / "mlp.onnx", "--runs", "3", "--warmup", "0", "--batch", "1,2", "--json")
    assert r.code == 0, r.err
    d = check("report.schema.json", json.loads(r.out))
    assert [row["batch"] for row in d["bench"]["results"]] == [1, 2]
    r = run_cli("inspect", files / "mlp.onnx", "--json")
    d = check("inspect.schema.json", json.loads(r.out))
    assert d["command"] == "inspect" and d["onnxbridge_version"]


def test_bench_against_a_source_that_disagrees_writes_valid_json(tmp_path, write_py):
    """The source's outputs differ from the ONNX model's: reference_parity says so, the JSON stays valid."""
    from onnxbridge import bench

    src = write_py(
        "m.py",
        """
        import torch

        def net():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(16, 10)).eval()
    """,
    )
    onnx_models.save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    report = bench(tmp_path / "mlp.onnx", source=f"{src}:net", inputs=["x:batch,16"], runs=2, warmup=0)
    d = check("report.schema.json", report.to_dict())
    assert d["bench"]["reference_parity"][0]["passed"] is False
    assert d["bench"]["speedup_vs_reference"] == d["bench"]["results"][0]["speedup_vs_reference"]
    assert np.isfinite(d["bench"]["speedup_vs_reference"])
