"""Frozen option objects and the constants they are checked against, in one place.

Each object is built once, from CLI flags, a manifest entry or API keywords, checks itself on
construction (a bad value is a ``UsageError``, exit 2, before any work starts), and is then passed
down whole: stages take the object that owns their settings, not a list of loose arguments.
Frameworks are not listed here: they come from the converter registry, which plugins extend.

Nothing here imports numpy, onnx, onnxruntime or a framework.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UsageError
from .specs import TensorSpec, parse_input_specs

__all__ = [
    "PROVIDERS", "FALLBACK_POLICIES", "OPT_LEVELS", "IO_BINDING_MODES", "REFERENCE_DEVICES", "OPTIMIZE_TARGETS",
    "FUSIONS", "BATCH_AXES", "REPORT_SUFFIXES", "is_batch_axis",
    "Tolerance", "Tolerances", "parse_tolerances", "ParityPlan", "TimingPlan",
    "ExportOptions", "ParityConfig", "OptimizeOptions", "ConvertOptions", "UpgradeOptions", "BenchConfig",
    "SIMPLIFIERS", "VARIANT_KINDS", "BUDGET_FLOORS", "BUDGET_CEILINGS", "DECISIVE_MARGIN", "DEFAULT_BUDGETS",
    "DEFAULT_MIN_SPEEDUP", "CALIBRATION_METHODS", "Budget", "parse_budget", "VariantOptions",
    "EXECUTORS", "ExecutorOptions",
    "LocalizeOptions",
]

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
FALLBACK_POLICIES = ("warn", "fail")
OPT_LEVELS = ("disable", "basic", "extended", "layout", "all")
IO_BINDING_MODES = ("auto", "on", "off")
REFERENCE_DEVICES = ("auto", "cpu", "cuda")
OPTIMIZE_TARGETS = ("cpu", "cuda")
FUSIONS = ("auto", "bert", "gpt2", "vit")
# Axis names that mean "the batch" (compared lower-cased).
BATCH_AXES = ("batch", "batch_size", "n", "b", "bs")
REPORT_SUFFIXES = (".json", ".md", ".html", ".htm")
EXECUTORS = ("local", "ray")


def is_batch_axis(name: str) -> bool:
    """True for batch-like axis names (``batch``, ``N``, ``bs`` ...)."""
    return name.lower() in BATCH_AXES


def _choice(value: str | None, allowed: Sequence[str], flag: str) -> str:
    text = (value or "").strip().lower()
    if text not in allowed:
        raise UsageError(f"unknown {flag} {value!r}", f"use one of {', '.join(allowed)}")
    return text


def _path(value: str | Path | None) -> Path | None:
    return None if value is None or value == "" else Path(value)


# ----------------------------------------------------------------------------------- tolerances
@dataclass(frozen=True)
class Tolerance:
    """Elementwise check: ``|got - ref| <= atol + rtol * |ref|``.

    ``rtol=None`` (from ``--tol NAME=ATOL``) keeps the output dtype's default rtol.
    """

    atol: float
    rtol: float | None


def parse_tolerances(texts: Sequence[str] | None) -> dict[str, Tolerance]:
    """Parse ``--tol NAME=ATOL[,RTOL]`` values (repeatable) into per-output tolerances."""
    hint = "write --tol NAME=ATOL[,RTOL], e.g. --tol logits=1e-3,1e-2 (NAME as `onnxbridge inspect` lists it)"
    out: dict[str, Tolerance] = {}
    for text in texts or ():
        name, sep, values = str(text).rpartition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not name.strip() or len(parts) not in (1, 2):
            raise UsageError(f"malformed --tol {text!r}: expected NAME=ATOL[,RTOL]", hint)
        try:
            nums = [float(v) for v in parts]
        except ValueError:
            raise UsageError(f"malformed --tol {text!r}: {values!r} is not ATOL[,RTOL] numbers", hint) from None
        if any(not math.isfinite(v) or v < 0 for v in nums):
            raise UsageError(f"malformed --tol {text!r}: tolerances must be finite and >= 0", hint)
        name = name.strip()
        if name in out:
            raise UsageError(f"--tol {name} is given twice", "give one --tol per output")
        out[name] = Tolerance(nums[0], nums[1] if len(nums) == 2 else None)
    return out


def _check_tolerance(value: float | None, flag: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} {value!r} must be a finite number >= 0", f"e.g. {flag} 1e-4")
    return float(value)


@dataclass(frozen=True)
class Tolerances:
    """The user's tolerances: ``--atol`` / ``--rtol`` over the dtype defaults, and ``--tol`` per output."""

    atol: float | None = None
    rtol: float | None = None
    per_output: tuple[tuple[str, Tolerance], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "atol", _check_tolerance(self.atol, "--atol"))
        object.__setattr__(self, "rtol", _check_tolerance(self.rtol, "--rtol"))

    @classmethod
    def build(cls, atol: float | None = None, rtol: float | None = None,
              tolerances: Mapping[str, Any] | Sequence[str] | Tolerances | None = None) -> Tolerances:
        """From API keywords: ``tolerances`` as ``--tol`` strings or a mapping name -> Tolerance /
        (atol, rtol) / atol."""
        if isinstance(tolerances, Tolerances):
            return cls(atol, rtol, tolerances.per_output)
        per: dict[str, Tolerance] = {}
        if tolerances and not isinstance(tolerances, Mapping):
            per = parse_tolerances([str(t) for t in tolerances])
        elif tolerances:
            for name, t in tolerances.items():
                if isinstance(t, Tolerance):
                    per[name] = t
                elif isinstance(t, (int, float)):
                    per.update(parse_tolerances([f"{name}={t}"]))
                else:
                    per.update(parse_tolerances([f"{name}={','.join(str(v) for v in t)}"]))
        return cls(atol, rtol, tuple(per.items()))

    def for_output(self, name: str) -> Tolerance | None:
        """The ``--tol`` of one output, if the user gave one."""
        return dict(self.per_output).get(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Outputs named by ``--tol``."""
        return tuple(n for n, _ in self.per_output)


# ----------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class ParityPlan:
    """Inputs to check: seeds at the export sizes, plus a sweep over every dynamic axis."""

    seeds: tuple[int, ...] = (0, 1, 2)
    sweep: bool = True

    @classmethod
    def from_seed(cls, seed: int, count: int = 3, *, sweep: bool = True) -> ParityPlan:
        """``count`` consecutive seeds from ``seed``."""
        return cls(tuple(seed + i for i in range(count)), sweep)


@dataclass(frozen=True)
class TimingPlan:
    """Warm-up runs, then ``runs`` timed runs, or as many as fit in ``duration_s`` (at least ``min_runs``)."""

    warmup: int = 10
    runs: int = 100
    duration_s: float | None = None
    min_runs: int = 3

    def check(self) -> TimingPlan:
        """Refuse nonsense (a ``UsageError``); the plan itself otherwise. :class:`BenchConfig` calls it."""
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup} is negative", "give 0 or more warm-up runs")
        if self.duration_s is None and self.runs < 1:
            raise UsageError(f"--runs {self.runs} must be at least 1", "give --runs 1 or more, or --duration SECONDS")
        if self.duration_s is not None and not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise UsageError(f"--duration {self.duration_s} must be a positive number of seconds", "e.g. --duration 10")
        return self


# ----------------------------------------------------------------------------------- stages
def _specs(inputs: Sequence[str | TensorSpec] | None) -> tuple[TensorSpec, ...]:
    if not inputs:
        return ()
    if all(isinstance(i, TensorSpec) for i in inputs):
        return tuple(inputs)  # type: ignore[arg-type]
    return parse_input_specs([str(i) for i in inputs])


@dataclass(frozen=True)
class ExportOptions:
    """How to load a SOURCE and export it: its inputs, framework, opset, routes, trust, and the task
    (for converters that build a model for one, e.g. Hugging Face folders); ``debug`` lets the exporters'
    own output (IR dumps, warnings) through to the terminal."""

    inputs: tuple[TensorSpec, ...] = ()
    framework: str | None = None
    opset: int | None = None
    routes: tuple[str, ...] = ()
    trust_model: bool = False
    task: str | None = None
    debug: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _specs(self.inputs))
        object.__setattr__(self, "routes", tuple(self.routes or ()))
        if self.opset is not None and (not isinstance(self.opset, int) or self.opset < 1):
            raise UsageError(f"--opset {self.opset!r} must be a positive integer", "e.g. --opset 18")


@dataclass(frozen=True)
class ParityConfig:
    """How to check parity: where the ONNX model runs, tolerances, seeds, and fixture files in and out."""

    provider: str = "auto"
    tolerances: Tolerances = field(default_factory=Tolerances)
    fallback: str = "warn"
    seed: int = 0
    inputs_file: Path | None = None
    expected_file: Path | None = None
    save_inputs: Path | None = None
    save_outputs: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider", _choice(self.provider or "auto", PROVIDERS, "provider"))
        object.__setattr__(self, "fallback", _choice(self.fallback or "warn", FALLBACK_POLICIES, "--fallback"))
        for name in ("inputs_file", "expected_file", "save_inputs", "save_outputs"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        if self.save_inputs and self.save_outputs and self.save_inputs.resolve() == self.save_outputs.resolve():
            raise UsageError(
                f"--save-inputs and --save-outputs both name {self.save_inputs}",
                "give two files, e.g. --save-inputs in.npz --save-outputs out.npz",
            )

    @classmethod
    def build(cls, *, provider: str = "auto", atol: float | None = None, rtol: float | None = None,
              tolerances: Mapping[str, Any] | Sequence[str] | None = None, **rest: Any) -> ParityConfig:
        """From API keywords (``atol`` / ``rtol`` / ``tolerances`` become one :class:`Tolerances`)."""
        return cls(provider=provider, tolerances=Tolerances.build(atol, rtol, tolerances), **rest)

    @property
    def plan(self) -> ParityPlan:
        """Three seeds from ``seed``, and the sweep over every dynamic axis."""
        return ParityPlan.from_seed(self.seed)

    @property
    def saves_fixtures(self) -> bool:
        return bool(self.save_inputs or self.save_outputs)

    @property
    def fixture_outputs(self) -> tuple[Path, ...]:
        """The fixture files this run writes."""
        return tuple(p for p in (self.save_inputs, self.save_outputs) if p)

    @property
    def fixture_inputs(self) -> tuple[Path, ...]:
        """The fixture files this run reads."""
        return tuple(p for p in (self.inputs_file, self.expected_file) if p)


@dataclass(frozen=True)
class OptimizeOptions:
    """ONNX Runtime's offline optimisation for a provider (``target``) and transformer fusions (``fuse``)."""

    target: str | None = None
    fuse: str | None = None

    def __post_init__(self) -> None:
        if self.target is not None:
            object.__setattr__(self, "target", _choice(self.target, OPTIMIZE_TARGETS, "--optimize target"))
        if self.fuse is not None:
            object.__setattr__(self, "fuse", _choice(self.fuse, FUSIONS, "--fuse-transformer"))

    @property
    def requested(self) -> bool:
        return self.target is not None or self.fuse is not None

    def validation_provider(self, provider: str) -> str:
        """The provider to validate on: a CUDA-optimised model runs on CUDA only."""
        if self.target == "cuda":
            if provider == "cpu":
                raise UsageError(
                    "--optimize cuda writes CUDA-only fused ops, which --provider cpu cannot validate",
                    "use --provider cuda (or auto), or --optimize cpu",
                )
            return "cuda" if provider == "auto" else provider
        return provider


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``convert`` needs besides SOURCE and the output path."""

    export: ExportOptions = field(default_factory=ExportOptions)
    parity: ParityConfig = field(default_factory=ParityConfig)
    optimize: OptimizeOptions = field(default_factory=OptimizeOptions)
    simplify: bool = True
    validate: bool = True
    external_data: bool = False  # weights in OUT.onnx.data beside the graph (automatic over 2 GB)
    simplifier: str = "onnxsim"
    variants: VariantOptions | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "simplifier", _choice(self.simplifier or "onnxsim", SIMPLIFIERS, "--simplifier"))
        if self.optimize.requested:  # a CUDA-optimised model is validated where it can run
            provider = self.optimize.validation_provider(self.parity.provider)
            if provider != self.parity.provider:
                object.__setattr__(self, "parity", dataclasses.replace(self.parity, provider=provider))


@dataclass(frozen=True)
class UpgradeOptions:
    """``upgrade``: the target opset (up or down), the legacy repairs, simplification, and the expected
    outputs to replay (a folder holding ``test_data_set_*``; by default the model's own folder)."""

    opset: int
    simplify: bool = True
    validate: bool = True
    test_data: Path | None = None
    keep_initializer_inputs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.opset, int) or isinstance(self.opset, bool) or self.opset < 1:
            raise UsageError(f"--opset {self.opset!r} must be a positive integer", "e.g. --opset 17")
        object.__setattr__(self, "test_data", _path(self.test_data))


@dataclass(frozen=True)
class BenchConfig:
    """What ``bench`` measures: providers, batch sizes, axis sizes, the timing plan and session settings."""

    providers: tuple[str, ...] = ("auto",)
    batches: tuple[int, ...] = ()
    axis_sizes: tuple[tuple[str, int], ...] = ()
    timing: TimingPlan = field(default_factory=TimingPlan)
    threads: int | None = None
    opt_level: str = "all"
    io_binding: str = "auto"
    reference_device: str = "auto"
    seed: int = 0
    inputs_file: Path | None = None

    def __post_init__(self) -> None:
        self.timing.check()
        provs = tuple(dict.fromkeys(p.strip().lower() for p in self.providers or () if p and p.strip()))
        if not provs:
            raise UsageError("no provider to benchmark", "pass --provider cpu (or auto, cuda, tensorrt)")
        for p in provs:
            _choice(p, PROVIDERS, "provider")
        object.__setattr__(self, "providers", provs)
        for b in self.batches or ():
            if not isinstance(b, int) or isinstance(b, bool) or b < 1:
                raise UsageError(f"batch size {b!r} must be a positive integer", "e.g. --batch 1,8")
        object.__setattr__(self, "batches", tuple(self.batches or ()))
        sizes = tuple(dict(self.axis_sizes).items()) if self.axis_sizes else ()
        for axis, size in sizes:
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise UsageError(f"axis size {axis}={size!r} must be a positive integer", "e.g. --axis seq=128")
        object.__setattr__(self, "axis_sizes", sizes)
        object.__setattr__(self, "opt_level", _choice(self.opt_level, OPT_LEVELS, "optimisation level"))
        object.__setattr__(self, "io_binding", _choice(self.io_binding, IO_BINDING_MODES, "--io-binding"))
        object.__setattr__(self, "reference_device",
                           _choice(self.reference_device, REFERENCE_DEVICES, "--reference-device"))
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads {self.threads} must be at least 1",
                             "give a positive thread count, or leave it out")
        object.__setattr__(self, "inputs_file", _path(self.inputs_file))
        if self.inputs_file and self.batches:
            raise UsageError("--batch cannot sweep real inputs from --inputs", "leave out --batch, or leave out --inputs")

    @property
    def axes(self) -> dict[str, int]:
        """``--axis`` sizes as a dict."""
        return dict(self.axis_sizes)


