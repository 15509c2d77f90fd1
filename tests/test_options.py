"""Option objects: built once, checked on construction, the constants in one place."""

from __future__ import annotations

import pytest

from onnxbridge.errors import UsageError
from onnxbridge.options import (
    BenchConfig,
    ConvertOptions,
    ExportOptions,
    OptimizeOptions,
    ParityConfig,
    TimingPlan,
    Tolerance,
    Tolerances,
    VariantOptions,
)


def test_export_options_parse_input_specs_once():
    e = ExportOptions(("x:batch,3", "ids:batch,seq:int64"), "pytorch", 18, ("torchscript",))
    assert [s.name for s in e.inputs] == ["x", "ids"] and e.inputs[1].dtype == "int64"
    assert ExportOptions(e.inputs).inputs == e.inputs  # TensorSpecs pass through
    with pytest.raises(UsageError, match="malformed --input"):
        ExportOptions(("x:batch,,3",))
    with pytest.raises(UsageError, match="--opset"):
        ExportOptions(opset=0)


def test_parity_config_checks_its_values():
    p = ParityConfig.build(provider="CPU", atol=1e-3, tolerances=["logits=1e-2,1e-1"], fallback="FAIL", seed=4)
    assert (p.provider, p.fallback, p.plan.seeds) == ("cpu", "fail", (4, 5, 6))
    assert p.tolerances.for_output("logits") == Tolerance(1e-2, 1e-1) and p.tolerances.atol == 1e-3
    for bad, words in (
        (dict(provider="tpu"), "unknown provider"),
        (dict(fallback="maybe"), "--fallback"),
        (dict(atol=-1.0), "--atol"),
        (dict(tolerances=["y=nan"]), "finite"),
    ):
        with pytest.raises(UsageError, match=words):
            ParityConfig.build(**bad)
    with pytest.raises(UsageError, match="both name"):
        ParityConfig(save_inputs="a.npz", save_outputs="a.npz")


def test_tolerances_from_a_mapping():
    t = Tolerances.build(None, None, {"a": 1e-3, "b": (1e-2, 1e-1), "c": Tolerance(0.5, None)})
    assert t.names == ("a", "b", "c") and t.for_output("b") == Tolerance(1e-2, 1e-1)
    assert t.for_output("missing") is None


def test_a_cuda_optimised_conversion_is_validated_on_cuda():
    assert ConvertOptions(optimize=OptimizeOptions("cuda")).parity.provider == "cuda"
    with pytest.raises(UsageError, match="--provider cpu cannot validate"):
        ConvertOptions(parity=ParityConfig("cpu"), optimize=OptimizeOptions("cuda"))
    assert ConvertOptions(optimize=OptimizeOptions("cpu")).parity.provider == "auto"


def test_convert_variants_are_judged_where_and_on_what_the_model_is_validated():
    """``convert(..., variants=[...])`` as ``convert --variant``: the validation's provider, inputs and seed."""
    parity = ParityConfig("cuda", seed=7, inputs_file="real.npz")
    options = ConvertOptions(parity=parity, variants=VariantOptions(("fp16",)))
    v = options.variants
    assert (v.provider, str(v.inputs_file), v.seed) == ("cuda", "real.npz", 7)
    # a CUDA-optimised model is validated, and its variants judged, on CUDA
    optimized = ConvertOptions(optimize=OptimizeOptions("cuda"), variants=VariantOptions(("int8",)))
    assert optimized.variants.provider == "cuda"
    assert ConvertOptions().variants is None


def test_bench_config_refuses_nonsense_before_any_model_is_loaded():
    c = BenchConfig(("cpu,cuda".split(",")[0], "CPU"), (1, 8), (("seq", 128),))
    assert c.providers == ("cpu",) and c.axes == {"seq": 128}
    for kwargs, words in (
        (dict(providers=()), "no provider"),
        (dict(batches=(0,)), "batch size"),
        (dict(axis_sizes=(("seq", 0),)), "axis size"),
        (dict(io_binding="x"), "--io-binding"),
        (dict(opt_level="max"), "optimisation level"),
        (dict(threads=0), "--threads"),
        (dict(timing=TimingPlan(runs=0)), "--runs"),
        (dict(batches=(2,), inputs_file="in.npz"), "--batch cannot"),
    ):
        with pytest.raises(UsageError, match=words):
            BenchConfig(**kwargs)


def test_option_objects_are_frozen_and_picklable():
    """The gate sends them to worker processes."""
    import dataclasses
    import pickle

    options = ConvertOptions(ExportOptions(("x:batch,4",)), ParityConfig.build(tolerances={"y": 1e-3}))
    assert pickle.loads(pickle.dumps(options)) == options
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.simplify = False  # type: ignore[misc]


def test_the_convert_keywords_build_the_variant_options(monkeypatch):
    """``variants`` as a list or a comma-separated string, judged as the model is validated; none for []."""
    from onnxbridge.api import _convert

    built = []
    monkeypatch.setattr(_convert, "convert_with", lambda source, output, options, progress=None: built.append(options))
    for variants in (["fp16", "int8"], "fp16,int8", [], None):
        _convert.convert("models.py:net", "net.onnx", variants=variants, provider="cpu", seed=3)
    assert [(o.variants.kinds, o.variants.provider, o.variants.seed) for o in built[:2]] == [
        (("fp16", "int8"), "cpu", 3)
    ] * 2
    assert built[2].variants is None and built[3].variants is None


def test_api_tolerances_are_typed_values_checked_like_tol():
    """A mapping of tolerances becomes Tolerance values directly (no --tol strings in between), with the
    same refusals as --tol: a negative or non-finite number, a wrong count, a string."""
    t = Tolerances.build(None, None, {"a": 2, "b": (1e-2, None), "c": (0.1,)})
    assert dict(t.per_output) == {"a": Tolerance(2.0, None), "b": Tolerance(1e-2, None), "c": Tolerance(0.1, None)}
    for bad, match in (
        ({"y": -1.0}, ">= 0"),
        ({"y": float("inf")}, "finite"),
        ({"y": (1, 2, 3)}, "ATOL"),
        ({"y": "1e-3"}, "ATOL"),
        ({"y": (True,)}, "ATOL"),
    ):
        with pytest.raises(UsageError, match=match):
            Tolerances.build(None, None, bad)
