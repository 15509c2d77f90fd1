"""The PyTorch converter's export routes, tried in order: the ``torch.export``-based exporter
(``torch.export/dynamo``), then the TorchScript exporter (``torchscript``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .._util import quiet
from ..onnxio import TWO_GB
from .axes import name_dynamic_axes
from .base import ExportedModel, ExportRequest, SourceModel
from .forked import Forked
from .torch_runner import TorchCall
from .torch_utils import (
    dim_specs,
    failing_op,
    grow_small_axes,
    inside,
    is_exported_program,
    keep_training_flags,
    math_attention,
    torch_dir,
)

__all__ = ["DynamoRoute", "TorchScriptRoute", "DataDependenceProbe"]

TORCHSCRIPT_DEFAULT_OPSET = 17
LARGE_MODEL = TWO_GB  # from here on the dynamo route saves its product to a file (request.save_to)


def _call_values(loaded: SourceModel[TorchCall], example: Mapping[str, Any] | None = None):
    """(args, kwargs) that call forward on ``example`` (default: the loaded example)."""
    from .torch_runner import to_torch

    values = loaded.example if example is None else example
    tensors = {n: to_torch(values[n]) for n in loaded.state.arg_order}
    return loaded.state.args(tensors)


def _finish(
    model, loaded: SourceModel[TorchCall], route: str, notes: tuple[str, ...] = (), axes: tuple = ()
) -> ExportedModel:
    fixed = name_dynamic_axes(model, loaded.specs)
    names = loaded.state.output_names
    if len(model.graph.output) != len(names):
        notes += (f"{route}: {len(model.graph.output)} graph outputs for {len(names)} model outputs; names kept",)
        names = tuple(o.name for o in model.graph.output)
    return ExportedModel(model, names, notes + fixed, axis_ranges=axes)


def _finish_file(
    path: Path,
    loaded: SourceModel[TorchCall],
    route: str,
    notes: tuple[str, ...] = (),
    axes: tuple = (),
    stamp: Callable[[Any], None] | None = None,
) -> ExportedModel:
    """``_finish`` for a product saved to ``path``: the graph (its weights stay on disk) is re-saved with
    its dynamic axes named and, with ``stamp``, what ``stamp`` writes on it (the module calls)."""
    import onnx

    before = onnx.load(str(path), load_external_data=False)
    if stamp is not None:
        stamp(before)
    product = _finish(before, loaded, route, notes, axes)
    onnx.save_model(product.model, str(path))
    return dataclasses.replace(product, path=path)


def _ir_weight_bytes(model: Any) -> int:
    return sum(v.const_value.nbytes for v in model.graph.initializers.values() if v.const_value is not None)


class DataDependenceProbe:
    """Does forward branch on tensor *values*? torch.export knows; tracing only warns.

    Shared by the routes of one conversion: the dynamo route records what torch.export found,
    and the TorchScript route asks (probing with torch.export itself when no answer is recorded).
    The program a probe exported is kept: the TorchScript route reads each dynamic axis's exported
    range from it, so that the sweep checks the same sizes whichever route wins. :meth:`start` runs the
    probe in a forked child beside the TorchScript export (see :mod:`.forked`); its answers are the same.
    """

    def __init__(self, cache: bool = True) -> None:
        self.cache = cache  # read and keep answers in :mod:`.probe_cache` (the forked child leaves it to the parent)
        self.verdict: bool | None = None
        self.program: Any = None  # the ExportedProgram the probe made, when it made one
        self._axes: tuple | None = None  # the ranges a forked probe sent back
        self._pending: Forked[tuple[bool | None, tuple]] | None = None

    def start(self, loaded: SourceModel[TorchCall]) -> None:
        """Begin probing in a forked child, when no answer is recorded yet (else a no-op)."""
        from .forked import fork_call

        if self.verdict is None and self._pending is None and not self._cached(loaded):
            self._pending = fork_call(lambda: _probe(loaded))

    def _cached(self, loaded: SourceModel[TorchCall]) -> bool:
        """Take the answers a probe of the same code, config and call recorded (:mod:`.probe_cache`)."""
        from . import probe_cache

        hit = probe_cache.load(loaded) if self.cache else None
        if hit is not None:
            self.verdict, self._axes = hit
        return hit is not None

    @property
    def running(self) -> bool:
        """A forked probe is at work and nothing has asked for its answers yet."""
        return self._pending is not None

    def cancel(self) -> None:
        """Stop a forked probe whose answers are no longer wanted (the route failed)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()

    def _collect(self, loaded: SourceModel[TorchCall]) -> None:
        from . import probe_cache

        pending, self._pending = self._pending, None
        answer = pending.result() if pending is not None else None
        if answer is not None and self.verdict is None:
            self.verdict, self._axes = answer
            if self.cache:
                probe_cache.store(loaded, *answer)

    def record(self, error: BaseException | None) -> None:
        if error is None:
            self.verdict = False
        elif (failing_op(error) or "").startswith("data-dependent"):
            self.verdict = True
        elif "Constraints violated" in str(error):  # export traced all of forward, then refused a dim
            self.verdict = False

    def value_dependent(self, loaded: SourceModel[TorchCall]) -> bool | None:
        self._collect(loaded)
        if self.verdict is None and not self._cached(loaded):
            try:
                self.program = _torch_export(loaded)[0]
                self.record(None)
            except Exception as e:
                self.record(e)
        return self.verdict

    def exported_axes(self, loaded: SourceModel[TorchCall]) -> tuple:
        """The exported range of each dynamic axis, as the dynamo route records it (probing once when
        no probe ran yet); empty when torch.export cannot export the model."""
        from . import probe_cache
        from .torch_ranges import exported_axes

        self._collect(loaded)
        if self._axes is not None:
            return self._axes
        if self.verdict is None:
            self.value_dependent(loaded)
            if self._axes is not None:  # from the cache
                return self._axes
        if self.program is None:
            return ()
        self._axes = exported_axes(self.program, loaded.state.arg_order, _dynamic(loaded))
        if self.cache:
            probe_cache.store(loaded, self.verdict, self._axes)
        return self._axes


