"""``upgrade``: an existing ONNX file to another opset (legacy files up, new files down), repaired,
simplified, and replayed against the original model on ONNX Runtime and against the expected outputs
the model ships with (the model zoo's ``test_data_set_*`` folders)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._memory import StagePeaks
from .._util import Progress, first_line, no_progress
from ..fsutil import check_output_path
from ..options import ParityConfig, ToleranceLike, UpgradeOptions, as_path
from ..results import ParityReport, Report
from ._stages import preflight, simplify_check, validate_model

if TYPE_CHECKING:
    import onnx

    from ..parity.fixtures import Fixtures
    from ..specs import TensorSpec

__all__ = ["upgrade", "upgrade_with"]


def upgrade(
    model: str | Path,
    output: str | Path,
    *,
    opset: int,
    simplify: bool = True,
    validate: bool = True,
    test_data: str | Path | None = None,
    keep_initializer_inputs: bool = False,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, ToleranceLike] | Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Report:
    """Convert ``model`` to ``opset`` into ``output``; see :func:`upgrade_with`."""
    options = UpgradeOptions(opset, simplify, validate, as_path(test_data), keep_initializer_inputs)
    parity = ParityConfig.build(provider=provider, atol=atol, rtol=rtol, tolerances=tolerances, seed=seed)
    return upgrade_with(model, output, options, parity, progress)


def upgrade_with(
    model: str | Path,
    output: str | Path,
    options: UpgradeOptions,
    parity: ParityConfig,
    progress: Progress | None = None,
) -> Report:
    """The version converter, the legacy repairs, onnxsim (kept only where parity holds), an atomic
    write, then parity against the original model and the model's own expected outputs."""
    from ..converters.base import axis_sizes as default_sizes
    from ..onnxio import input_specs, save_onnx
    from ..parity.domain import InputDomain
    from ..transforms.simplify import simplify_model
    from ..transforms.upgrade import convert_opset

    say = progress or no_progress
    out = check_output_path(output, model)
    preflight(parity, model, output)
    say(f"loading {model}")
    peaks = StagePeaks()
    with peaks.stage("load"):
        original, complaint = _load_legacy(model)
        golden_folder, fixtures = _shipped_outputs(model, original, options)  # bad test data: exit 2, nothing written
    say(f"converting to opset {options.opset}")
    with peaks.stage("upgrade"):
        converted, result = convert_opset(
            original, options.opset, keep_initializer_inputs=options.keep_initializer_inputs
        )
    timings = {"upgrade_s": result.seconds}
    specs = input_specs(converted)
    sizes = default_sizes(specs)
    final, simp = converted, None
    if options.simplify:
        say("simplifying")
        with peaks.stage("simplify"):
            check = simplify_check(converted, InputDomain.of(specs, sizes), parity.seed) if options.validate else None
            final, simp = simplify_model(converted, check)
        timings["simplify_s"] = simp.seconds
    say(f"writing {out}")
    save_onnx(final, out)
    validation, notes = None, [*([complaint] if complaint else []), *result.notes]
    if options.validate:
        say("validating")
        t0 = time.perf_counter()
        with peaks.stage("validate"):
            validation = _against_original(original, final, parity, specs, sizes, out, notes)
            if fixtures is not None:
                result = dataclasses.replace(
                    result, golden=_replay(fixtures, final, parity), golden_source=str(golden_folder)
                )
        timings["validate_s"] = time.perf_counter() - t0
        if validation is None and result.golden is None:
            notes.append(
                "nothing to validate against: the original does not run on ONNX Runtime and the model "
                "ships no expected outputs (test_data_set_*)"
            )
    return Report(
        command="upgrade",
        source=str(model),
        framework="onnx",
        output=str(out),
        simplify=simp,
        validation=validation,
        upgrade=dataclasses.replace(result, notes=tuple(notes)),
        timings=timings,
        peak_rss_bytes=peaks.bytes,
    )


def _load_legacy(path: str | Path) -> tuple[onnx.ModelProto, str | None]:
    """(model, what the ONNX checker says about it or None): old files often fail today's checker (an
    output without a shape), which the upgrade repairs; the upgraded model must pass it."""
    import onnx

    from ..onnxio import load_onnx, load_weights

    model = load_weights(load_onnx(path, check=False), path)  # the opset converter needs the weights in memory
    if not model.graph.node and not model.graph.output:
        load_onnx(path)  # the usual "holds no ONNX graph" error
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        return model, f"the original fails today's ONNX checker ({first_line(e, 200, with_type=False)}); repaired"
    return model, None


def _against_original(
    original: onnx.ModelProto,
    final: onnx.ModelProto,
    parity: ParityConfig,
    specs: tuple[TensorSpec, ...],
    sizes: Mapping[str, int],
    out: Path,
    notes: list[str],
) -> ParityReport | None:
    """The original model on ONNX Runtime CPU as the reference (None when ONNX Runtime cannot run it)."""
    from ..parity.domain import InputDomain
    from ..runtime.sessions import OrtRunner

    try:
        reference = OrtRunner(original, "cpu", name="original model (onnxruntime cpu)")
    except Exception as e:
        notes.append(
            f"the original model does not load on ONNX Runtime ({first_line(e, 200)}): "
            "only its expected outputs can judge the upgrade"
        )
        return None
    return validate_model(
        reference, final, parity, InputDomain.of(specs, sizes), None, path=out, reference_model=original
    )


def _shipped_outputs(
    model: str | Path, original: onnx.ModelProto, options: UpgradeOptions
) -> tuple[Path | None, Fixtures | None]:
    """(folder, fixtures) of the ``test_data_set_*`` folders (``--test-data``, else beside the model), or
    (None, None) when there are none or nothing is validated."""
    from ..parity.zoo import find_test_data, read_test_data

    folder = options.test_data or find_test_data(model)
    if folder is None or not options.validate:
        return None, None
    return folder, read_test_data(folder, original)


def _replay(fixtures: Fixtures, final: onnx.ModelProto, parity: ParityConfig) -> ParityReport:
    """The expected outputs against the new model on ONNX Runtime."""
    from ..parity.cases import fixture_cases
    from ..parity.check import one_pass
    from ..parity.fixtures import FixtureRunner
    from ..runtime.sessions import OrtRunner

    reference = FixtureRunner(fixtures, fixtures.inputs, tuple(o.name for o in final.graph.output))
    check = one_pass(tolerances=parity.tolerances, candidate=final, cases=fixture_cases(fixtures.inputs))
    return check.report(reference, OrtRunner(final, parity.provider))
