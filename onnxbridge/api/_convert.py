"""The Python API: convert / simplify / validate / inspect. Orchestration only.

Data flows one way: SOURCE -> load -> convert -> simplify -> validate -> report. Each function
returns a :class:`~onnxbridge.results.Report`; nothing here prints. ``progress`` callbacks get a
short line per stage so a CLI can show it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import check_output_path
from ..results import ParityReport, Report, SimplifyResult
from ..specs import TensorSpec, parse_input_specs

__all__ = ["convert", "simplify", "validate", "inspect", "load_source"]

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def _specs(inputs: Sequence[str | TensorSpec] | None) -> tuple[TensorSpec, ...]:
    if not inputs:
        return ()
    if all(isinstance(i, TensorSpec) for i in inputs):
        return tuple(inputs)  # type: ignore[arg-type]
    return parse_input_specs([str(i) for i in inputs])


def _plan(seed: int):
    from ..parity.sweep import ParityPlan

    return ParityPlan(seeds=(seed, seed + 1, seed + 2))


def load_source(
    source: str, *, inputs: Sequence[str | TensorSpec] | None = None, framework: str | None = None,
    trust_model: bool = False,
):
    """SOURCE -> (converter, LoadedModel). Imports the framework the source needs, nothing else."""
    from ..converters.registry import default_registry
    from ..sources import detect_framework, load_python_object, parse_source

    ref = parse_source(source, framework)
    fw = ref.framework
    obj = None
    if fw == "onnx":
        raise UsageError(f"{source} is already an ONNX model", "use onnxbridge simplify / validate / bench on it")
    if fw is None and ref.is_python:
        obj = load_python_object(ref)
        fw = detect_framework(obj)
        if fw is None:
            from ..sources import resolve_factory

            model, example = resolve_factory(obj, source)
            fw = detect_framework(model)
            if fw is None:
                raise UsageError(
                    f"{source} gives a {type(model).__name__}; cannot tell its framework",
                    "return a torch.nn.Module, keras.Model or tf.Module, or pass --framework",
                )
            obj = (lambda m=model, e=example: (m, e) if e is not None else m)
    converter = default_registry().get(fw)()
    loaded = converter.load(ref, _specs(inputs), trust=trust_model, obj=obj)
    return converter, loaded


def _structural_check(product) -> None:
    """Valid ONNX that ONNX Runtime can load on CPU."""
    import onnx

    from ..runtime.sessions import OrtRunner

    onnx.checker.check_model(product.model)
    OrtRunner(product.model, "cpu")


def _quick_parity(reference, loaded, atol, rtol):
    """A candidate passes when it matches the reference on the export-size example inputs."""
    from ..runtime.sessions import OrtRunner
    from ..parity.sweep import run_case

    def check(product) -> str | None:
        case = run_case("example", None, dict(loaded.example), reference, OrtRunner(product.model, "cpu"), None, atol, rtol)
        if case.passed:
            return None
        if case.error:
            return case.error
        bad = next(o for o in case.outputs if not o.passed)
        return f"output '{bad.name}' max_abs {bad.max_abs:.3g} exceeds atol {bad.atol:g}"

    return check


def _simplify_check(original, specs, axis_sizes, int_high, seed):
    from ..runtime.sessions import OrtRunner
    from ..parity.sweep import ParityPlan, check_parity

    reference = OrtRunner(original, "cpu")
    reference.name = "unsimplified model (onnxruntime cpu)"

    def check(simplified) -> ParityReport:
        report = check_parity(
            reference, OrtRunner(simplified, "cpu"), specs, axis_sizes,
            plan=ParityPlan(seeds=(seed,), sweep=True), int_high=_int_high(original, int_high),
        )
        # a size the unsimplified model cannot run either says nothing about the simplification
        skipped = [c.label for c in report.cases if c.error and c.error.startswith("reference ")]
        if skipped and not report.passed and all(c.passed or c.label in skipped for c in report.cases):
            note = f"sizes the unsimplified model cannot run were not compared: {', '.join(skipped)}"
            report = dataclasses.replace(report, passed=True, notes=report.notes + (note,))
        return report

    return check


def _preflight_provider(provider: str) -> None:
    """Fail fast (before any export) when an explicitly named provider cannot start."""
    if provider in ("cuda", "tensorrt"):
        from ..runtime.providers import create_session

        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        probe.ir_version = min(probe.ir_version, 10)
        onnx.checker.check_model(probe)
        create_session(probe.SerializeToString(), provider)


def _check_fixture_paths(save_inputs, save_outputs, *inputs) -> None:
    """Refuse a --save-inputs / --save-outputs path that is an input, cannot be written, or is both."""
    for extra in (save_inputs, save_outputs):
        if extra:
            check_output_path(extra, *inputs, what="fixture")
    if save_inputs and save_outputs and Path(save_inputs).resolve() == Path(save_outputs).resolve():
        raise UsageError(
            f"--save-inputs and --save-outputs both name {save_inputs}",
            "give two files, e.g. --save-inputs in.npz --save-outputs out.npz",
        )


def _check_validation_options(tolerances, fallback) -> None:
    """Refuse a malformed --tol or --fallback before any work starts."""
    from ..runtime.placement import apply_fallback_policy

    _tolerances(tolerances)
    apply_fallback_policy(None, fallback)


def _save_fixtures(save_inputs, save_outputs, specs, axis_sizes, plan, int_high, reference, feeds_override):
    from ..parity.fixtures import save_cases
    from ..parity.inputs import generate_inputs
    from ..parity.sweep import plan_cases

    if feeds_override is not None:
        cases = list(feeds_override)
    else:
        cases = [(pc.label, generate_inputs(specs, pc.sizes, pc.seed, int_high=int_high))
                 for pc in plan_cases(axis_sizes, plan)]
    if save_inputs:
        save_cases(save_inputs, cases)
    if save_outputs:
        names = reference.output_names
        save_cases(save_outputs, [(label, dict(zip(names, reference.run(f)))) for label, f in cases])


def convert(
    source: str,
    output: str | Path,
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    opset: int | None = None,
    simplify: bool = True,
    validate: bool = True,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, Any] | Sequence[str] | None = None,
    fallback: str = "warn",
    seed: int = 0,
    inputs_file: str | Path | None = None,
    save_inputs: str | Path | None = None,
    save_outputs: str | Path | None = None,
    trust_model: bool = False,
    routes: Sequence[str] | None = None,
    optimize: str | None = None,
    fuse_transformer: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Export SOURCE to ``output`` (atomically), simplify it, validate it against the source.

    ``optimize`` (``cpu`` / ``cuda``) saves ONNX Runtime's offline optimisations for that provider and
    ``fuse_transformer`` (``auto`` / ``bert`` / ``gpt2`` / ``vit``) applies its transformer fusions; each
    is parity-checked (see :mod:`onnxbridge.transforms.optimize`).

    ``routes`` names the export routes to try, in order (default: every route of the converter).
    """
    from ..converters.base import ExportRequest, run_routes
    from ..onnxio import save_onnx

    say = progress or _noop
    specs_in = _specs(inputs)
    out = check_output_path(output, source, inputs_file)
    _check_fixture_paths(save_inputs, save_outputs, source, output, inputs_file)
    if optimize or fuse_transformer:
        from ..transforms.optimize import check_options, validation_provider

        check_options(optimize, fuse_transformer)
        provider = validation_provider(optimize, provider)
    _preflight_provider(provider)
    _check_validation_options(tolerances, fallback)
    feeds = _load_feeds(inputs_file) if validate else None
    timings: dict[str, float] = {}

    say(f"loading {source}")
    t0 = time.perf_counter()
    converter, loaded = load_source(source, inputs=specs_in, framework=framework, trust_model=trust_model)
    timings["load_s"] = time.perf_counter() - t0
    reference = converter.reference_runner(loaded)

    say("exporting")
    t0 = time.perf_counter()
    product, conversion = run_routes(
        converter.framework,
        _pick_routes(converter.routes(loaded), routes),
        loaded,
        ExportRequest(opset=opset),
        validate=_structural_check,
        check_parity=_quick_parity(reference, loaded, atol, rtol) if validate else None,
        failing_op=getattr(converter, "failing_op", lambda e: None),
    )
    timings["export_s"] = time.perf_counter() - t0
    model = product.model

    simp: SimplifyResult | None = None
    if simplify:
        say("simplifying")
        model, simp = _simplify_step(model, loaded.specs, loaded.axis_sizes, loaded.int_high, seed)
        timings["simplify_s"] = simp.seconds

    opt = None
    if optimize or fuse_transformer:
        from ..transforms.optimize import optimize_step, transformer_hints

        say("optimising")
        model, opt = optimize_step(model, optimize, fuse_transformer, loaded.specs, loaded.axis_sizes,
                                   _int_high(model, loaded.int_high), seed, hints=transformer_hints(loaded.model))
        timings["optimize_s"] = opt.seconds

    say(f"writing {out}")
    save_onnx(model, out)

    report_v: ParityReport | None = None
    if validate:
        say("validating")
        report_v = _validate_step(
            reference, model, provider, loaded.specs, loaded.axis_sizes, loaded.int_high, seed, atol, rtol,
            feeds, save_inputs, save_outputs, tolerances=tolerances, fallback=fallback,
        )
        timings["validate_s"] = report_v.seconds
    elif save_inputs or save_outputs:
        _save_fixtures(save_inputs, save_outputs, loaded.specs, loaded.axis_sizes, _plan(seed),
                       _int_high(model, loaded.int_high), reference, None)
    return Report(
        command="convert",
        source=source,
        framework=converter.framework,
        output=str(out),
        conversion=conversion,
        simplify=simp,
        validation=report_v,
        timings=timings,
        **_optimize_fields(opt),
    )