class _ProbeAnswers:
    """What the forked probe still works out for a TorchScript product (:class:`PendingRanges`): whether a
    branch tracing warned of is on values (then the product is refused, as the route would have), and the
    ranges. A probe that gives no answer is run again in process, so the answers are the same either way."""

    def __init__(
        self, route: TorchScriptRoute, loaded: SourceModel[TorchCall], branch: Any, dynamic_axes: bool
    ) -> None:
        self._route = route
        self._loaded = loaded
        self._branch = branch
        self._dynamic_axes = dynamic_axes

    def result(self) -> tuple:
        with keep_training_flags(self._loaded.model):
            self._route._refuse_frozen_branch(self._branch, self._loaded)
            return self._route.probe.exported_axes(self._loaded) if self._dynamic_axes else ()

    def cancel(self) -> None:
        self._route.probe.cancel()


def _probe(loaded: SourceModel[TorchCall]) -> tuple[bool | None, tuple]:
    """(does forward branch on values, each dynamic axis's exported range): what a fresh probe finds (the
    caller looked in the cache already, and keeps the answers)."""
    probe = DataDependenceProbe(cache=False)
    with _no_stack_traces():
        axes = probe.exported_axes(loaded)
    return probe.verdict, axes


@contextlib.contextmanager
def _no_stack_traces() -> Iterator[None]:
    """No Python stack trace on each traced node: the probe keeps only ranges and a verdict (the guards'
    source lines come from the ShapeEnv, not from the nodes). t5's probe: 2.4 -> 2.2 s."""
    import torch.fx.config as fx_config

    before = getattr(fx_config, "do_not_emit_stack_traces", False)
    fx_config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        fx_config.do_not_emit_stack_traces = before


def _dynamic(loaded: SourceModel[TorchCall]) -> dict[str, dict[int, str]]:
    """Input name -> {axis index: axis name} for every input with a dynamic axis."""
    return {s.name: s.dynamic_axes for s in loaded.specs if s.dynamic_axes}


def _dynamic_shapes(loaded: SourceModel[TorchCall]):
    """torch.export's ``dynamic_shapes``: every named axis dynamic (within its declared range), per input
    as forward takes them; fixed keywords (``use_cache``) are static."""
    from ..specs import declared_ranges

    if not loaded.axis_sizes:
        return None
    by_name = {s.name: s for s in loaded.specs}
    ranges = declared_ranges(loaded.specs)
    per_input = {n: dim_specs(by_name[n].dynamic_axes, ranges) for n in loaded.state.arg_order}
    if loaded.state.call == "kwargs":
        return {**per_input, **{k: None for k in loaded.state.fixed_kwargs}}
    return tuple(per_input.values())


