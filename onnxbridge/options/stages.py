"""Options of the pipeline's stages: export, parity, optimisation, convert (all of them), upgrade, bench."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..specs import TensorSpec, parse_input_specs
from ._common import (
    FALLBACK_POLICIES,
    FUSIONS,
    IO_BINDING_MODES,
    OPT_LEVELS,
    OPTIMIZE_TARGETS,
    PROVIDERS,
    REFERENCE_DEVICES,
    _choice,
    as_path,
)
from .plans import ParityPlan, TimingPlan
from .tolerances import ToleranceLike, Tolerances
from .variants import SIMPLIFIERS, VariantOptions

__all__ = [
    "ExportOptions",
    "ParityConfig",
    "OptimizeOptions",
    "ConvertOptions",
    "UpgradeOptions",
    "BenchConfig",
    "as_specs",
]


def as_specs(inputs: Sequence[str | TensorSpec] | None) -> tuple[TensorSpec, ...]:
    """``--input`` strings (or specs already parsed) as the option objects hold them."""
    specs = tuple(i for i in inputs or () if isinstance(i, TensorSpec))
    if inputs and len(specs) < len(inputs):
        return parse_input_specs([str(i) for i in inputs])
    return specs


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
        object.__setattr__(self, "inputs", as_specs(self.inputs))
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
            object.__setattr__(self, name, as_path(getattr(self, name)))
        if self.save_inputs and self.save_outputs and self.save_inputs.resolve() == self.save_outputs.resolve():
            raise UsageError(
                f"--save-inputs and --save-outputs both name {self.save_inputs}",
                "give two files, e.g. --save-inputs in.npz --save-outputs out.npz",
            )

    @classmethod
    def build(
        cls,
        *,
        provider: str = "auto",
        atol: float | None = None,
        rtol: float | None = None,
        tolerances: Mapping[str, ToleranceLike] | Sequence[str] | None = None,
        **rest: Any,
    ) -> ParityConfig:
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
    """Everything ``convert`` needs besides SOURCE and the output path. Its ``variants`` are judged on the
    provider, inputs and seed of its ``parity``."""

    export: ExportOptions = field(default_factory=ExportOptions)
    parity: ParityConfig = field(default_factory=ParityConfig)
    optimize: OptimizeOptions = field(default_factory=OptimizeOptions)
    simplify: bool = True
    validate: bool = True
    external_data: bool = False  # weights in OUT.onnx.data beside the graph (automatic over 2 GB)
    simplifier: str = "onnxsim"
    variants: VariantOptions | None = None
    new_tokens: int = 32  # with-past tasks: greedy tokens per prompt in the generation parity check
    merged_decoder: bool = True  # encoder-decoders: also decoder_model_merged.onnx (optimum's default)

    def __post_init__(self) -> None:
        if self.new_tokens < 1:
            raise UsageError(f"--new-tokens {self.new_tokens} must be >= 1", "e.g. --new-tokens 32")
        object.__setattr__(self, "simplifier", _choice(self.simplifier or "onnxsim", SIMPLIFIERS, "--simplifier"))
        if self.optimize.requested:  # a CUDA-optimised model is validated where it can run
            provider = self.optimize.validation_provider(self.parity.provider)
            if provider != self.parity.provider:
                object.__setattr__(self, "parity", dataclasses.replace(self.parity, provider=provider))
        if self.variants is not None:  # judged where the model is validated, on the same inputs
            object.__setattr__(
                self,
                "variants",
                dataclasses.replace(
                    self.variants,
                    provider=self.parity.provider,
                    inputs_file=self.parity.inputs_file,
                    seed=self.parity.seed,
                ),
            )


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
        object.__setattr__(self, "test_data", as_path(self.test_data))


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
        object.__setattr__(
            self, "reference_device", _choice(self.reference_device, REFERENCE_DEVICES, "--reference-device")
        )
        if self.threads is not None and self.threads < 1:
            raise UsageError(
                f"--threads {self.threads} must be at least 1", "give a positive thread count, or leave it out"
            )
        object.__setattr__(self, "inputs_file", as_path(self.inputs_file))
        if self.inputs_file and self.batches:
            raise UsageError(
                "--batch cannot sweep real inputs from --inputs", "leave out --batch, or leave out --inputs"
            )

    @property
    def axes(self) -> dict[str, int]:
        """``--axis`` sizes as a dict."""
        return dict(self.axis_sizes)
