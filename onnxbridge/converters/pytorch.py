"""The PyTorch converter: ``file.py:NAME``, ``module:NAME`` and ``.pt2`` sources: loading, example
inputs, how ``forward`` is called, and the reference runner. Its two export routes are in
:mod:`.torch_routes`. torch is imported only when a method runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util import first_line
from ..errors import UsageError
from ..parity.inputs import generate_inputs
from ..sources import SourceRef, load_python_object, resolve_factory
from ..specs import TensorSpec
from .base import InputDomain, SourceModel, axis_sizes
from .torch_runner import TorchCall
from .torch_utils import (
    failing_op,
    forward_params,
    is_exported_program,
    load_exported_program,
    output_names_for,
    without_cache,
)

if TYPE_CHECKING:
    import onnx

    from ..localize.compare import Scorer
    from ..localize.finding import Finding
    from ..runtime.sessions import Runner

__all__ = ["TorchConverter"]


def _example_array(value: Any, where: str) -> np.ndarray:
    import torch

    from .torch_runner import to_numpy

    if isinstance(value, torch.Tensor):
        return to_numpy(value)
    if isinstance(value, np.ndarray):
        return value
    raise UsageError(
        f"example input {where} is a {type(value).__name__}, not a tensor or array",
        "example_inputs hold tensors or numpy arrays only; bake other arguments into the model",
    )


class TorchConverter:
    """PyTorch models to ONNX."""

    framework = "pytorch"
    route_names = ("torch.export/dynamo", "torchscript")

    @staticmethod
    def accepts(obj: Any) -> bool:
        """True for ``torch.nn.Module`` and ``ExportedProgram`` objects."""
        import torch

        return isinstance(obj, (torch.nn.Module, torch.export.ExportedProgram))

    # ---------------------------------------------------------------- loading
    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[TorchCall]:
        """The model, its example inputs as numpy, its input specs and how ``forward`` is called."""
        example: Any = None
        if ref.is_python:
            if obj is None:
                obj = load_python_object(ref)
            model, example = resolve_factory(obj, ref.text)
        elif ref.path is not None and ref.path.suffix.lower() == ".pt2":
            model = load_exported_program(ref.path, trust=trust)
            if model.example_inputs is not None:
                example = model.example_inputs
        else:
            raise UsageError(f"the PyTorch converter cannot read {ref.text}", "give file.py:NAME, module:NAME or .pt2")
        return self.load_module(model, example, specs, ref.text)

    def load_module(
        self, model: Any, example: Any, specs: tuple[TensorSpec, ...], where: str
    ) -> SourceModel[TorchCall]:
        """The hook other converters reuse (the Hugging Face folder converter): a model already in memory,
        its example inputs (a tuple, a dict, or None) and ``--input`` specs -> a ``SourceModel[TorchCall]`` that
        this converter's routes and reference runner take."""
        import torch

        notes: list[str] = []
        if not self.accepts(model):
            raise UsageError(
                f"{where} gives a {type(model).__name__}, not a torch.nn.Module or ExportedProgram",
                "NAME must be a model, or a zero-argument callable returning (model, example_inputs)",
            )
        if isinstance(model, torch.nn.Module) and model.training:
            model.eval()
            notes.append("the model was in training mode; onnxbridge put it in eval mode before export")
        module = model.module() if is_exported_program(model) else model
        fixed = without_cache(module) if isinstance(model, torch.nn.Module) else {}
        if fixed:
            notes.append("a Hugging Face model: exported and checked without its KV cache (use_cache=False)")
        call, names, arrays = self._bind_example(module, example, where)
        specs, arrays, sizes = self._fit_specs(module, specs, call, names, arrays, where)
        vocab = self._vocab_size(module)
        int_high: int | dict[str, int] | None = vocab
        generated = not arrays
        user_example = dict(arrays)
        if generated:
            arrays = generate_inputs(specs, sizes, seed=0, int_high=int_high)
        call, arg_order, fixed = self._call_mode(module, specs, call, names, fixed)
        loaded: SourceModel[TorchCall] = SourceModel(
            framework=self.framework,
            source=where,
            model=model,
            domain=InputDomain.of(specs, sizes, int_high, arrays),
            state=TorchCall(call, arg_order, dict(fixed or {})),
            notes=tuple(notes),
        )
        try:
            out, tables = self._run_eager(loaded, watch_embeddings=True)
        except UsageError as e:
            raise (self._refused_generated(loaded, e) if generated else e) from e.__cause__
        if tables and vocab is not None:  # tables are embeddings', so vocab is known whenever there are some
            # ids drawn below the smallest table are always valid; now that we know which table
            # each input indexes, draw them over that table's whole range
            int_high = {s.name: tables.get(s.name, vocab) for s in specs if not s.dtype.startswith(("float", "bf"))}
            loaded = replace(loaded, domain=loaded.domain.with_ids(int_high))
            if generated:
                loaded = replace(
                    loaded, domain=loaded.domain.with_example(generate_inputs(specs, sizes, seed=0, int_high=int_high))
                )
                out, _ = self._run_eager(loaded)
        names_out = output_names_for(out)
        if not names_out:
            raise UsageError(f"{where}: forward returned no tensors", "return a tensor, tuple, dict or ModelOutput")
        # generated inputs keep to the ranges of the user's example (a divisor example in 1..6 never gets 0)
        ranges = loaded.domain.ids.with_examples(user_example)
        return replace(
            loaded, domain=loaded.domain.with_ids(ranges), state=replace(loaded.state, output_names=names_out)
        )

    def _bind_example(self, module: Any, example: Any, where: str):
        """(call mode, names, arrays) from the example inputs a factory returned."""
        import torch

        if example is None:
            return None, (), {}
        if isinstance(example, torch.Tensor | np.ndarray):
            example = (example,)
        if (
            isinstance(example, tuple)
            and len(example) == 2
            and isinstance(example[1], dict)
            and isinstance(example[0], tuple)
        ):  # ExportedProgram.example_inputs: (args, kwargs)
            args, kwargs = example
            if not kwargs:
                example = args
            elif not args:
                example = kwargs
            else:
                raise UsageError(f"{where}: mixed positional and keyword example inputs are not supported")
        if isinstance(example, dict):
            arrays = {k: _example_array(v, repr(k)) for k, v in example.items() if v is not None}
            return "kwargs", tuple(arrays), arrays
        if isinstance(example, list | tuple):
            params = [p for p in forward_params(module) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            names = tuple(params[i].name if i < len(params) else f"input_{i}" for i in range(len(example)))
            arrays = {n: _example_array(v, n) for n, v in zip(names, example)}
            return "args", names, arrays
        raise UsageError(
            f"{where}: example_inputs is a {type(example).__name__}",
            "return example_inputs as a tuple (positional) or a dict (keyword) of tensors",
        )

    def _fit_specs(self, module, specs, call, names, arrays, where):
        """Merge --input specs with example inputs; return (specs, arrays, axis sizes)."""
        if not specs and not arrays:
            params = [p.name for p in forward_params(module) if p.kind not in (p.VAR_KEYWORD,)]
            raise UsageError(
                f"no inputs known for {where}",
                f"pass --input NAME:DIMS[:DTYPE] (forward takes: {', '.join(params) or '?'}) "
                "or return (model, example_inputs) from NAME",
            )
        if not specs:  # everything fixed, from the example
            specs = tuple(TensorSpec(n, tuple(int(d) for d in a.shape), a.dtype.name) for n, a in arrays.items())
            return specs, arrays, {}
        if not arrays:
            return specs, {}, axis_sizes(specs)
        if call == "args" and [s.name for s in specs] != list(names) and len(specs) == len(names):
            arrays = dict(zip((s.name for s in specs), arrays.values()))
        missing = [s.name for s in specs if s.name not in arrays]
        if missing:
            raise UsageError(
                f"--input {', '.join(missing)} does not match the example inputs of {where} ({', '.join(arrays)})",
                "name --input after the example inputs",
            )
        sizes = axis_sizes(specs, arrays)
        extra = [n for n in arrays if n not in {s.name for s in specs}]
        if extra:
            raise UsageError(f"--input misses example inputs: {', '.join(extra)}", "give one --input per model input")
        # the example's dtypes win over --input's
        fitted = tuple(replace(s, dtype=arrays[s.name].dtype.name) for s in specs)
        return fitted, {s.name: arrays[s.name] for s in specs}, sizes

    def _call_mode(self, module, specs, call, names, fixed) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """Keyword when every input is a named parameter of forward (or fixed keywords must be passed
        beside them, as ``use_cache=False``); positional otherwise (without the fixed keywords)."""
        spec_names = [s.name for s in specs]
        params = forward_params(module)
        named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        order = {p.name: i for i, p in enumerate(params)}
        if call is None or (fixed and call == "args" and set(spec_names) <= named):
            call = "kwargs" if set(spec_names) <= named else "args"
        if call == "kwargs":
            unknown = (
                [n for n in spec_names if n not in named] if not any(p.kind == p.VAR_KEYWORD for p in params) else []
            )
            if unknown:
                raise UsageError(
                    f"forward() has no parameter {', '.join(unknown)}",
                    f"forward takes: {', '.join(p.name for p in params)}",
                )
            return "kwargs", tuple(sorted(spec_names, key=lambda n: order.get(n, len(order)))), fixed
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(spec_names) > len(positional) and not any(p.kind == p.VAR_POSITIONAL for p in params):
            raise UsageError(
                f"{len(spec_names)} inputs given but forward takes {len(positional)} positional "
                f"({', '.join(p.name for p in positional)})",
                "name each --input after a forward parameter",
            )
        return "args", tuple(spec_names), {}

    @staticmethod
    def _vocab_size(module: Any) -> int | None:
        import torch

        sizes = [m.num_embeddings for m in module.modules() if isinstance(m, torch.nn.Embedding)]
        return min(sizes) if sizes else None

    def _refused_generated(self, loaded: SourceModel[TorchCall], e: UsageError) -> UsageError:
        """The source raised on the inputs generated from ``--input`` alone: name the input whose values
        it refuses, when one is to blame (else the shapes do not fit: ``e`` says so)."""
        from ..parity.inputs import blame_inputs

        runner = self.reference_runner(replace(loaded, state=replace(loaded.state, output_names=())))
        blamed = blame_inputs(runner.run, loaded.example)
        if not blamed:
            return e
        cause = first_line(e.__cause__) if e.__cause__ is not None else e.message
        return UsageError(
            f"{loaded.source} cannot run the inputs generated from --input (input "
            f"{', '.join(repr(b) for b in blamed)}: with it set to ones the source runs): {cause}",
            "return (model, example_inputs) from the factory: generated inputs keep the example's value ranges",
        )

    def _run_eager(self, loaded: SourceModel[TorchCall], watch_embeddings: bool = False) -> tuple[Any, dict[str, int]]:
        """Run forward on the example; with ``watch_embeddings``, also learn which ``nn.Embedding``
        each integer input feeds (input name -> table size)."""
        import torch

        from .torch_runner import to_torch

        module = loaded.model.module() if is_exported_program(loaded.model) else loaded.model
        tensors = {k: to_torch(v) for k, v in loaded.example.items()}
        tables: dict[str, int] = {}
        hooks = []
        if watch_embeddings and isinstance(module, torch.nn.Module):
            storage = {
                t.untyped_storage().data_ptr(): name
                for name, t in tensors.items()
                if not t.is_floating_point() and t.numel()
            }

            def seen(mod, args):
                if args and isinstance(args[0], torch.Tensor):
                    name = storage.get(args[0].untyped_storage().data_ptr())
                    if name is not None:
                        tables[name] = min(tables.get(name, mod.num_embeddings), mod.num_embeddings)

            hooks = [m.register_forward_pre_hook(seen) for m in module.modules() if isinstance(m, torch.nn.Embedding)]
        args, kwargs = loaded.state.args(tensors)
        try:
            with torch.inference_mode():
                return module(*args, **kwargs), tables
        except Exception as e:
            shapes = ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in loaded.example.items())
            raise UsageError(
                f"the inputs do not fit {loaded.source}: forward({shapes}) raised {first_line(e, 300)}",
                "check --input names, shapes and dtypes against the model's forward",
            ) from e
        finally:
            for h in hooks:
                h.remove()

    # ---------------------------------------------------------------- routes
    def routes(self, loaded: SourceModel[TorchCall]) -> list:
        """torch.export first; TorchScript only for nn.Module sources."""
        from .torch_routes import DataDependenceProbe, DynamoRoute, TorchScriptRoute

        if is_exported_program(loaded.model):
            return [DynamoRoute()]
        probe = DataDependenceProbe()
        return [DynamoRoute(probe), TorchScriptRoute(probe)]

    def reference_runner(self, loaded: SourceModel[TorchCall]):
        """PyTorch eager, called as forward expects."""
        from .torch_runner import TorchRunner

        module = loaded.model.module() if is_exported_program(loaded.model) else loaded.model
        state = loaded.state
        return TorchRunner(module, state.call, state.arg_order, state.output_names, state.fixed_kwargs)

    @staticmethod
    def failing_op(e: BaseException) -> str | None:
        return failing_op(e)

    # ---------------------------------------------------------------- localisation
    layer_unit = "module calls, in the order they finish"

    def localize_layers(
        self,
        loaded: SourceModel[TorchCall],
        runner: Runner,
        feeds: Mapping[str, np.ndarray],
        onnx_model: onnx.ModelProto,
        scorer: Scorer,
        *,
        budget_bytes: int,
        provider: str,
    ) -> Finding:
        """Each module call of the eager model against the ONNX values it became (see
        :func:`onnxbridge.localize.torch_side.localize_torch`)."""
        from ..localize.torch_side import localize_torch
        from .torch_runner import to_torch

        module = loaded.model.module() if is_exported_program(loaded.model) else loaded.model
        args, kwargs = loaded.state.args({n: to_torch(np.asarray(feeds[n])) for n in loaded.state.arg_order})
        return localize_torch(
            module, args, kwargs, onnx_model, feeds, scorer, budget_bytes=budget_bytes, provider=provider
        )