# ----------------------------------------------------------------------------------- variants
# Simplifiers ``--simplifier`` may name; ``auto`` runs every one installed and keeps the best (transforms/simplifiers.py).
SIMPLIFIERS = ("onnxsim", "onnxslim", "onnxscript", "auto")
VARIANT_KINDS = ("fp16", "bf16", "int8", "int8-static", "int4", "ort")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Budget metrics (variants/accuracy.py): floors (the variant's value must be >= the limit) and ceilings (<=).
BUDGET_FLOORS = ("cosine", "cosine_min", "top1", "top1_decisive", "top5")
BUDGET_CEILINGS = ("max_abs", "nonfinite")
# ``top1_decisive`` counts the rows whose reference top-2 margin is at least this many row standard
# deviations: random-weight models are full of near-ties that any rounding flips (measured: the argmax
# flips of int8 BERT-base had a median margin of 0.015 row-std).
DECISIVE_MARGIN = 0.05


@dataclass(frozen=True)
class Budget:
    """Accuracy limits of one variant against its reference: metric -> limit (see the constants above)."""

    limits: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        limits = dict(self.limits.items() if isinstance(self.limits, Mapping) else self.limits)
        for metric, value in limits.items():
            if metric not in BUDGET_FLOORS + BUDGET_CEILINGS:
                raise UsageError(f"unknown budget metric {metric!r}",
                                 f"use {', '.join(BUDGET_FLOORS + BUDGET_CEILINGS)}, e.g. --budget cosine=0.999")
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"budget {metric}={value!r} must be a finite number >= 0", "e.g. --budget cosine=0.999")
        object.__setattr__(self, "limits", tuple((k, float(v)) for k, v in limits.items()))

    def as_dict(self) -> dict[str, float]:
        return dict(self.limits)

    def describe(self) -> str:
        """``cosine>=0.999, top1_decisive>=0.99`` (or ``none``)."""
        return ", ".join(f"{k}{'>=' if k in BUDGET_FLOORS else '<='}{v:g}" for k, v in self.limits) or "none"