def _torch_export(loaded: SourceModel[TorchCall], debug: bool = False) -> tuple[Any, dict[str, int]]:
    """``torch.export.export`` (non-strict) on the example grown past size 0/1 on its dynamic axes:
    (the program, {axis: example size} for each axis grown)."""
    import torch

    example, grown = grow_small_axes(loaded.example, _dynamic(loaded))
    args, kwargs = _call_values(loaded, example)
    with quiet(enabled=not debug), _no_fake_tensor_cache():
        ep = torch.export.export(loaded.model, args, kwargs, dynamic_shapes=_dynamic_shapes(loaded), strict=False)
    return ep, grown


def _no_fake_tensor_cache() -> contextlib.AbstractContextManager[Any]:
    """torch.export with FakeTensor's dispatch cache off. One trace of a shallow model rarely hits the cache,
    and filling it for symbolic shapes costs more than it saves: t5's probe 4.4 -> 3.4 s, wav2vec2's
    2.6 -> 1.8 s, the same program and ranges; a 32-layer llama, whose layers hit it, is even (about 8 s
    either way). Where torch has no such switch, nothing changes."""
    import torch

    try:
        return torch._dynamo.config.patch(fake_tensor_cache_enabled=False)
    except (AttributeError, KeyError, RuntimeError):
        return contextlib.nullcontext()


class DynamoRoute:
    """``torch.export.export`` (non-strict), then ``torch.onnx.export(dynamo=True)``.

    The example is grown to 2 on dynamic axes of size 0 or 1 (torch.export specialises those); the
    ONNX step runs attention on its math kernel; the exported range of each dynamic axis (and the guard
    that bounds it) travels with the product, for the sweep and the ONNX metadata.
    """

    name = "torch.export/dynamo"

    def __init__(self, probe: DataDependenceProbe | None = None) -> None:
        self.probe = probe or DataDependenceProbe()

    def export(self, loaded: SourceModel[TorchCall], request: ExportRequest) -> ExportedModel:
        import torch

        from .torch_ranges import exported_axes

        names = loaded.state.output_names
        grown: dict[str, int] = {}
        with keep_training_flags(loaded.model):
            if is_exported_program(loaded.model):
                ep = loaded.model
            else:
                try:
                    ep, grown = _torch_export(loaded, request.debug)
                except Exception as e:
                    self.probe.record(e)
                    raise
                self.probe.record(None)
            with quiet(enabled=not request.debug), math_attention():
                input_names = list(loaded.state.arg_order) if loaded.state.call == "args" else None
                program = torch.onnx.export(
                    ep,
                    dynamo=True,
                    opset_version=request.opset,
                    input_names=input_names,
                    output_names=list(names),
                    verbose=False,
                )
        assert program is not None  # torch types the TorchScript path's None; dynamo=True returns the program
        notes = tuple(
            f"exported from an example grown from {axis}={size} to 2 (torch.export specialises sizes 0 "
            f"and 1); {axis}={size} is checked too"
            for axis, size in grown.items()
        )
        axes = exported_axes(ep, loaded.state.arg_order, _dynamic(loaded))
        if request.save_to is not None and (request.external_data or _ir_weight_bytes(program.model) >= LARGE_MODEL):
            program.save(request.save_to, external_data=True)  # onnx-ir writes the tensors; no protobuf copy
            return _finish_file(
                request.save_to, loaded, self.name, notes, axes, stamp=lambda model: _stamp_module_calls(model, program)
            )
        model = program.model_proto
        _stamp_module_calls(model, program)
        return _finish(model, loaded, self.name, notes, axes)


def _stamp_module_calls(model: Any, program: Any) -> None:
    """For ``onnxbridge debug``: write on each node which call of a module made it (the exporter's metadata
    names the module, not the call, so two calls of a shared module look alike). Never raises."""
    from ..localize.metadata import stamp_module_calls

    stamp_module_calls(model, getattr(program, "exported_program", None))