def _optimize_fields(opt) -> dict[str, Any]:
    """Report fields of the optimisation step: ``optimize`` in the JSON, a note when it was not kept."""
    if opt is None:
        return {}
    from ..transforms.optimize import optimize_notes

    return {"extra": {"optimize": opt}, "notes": optimize_notes(opt)}


def _pick_routes(available: Sequence, wanted: Sequence[str] | None) -> list:
    """The routes named in ``wanted``, in that order; all of them when nothing is named."""
    if not wanted:
        return list(available)
    by_name = {r.name: r for r in available}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise UsageError(
            f"unknown route(s) {', '.join(unknown)} for this source", f"routes: {', '.join(by_name)}"
        )
    return [by_name[w] for w in wanted]


def _simplify_step(model, specs, axis_sizes, int_high, seed):
    from ..transforms.simplify import simplify_model

    return simplify_model(model, _simplify_check(model, specs, axis_sizes, int_high, seed))


def _tolerances(tolerances: Mapping[str, Any] | Sequence[str] | None) -> dict:
    """``--tol`` strings, or a mapping name -> Tolerance / (atol, rtol) / atol, as Tolerances."""
    from ..parity.metrics import Tolerance, parse_tolerances

    if not tolerances:
        return {}
    if not isinstance(tolerances, Mapping):
        return parse_tolerances([str(t) for t in tolerances])
    out = {}
    for name, t in tolerances.items():
        if isinstance(t, Tolerance):
            out[name] = t
        elif isinstance(t, (int, float)):
            out[name] = Tolerance(float(t), None)
        else:
            out.update(parse_tolerances([f"{name}={','.join(str(v) for v in t)}"]))
    return out