# Defaults per variant, stated in every report. fp16 and ORT-format conversions should be near-exact;
# int8 and int4 lose more. int4 does not gate argmax agreement: on random-weight LMs (near-flat logits)
# 4-bit weights flip most argmaxes (measured 0.2-0.4 on GPT-2 / Llama-style configs) while staying useful.
DEFAULT_BUDGETS: dict[str, Budget] = {
    "fp16": Budget((("cosine", 0.999), ("top1_decisive", 0.99), ("nonfinite", 0))),
    "bf16": Budget((("cosine", 0.99), ("top1_decisive", 0.98), ("nonfinite", 0))),
    "int8": Budget((("cosine", 0.99), ("top1_decisive", 0.98), ("nonfinite", 0))),
    "int8-static": Budget((("cosine", 0.98), ("top1_decisive", 0.97), ("nonfinite", 0))),
    "int4": Budget((("cosine", 0.9), ("nonfinite", 0))),
    "ort": Budget((("cosine", 0.99999), ("nonfinite", 0))),
}
# A variant must be at least this much faster than fp32 (p50 ratio) on the provider that runs it; None:
# timed and reported, not gated (an .ort file is for another device: this host's timing says nothing of it).
DEFAULT_MIN_SPEEDUP: dict[str, float | None] = {
    "fp16": 1.0, "bf16": 1.0, "int8": 1.0, "int8-static": 1.0, "int4": 1.0, "ort": None,
}