class TorchScriptRoute:
    """The TorchScript exporter (``torch.onnx.export(dynamo=False)``); refuses traces that froze a branch."""

    name = "torchscript"

    def __init__(self, probe: DataDependenceProbe | None = None) -> None:
        self.probe = probe or DataDependenceProbe()

    def export(self, loaded: SourceModel[TorchCall], request: ExportRequest) -> ExportedModel:
        with keep_training_flags(loaded.model):
            if _dynamic(loaded):  # the ranges are wanted whatever the trace finds: probe beside it
                self.probe.start(loaded)
            product = None
            try:
                product = self._export(loaded, request)
                return product
            finally:
                if product is None or product.pending_ranges is None:
                    self.probe.cancel()  # a route that failed before asking: the answers are not wanted

    def _export(self, loaded: SourceModel[TorchCall], request: ExportRequest) -> ExportedModel:
        import onnx
        import torch

        args, kwargs = _call_values(loaded)
        names = loaded.state.output_names
        order = loaded.state.arg_order
        fixed = loaded.state.fixed_kwargs
        by_name = {s.name: s for s in loaded.specs}
        dynamic_axes = {n: by_name[n].dynamic_axes for n in order if by_name[n].dynamic_axes}
        model = loaded.model
        if kwargs:
            # The TorchScript exporter binds keyword inputs positionally against forward's signature,
            # which breaks wrapped forwards (transformers 5: "got multiple values for argument
            # 'use_cache'"). An adapter takes the inputs positionally and calls forward by keyword.
            tensors = {k: v for k, v in kwargs.items() if k not in fixed}
            model, args = _keyword_adapter(model, tuple(tensors), fixed), tuple(tensors.values())
        buf = io.BytesIO()
        with warnings.catch_warnings(record=True) as caught, quiet(enabled=not request.debug):
            warnings.simplefilter("always")
            try:
                torch.onnx.export(
                    model,
                    args,
                    buf,  # type: ignore[arg-type]  # torch's hint says a path; the TorchScript exporter writes file objects too
                    dynamo=False,
                    input_names=list(order),
                    output_names=list(names),
                    dynamic_axes=dynamic_axes or None,
                    opset_version=request.opset or TORCHSCRIPT_DEFAULT_OPSET,
                    do_constant_folding=True,
                )
            finally:
                # the exporter switches its C++ log on (it dumps the whole IR graph to stdout when a pass
                # fails) and never off again
                with contextlib.suppress(Exception):
                    torch._C._jit_set_onnx_log_enabled(False)
        frozen = self._frozen_branch(caught)
        product = _finish(onnx.load_from_string(buf.getvalue()), loaded, self.name)
        if self.probe.running:  # the probe's answers come in while the route loop checks the product
            return dataclasses.replace(product, pending_ranges=_ProbeAnswers(self, loaded, frozen, bool(dynamic_axes)))
        self._refuse_frozen_branch(frozen, loaded)
        return dataclasses.replace(product, axis_ranges=self.probe.exported_axes(loaded) if dynamic_axes else ())

    @staticmethod
    def _frozen_branch(caught: list) -> Any:
        """The first `if` over a traced tensor that tracing warned of (None: none), outside torch's own
        input checks, which are shape-only."""
        own = torch_dir()
        return next(
            (
                w
                for w in caught
                if type(w.message).__name__ == "TracerWarning"
                and "Python boolean" in str(w.message)
                and not inside(str(w.filename or ""), own)
            ),
            None,
        )

    def _refuse_frozen_branch(self, branch: Any, loaded: SourceModel[TorchCall]) -> None:
        """Tracing warns on every `if` over a traced tensor. Branches on shapes are caught by the shape
        sweep; a branch on *values* (torch.export's verdict) would silently freeze, so it is refused."""
        if branch is not None and self.probe.value_dependent(loaded) is not False:
            raise RuntimeError(
                f"data-dependent control flow at {Path(branch.filename).name}:{branch.lineno}: tracing froze one "
                "branch of an `if` on tensor values"
            )


def _keyword_adapter(inner: Any, names: tuple[str, ...], fixed_kwargs: Mapping[str, Any] | None = None) -> Any:
    """A module whose ``forward(*tensors)`` calls ``inner(**dict(zip(names, tensors)), **fixed_kwargs)``."""
    import torch

    fixed = dict(fixed_kwargs or {})

    class KeywordAdapter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors)), **fixed)

    adapter = KeywordAdapter()
    # export restores the wrapper's mode onto the inner model: give it the model's mode, without
    # .train(), which would also flatten the mode of every submodule
    adapter.training = inner.training
    return adapter