def _int_high(model, int_high):
    """Per-input id ranges: the table each id input indexes in the ONNX graph, else the converter's guess."""
    from ..parity.inputs import vocab_sizes

    found = vocab_sizes(model)
    if not found:
        return int_high
    if isinstance(int_high, int):
        return _DefaultMap(found, int_high)
    if isinstance(int_high, Mapping):
        return {**int_high, **found}
    return found


class _DefaultMap(dict):
    """A dict whose ``get`` falls back to one default (ids inputs the graph says nothing about)."""

    def __init__(self, found: dict, default: int) -> None:
        super().__init__(found)
        self.default = default

    def get(self, key, default=None):
        return super().get(key, self.default)


def _load_feeds(inputs_file):
    """The cases of an ``--inputs`` file, or None without one."""
    from ..parity.fixtures import load_cases

    return load_cases(inputs_file) if inputs_file else None


def _validate_step(reference, model, provider, specs, axis_sizes, int_high, seed, atol, rtol,
                   feeds, save_inputs, save_outputs, path=None, *, tolerances=None, fallback="warn",
                   reference_model=None) -> ParityReport:
    from ..parity.metrics import looser_dtype
    from ..runtime.placement import apply_fallback_policy
    from ..runtime.sessions import OrtRunner
    from ..parity.sweep import check_parity, compute_dtype

    int_high = _int_high(model, int_high)
    narrow = [d for d in (compute_dtype(model), reference_model is not None and compute_dtype(reference_model)) if d]
    narrowest = looser_dtype(*narrow) if narrow else None
    candidate = OrtRunner(model, provider, path=path, profile=True, fallback=fallback)
    report = check_parity(
        reference, candidate, specs, axis_sizes, plan=_plan(seed), int_high=int_high, atol=atol, rtol=rtol,
        feeds=feeds, tolerances=_tolerances(tolerances), compute_dtype=narrowest,
    )
    note = apply_fallback_policy(report.placement, fallback)
    if narrowest is not None:
        report = dataclasses.replace(report, notes=report.notes + (
            f"a model computes in {narrowest.name}: float outputs are judged at its default tolerances",
        ))
    if note:
        report = dataclasses.replace(report, notes=report.notes + (note,))
    if save_inputs or save_outputs:
        _save_fixtures(save_inputs, save_outputs, specs, axis_sizes, _plan(seed), int_high, reference, feeds)
    return report