def parse_budget(texts: Sequence[str] | str | None) -> dict[str, float]:
    """``--budget cosine=0.999,top1=0.99`` (repeatable, comma-separated) -> metric -> limit."""
    hint = "write --budget METRIC=VALUE[,METRIC=VALUE], e.g. --budget cosine=0.999,top1_decisive=0.99"
    out: dict[str, float] = {}
    for text in [texts] if isinstance(texts, str) else (texts or ()):
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            metric, sep, value = part.partition("=")
            try:
                number = float(value)
            except ValueError:
                number = None
            if not sep or not metric.strip() or number is None:
                raise UsageError(f"malformed --budget item {part!r}: expected METRIC=NUMBER", hint)
            out[metric.strip()] = number
    Budget(tuple(out.items()))  # checks the metric names and values
    return out


def _limits(value: Any) -> dict[str, float]:
    """Budget limits from ``--budget`` strings, a mapping, or (metric, limit) pairs."""
    if isinstance(value, Mapping):
        return dict(value)
    items = [value] if isinstance(value, str) else list(value or ())
    if all(isinstance(i, str) for i in items):
        return parse_budget(items)
    return dict(items)


def _variant_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    texts = [kinds] if isinstance(kinds, str) else list(kinds or ())
    out = [k.strip().lower() for t in texts for k in str(t).split(",") if k.strip()]
    if not out:
        raise UsageError("no variant asked for", f"name one or more of {', '.join(VARIANT_KINDS)}, e.g. --to int8")
    for k in out:
        _choice(k, VARIANT_KINDS, "variant")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class VariantOptions:
    """Which deployment variants to build and how each is gated (``variant --to`` / ``convert --variant``).

    ``budget`` overrides the default limits of every variant asked for; ``min_speedup`` the speed rule
    (0 turns the speed gate off). ``inputs_file`` holds real inputs (fixtures format): its even cases
    calibrate int8-static and drive the fp16 search, its odd cases judge every variant. ``write_failed``
    writes a variant that fails its gate anyway, marked FAIL.
    """

    kinds: tuple[str, ...] = ("int8",)
    provider: str = "cpu"
    budget: tuple[tuple[str, float], ...] = ()
    min_speedup: float | None = None
    write_failed: bool = False
    out_dir: Path | None = None
    output: Path | None = None
    inputs_file: Path | None = None
    calibration_method: str = "minmax"
    calibration_cases: int = 16
    eval_cases: int = 4
    seed: int = 0
    axis_sizes: tuple[tuple[str, int], ...] = ()
    timing: TimingPlan = field(default_factory=lambda: TimingPlan(warmup=3, runs=10))
    rounds: int = 3
    threads: int | None = None
    engine_cache: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", _variant_kinds(self.kinds))
        object.__setattr__(self, "provider", _choice(self.provider or "cpu", PROVIDERS, "provider"))
        object.__setattr__(self, "budget", Budget(tuple(_limits(self.budget).items())).limits)
        if self.min_speedup is not None and not (math.isfinite(self.min_speedup) and self.min_speedup >= 0):
            raise UsageError(f"--min-speedup {self.min_speedup} must be a number >= 0", "e.g. --min-speedup 1.2 (0: off)")
        object.__setattr__(self, "calibration_method",
                           _choice(self.calibration_method, CALIBRATION_METHODS, "--calibration-method"))
        for name in ("calibration_cases", "eval_cases", "rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name.replace('_', ' ')} {value!r} must be a positive integer", "e.g. 4")
        for name in ("out_dir", "output", "inputs_file", "engine_cache"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        if self.output is not None and len(self.kinds) > 1:
            raise UsageError(f"-o names one file but {len(self.kinds)} variants were asked for",
                             "give --out-dir DIR for several variants, or one --to")
        self.timing.check()
        sizes = tuple(dict(self.axis_sizes).items())
        for axis, size in sizes:
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise UsageError(f"axis size {axis}={size!r} must be a positive integer", "e.g. --axis seq=128")
        object.__setattr__(self, "axis_sizes", sizes)
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads {self.threads} must be at least 1", "give a positive thread count")

    def budget_for(self, kind: str) -> Budget:
        """The variant's default budget with the user's limits over it."""
        return Budget(tuple({**DEFAULT_BUDGETS[kind].as_dict(), **dict(self.budget)}.items()))

    def speed_rule(self, kind: str) -> float | None:
        """The minimum p50 speed-up over fp32 (None: not gated)."""
        if self.min_speedup is not None:
            return self.min_speedup or None
        return DEFAULT_MIN_SPEEDUP[kind]
@dataclass(frozen=True)
class ExecutorOptions:
    """Where ``check`` runs each model's work: ``local`` processes, or tasks on a Ray cluster.

    ``address`` (Ray only) names a running cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
    without one, a local Ray instance is started for the run. ``jobs``: local worker processes
    (None: 1, 0: one per CPU), or the CPUs of the local Ray instance (None or 0: every CPU); a
    cluster's own resources decide there. ``retries``: how often a model whose Ray worker died
    (killed, out of memory) is run again before it is reported as an error. ``ship``: send the
    project folder to the cluster's workers (default: when an address is given).
    """

    kind: str = "local"
    address: str | None = None
    jobs: int | None = None
    retries: int = 2
    ship: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _choice(self.kind, EXECUTORS, "--executor"))
        if self.address is not None and self.kind != "ray":
            raise UsageError(f"--executor {self.kind}:{self.address}: only ray takes an address",
                             "write --executor ray:HOST:PORT, --executor ray:auto, or --executor local")
        if self.address is not None and not self.address.strip():
            raise UsageError(f"--executor {self.kind}: with no address after the colon",
                             "write --executor ray (a local Ray instance) or --executor ray:HOST:PORT")
        if self.jobs is not None and (isinstance(self.jobs, bool) or self.jobs < 0):
            raise UsageError(f"--jobs {self.jobs}: must be 0 (one per CPU) or more", "pass --jobs N with N >= 1")
        if isinstance(self.retries, bool) or not 0 <= self.retries <= 10:
            raise UsageError(f"--retries {self.retries}: must be between 0 and 10",
                             "a model whose worker keeps dying is an error after a few tries")

    @classmethod
    def parse(cls, spec: str | ExecutorOptions | None, **kw: Any) -> ExecutorOptions:
        """``local``, ``ray`` or ``ray:ADDRESS`` (the rest after the first colon is the address)."""
        if isinstance(spec, ExecutorOptions):
            return dataclasses.replace(spec, **kw) if kw else spec
        kind, sep, address = (spec or "local").strip().partition(":")
        return cls(kind, address.strip() if sep else None, **kw)

    @property
    def shipped(self) -> bool:
        """Whether the project folder travels to the workers (it is not on their disks)."""
        return self.ship if self.ship is not None else self.address is not None

    def __str__(self) -> str:
        return self.kind + (f":{self.address}" if self.address else "")


@dataclass(frozen=True)
class LocalizeOptions:
    """How ``debug`` (and ``validate --localize``) localise a divergence: the memory budget for the
    intermediate values held at once, and the folder the minimal failing subgraph is written to."""

    budget_mb: float = 64.0
    repro_dir: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.budget_mb, (int, float)) or not math.isfinite(self.budget_mb) or self.budget_mb <= 0:
            raise UsageError(f"--budget-mb {self.budget_mb!r} must be a positive number of megabytes",
                             "e.g. --budget-mb 64")
        object.__setattr__(self, "budget_mb", float(self.budget_mb))
        object.__setattr__(self, "repro_dir", _path(self.repro_dir))

    @property
    def budget_bytes(self) -> int:
        return int(self.budget_mb * (1 << 20))


def option_names(cls: type) -> tuple[str, ...]:
    """The field names of an option class (for building it from a flat set of keywords)."""
    return tuple(f.name for f in fields(cls))