def simplify(
    model: str | Path,
    output: str | Path,
    *,
    validate: bool = True,
    seed: int = 0,
    optimize: str | None = None,
    fuse_transformer: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Simplify an ONNX file into ``output``, keeping the original if parity breaks; ``optimize`` /
    ``fuse_transformer`` as for :func:`convert`."""
    from ..onnxio import input_specs, load_onnx, save_onnx
    from ..converters.base import axis_sizes as default_sizes

    say = progress or _noop
    out = check_output_path(output, model)
    if optimize or fuse_transformer:
        from ..transforms.optimize import check_options

        check_options(optimize, fuse_transformer)
    say(f"loading {model}")
    original = load_onnx(model)
    specs = input_specs(original)
    axis_sizes = default_sizes(specs)
    say("simplifying")
    from ..transforms.simplify import simplify_model

    check = _simplify_check(original, specs, axis_sizes, None, seed) if validate else None
    result, simp = simplify_model(original, check)
    timings = {"simplify_s": simp.seconds}
    opt = None
    if optimize or fuse_transformer:
        from ..transforms.optimize import optimize_step

        say("optimising")
        result, opt = optimize_step(result, optimize, fuse_transformer, specs, axis_sizes, _int_high(original, None),
                                    seed)
        timings["optimize_s"] = opt.seconds
    save_onnx(result, out)
    return Report(command="simplify", source=str(model), framework="onnx", output=str(out), simplify=simp,
                  timings=timings, **_optimize_fields(opt))


def validate(
    source: str,
    model: str | Path | None = None,
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, Any] | Sequence[str] | None = None,
    fallback: str = "warn",
    seed: int = 0,
    inputs_file: str | Path | None = None,
    expected_file: str | Path | None = None,
    save_inputs: str | Path | None = None,
    save_outputs: str | Path | None = None,
    trust_model: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Parity of an ONNX model against its SOURCE, another ONNX model, or golden fixtures.

    - ``validate(SOURCE, MODEL.onnx)``: the source framework is the reference;
    - ``validate(A.onnx, B.onnx)``: A on ONNX Runtime CPU is the reference for B;
    - ``validate(MODEL.onnx, inputs_file=IN.npz, expected_file=OUT.npz)``: replay fixtures.
    """
    from ..onnxio import input_specs, load_onnx
    from ..converters.base import axis_sizes as default_sizes
    from ..runtime.sessions import OrtRunner

    say = progress or _noop
    _check_fixture_paths(save_inputs, save_outputs, source, model, inputs_file, expected_file)
    _preflight_provider(provider)
    _check_validation_options(tolerances, fallback)
    is_onnx = str(source).lower().endswith(".onnx")
    if model is None:
        if not is_onnx:
            raise UsageError("validate needs an ONNX model", "onnxbridge validate SOURCE MODEL.onnx")
        if not expected_file:
            raise UsageError(
                f"validate {source} alone needs --inputs IN.npz --expected OUT.npz",
                "or give a SOURCE (or a second ONNX model) to compare with",
            )
        model, source_onnx = source, None
    else:
        source_onnx = source if is_onnx else None
    if expected_file and not inputs_file:
        raise UsageError("--expected needs --inputs", "pass the --inputs file written by the same run")

    feeds = _load_feeds(inputs_file)
    say(f"loading {model}")
    candidate_model = load_onnx(model)
    specs = _specs(inputs) or input_specs(candidate_model)
    axis_sizes = default_sizes(specs)
    int_high = None
    fw = "onnx"
    reference_model = None
    if expected_file:
        from ..parity.fixtures import FixtureRunner

        names = tuple(o.name for o in candidate_model.graph.output)
        reference: Any = FixtureRunner(expected_file, feeds, names)
    elif source_onnx is not None:
        reference = OrtRunner(source_onnx, "cpu")
        reference.name = f"{Path(source_onnx).name} (onnxruntime cpu)"
        reference_model = reference.model
    else:
        say(f"loading {source}")
        converter, loaded = load_source(source, inputs=specs, framework=framework, trust_model=trust_model)
        reference = converter.reference_runner(loaded)
        specs, axis_sizes, int_high, fw = loaded.specs, loaded.axis_sizes, loaded.int_high, converter.framework
    say("validating")
    report_v = _validate_step(
        reference, candidate_model, provider, specs, axis_sizes, int_high, seed, atol, rtol, feeds,
        save_inputs, save_outputs, path=model, tolerances=tolerances, fallback=fallback,
        reference_model=reference_model,
    )
    return Report(command="validate", source=str(source), framework=fw, output=str(model), validation=report_v,
                  timings={"validate_s": report_v.seconds})


def inspect(model: str | Path):
    """Opsets, inputs/outputs, op histogram, parameters and size of an ONNX file."""
    from ..onnxio import model_info

    return model_info(model)
